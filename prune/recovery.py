"""Recovery after pruning, as a registry: none (the study's protocol), BatchNorm re-estimation, fine-tuning.

A recovery changes the pruned model in place, on the context's device, and leaves it in eval mode.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from rich.console import Console
from torch import nn
from torch.nn.utils import prune as torch_prune

from prune.data import Splits
from prune.models import build_model
from prune.presets import TrainSettings
from prune.registry import add_entry, lookup
from prune.train import train_model

# Running statistics are plain averages over every position of every image: 512 images (16 batches of 32) give
# each channel of a 32x32 ResNet's last stage 8,192 values; more only costs time (a ResNet-50 pass over 1,024
# images took 30 s on 2 cores, and bn runs once per method).
BN_IMAGES = 512
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
# Han et al. 2015 retrain pruned networks at a fraction of the original rate. Measured on the quick preset,
# LeNet-300-100 at 95%: 3 epochs at 0.1x reached 94.0% (dense 96.7%), at 0.3x 95.3%, 5 epochs at 0.3x 95.9%.
FINETUNE_LR_FACTOR = 0.3


@dataclass(frozen=True)
class RecoveryContext:
    """What a recovery may use: the model's data, its training recipe, and where and how to run."""

    splits: Splits
    settings: TrainSettings  # the model's training settings under the preset
    epochs: int  # fine-tuning epochs (finetune only; at least 1)
    seed: int  # draws batches, augmentation and the BatchNorm images
    device: torch.device
    console: Console


RecoveryFn = Callable[[nn.Module, RecoveryContext], str | None]


def always_applies(model: nn.Module) -> None:
    """A recovery that runs on any model: no reason to skip it (None)."""


@dataclass(frozen=True)
class Recovery:
    """A registered recovery: `run` changes the model in place and returns a note (why it skipped) or None;
    `skip` says, from the architecture alone, why it does not apply to a model ("has no ..."; None: it does)."""

    name: str
    description: str
    run: RecoveryFn
    skip: Callable[[nn.Module], str | None] = always_applies


RECOVERIES: dict[str, Recovery] = {}


def register_recovery(name: str, description: str, skip: Callable[[nn.Module], str | None] = always_applies):
    """Decorator adding a recovery function to RECOVERIES under `name`."""

    def add(run: RecoveryFn) -> RecoveryFn:
        add_entry(RECOVERIES, "recovery", name, Recovery(name, description, run, skip))
        return run

    return add


@functools.cache
def skipped_recoveries(model_name: str) -> dict[str, str]:
    """Recovery name -> why it does not apply to the architecture `model_name` (built on the meta device: no
    memory, no init). A run leaves those variants out rather than export and measure a copy of `none`."""
    with torch.device("meta"):
        model = build_model(model_name)
    return {name: f"skipped: {model_name} {why}" for name, recovery in RECOVERIES.items()
            if (why := recovery.skip(model))}


def tracked_norms(model: nn.Module) -> list[nn.Module]:
    """The BatchNorm layers of `model` that keep running statistics: what the bn recovery re-estimates."""
    return [m for m in model.modules() if isinstance(m, BATCH_NORMS) and m.track_running_stats]


def no_batchnorm(model: nn.Module) -> str | None:
    """Why the bn recovery does not apply to `model` ("has no BatchNorm layers": none tracks statistics), or
    None."""
    return None if tracked_norms(model) else "has no BatchNorm layers"


def get_recovery(name: str) -> Recovery:
    """Look a recovery up by name; an unknown name is a UsageError listing the valid ones."""
    return lookup(RECOVERIES, "recovery", name)


@register_recovery("none", "the study's protocol: the pruned model is evaluated as pruning left it")
def no_recovery(model: nn.Module, ctx: RecoveryContext) -> None:
    """Leave `model` as it is."""


@register_recovery("bn", "re-estimate BatchNorm running statistics on training images; no gradient steps",
                   skip=no_batchnorm)
def recalibrate_batchnorm(model: nn.Module, ctx: RecoveryContext) -> str | None:
    """Recompute every BatchNorm's running mean and variance as a plain average over up to BN_IMAGES training
    images (seeded subset, un-augmented), changing nothing else; a model without BatchNorm is skipped."""
    norms = tracked_norms(model)
    if not norms:
        return f"skipped: {type(model).__name__} {no_batchnorm(model)}"
    images = ctx.splits.train.images
    generator = torch.Generator().manual_seed(ctx.seed)
    chosen = torch.randperm(len(images), generator=generator)[:BN_IMAGES]  # embedded MNIST is sorted by class
    momenta = [m.momentum for m in norms]
    model.to(ctx.device).eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the pass, not an exponential one
        norm.train()
    with torch.no_grad():
        for idx in chosen.split(ctx.settings.batch_size):
            model(ctx.splits.spec.normalise(images[idx].to(ctx.device)))
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    model.eval()
    return None


@register_recovery("finetune", "a few epochs of training at 0.3x the peak lr; pruned weights stay zero")
def finetune(model: nn.Module, ctx: RecoveryContext) -> None:
    """Retrain `model` for ctx.epochs with its recipe at FINETUNE_LR_FACTOR x the peak lr (Han et al. 2015).

    PyTorch's pruning masks stay in place: weight_orig's gradient is masked, so pruned weights stay zero.
    """
    if ctx.epochs < 1:
        raise ValueError(f"finetune needs at least 1 epoch, got {ctx.epochs}")
    settings = replace(ctx.settings, epochs=ctx.epochs, lr=ctx.settings.lr * FINETUNE_LR_FACTOR)
    train_model(model, ctx.splits, settings, ctx.seed, ctx.device, ctx.console, label="finetune")
    refresh_masked_weights(model)


def refresh_masked_weights(model: nn.Module) -> None:
    """Set each pruned module's `weight` to weight_orig * weight_mask, as its pre-hook does on a forward.

    After training, `weight` is whatever the last forward left (an inference tensor from evaluation); computed
    here without grad it is current, a leaf, and deep-copyable.
    """
    with torch.no_grad():
        for module in model.modules():
            if torch_prune.is_pruned(module) and hasattr(module, "weight_orig"):
                module.weight = module.weight_orig * module.weight_mask
