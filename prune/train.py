"""Seeded training and evaluation of the dense models, and the `train` stage that writes their checkpoints."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from prune.config import RunConfig, checkpoint_path
from prune.data import Splits, flips_allowed, load_splits
from prune.errors import ArtifactError, UsageError
from prune.io import load_checkpoint, save_checkpoint
from prune.models import EVAL_BATCH, build_model, get_model_spec, is_source
from prune.presets import TrainSettings, get_preset
from prune.pruning import check_state_shapes
from prune.sources import source_identity

# a checkpoint whose config has equal values is reused
IDENTITY_KEYS = ("model", "preset", "seed", "train", "dataset", "source")


def resolve_device(name: str) -> torch.device:
    """auto -> cuda when available else cpu; cuda asked for on a machine without it is a UsageError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda but torch sees no CUDA device; pass --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise UsageError(f"unknown device {name!r}; choose from auto, cpu, cuda")
    return torch.device(name)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device | str = "cpu") -> float:
    """Top-1 accuracy in percent of `model` (put in eval mode) on normalised images `x` with labels `y`."""
    model.eval()
    correct = 0
    with torch.inference_mode():
        for xb, yb in zip(x.split(EVAL_BATCH), y.split(EVAL_BATCH)):
            correct += int((model(xb.to(device)).argmax(1).cpu() == yb).sum())
    return 100.0 * correct / len(y)


def augment(images: torch.Tensor, max_shift: int, hflip: bool, generator: torch.Generator) -> torch.Tensor:
    """Per image: a random shift of up to +-max_shift pixels (zero padding) and, if asked, a random h-flip."""
    n, c, h, w = images.shape
    device = images.device
    if max_shift:
        shifts = torch.randint(-max_shift, max_shift + 1, (2, n), generator=generator).to(device)
        padded = F.pad(images, (max_shift,) * 4)
        rows = torch.arange(h, device=device)[None, :] + max_shift + shifts[0][:, None]  # (N, H)
        cols = torch.arange(w, device=device)[None, :] + max_shift + shifts[1][:, None]  # (N, W)
        batch, channel = torch.arange(n, device=device), torch.arange(c, device=device)
        images = padded[batch[:, None, None, None], channel[:, None, None], rows[:, None, :, None],
                        cols[:, None, None, :]]
    if hflip:
        flip = (torch.rand(n, generator=generator) < 0.5).to(device).view(-1, 1, 1, 1)
        images = torch.where(flip, images.flip(-1), images)
    return images


def _scheduler(optimizer: torch.optim.Optimizer, settings: TrainSettings, total_steps: int):
    if settings.lr_schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=settings.lr, total_steps=total_steps)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)


def train_model(model: nn.Module, splits: Splits, settings: TrainSettings, seed: int, device: torch.device,
                console: Console, label: str = "train") -> float:
    """Train `model` in place with SGD on the training split (batches and augmentation drawn from `seed`).

    Returns the test accuracy in percent. Bit-for-bit reproducible on CPU for a given seed.
    """
    generator = torch.Generator().manual_seed(seed)
    hflip = settings.hflip and flips_allowed(splits.train.source)  # the ResNets' recipe, off on digits
    images, labels = splits.train.images.to(device), splits.train.labels.to(device)
    steps_per_epoch = math.ceil(len(labels) / settings.batch_size)
    model.to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum,
                                weight_decay=settings.weight_decay)
    scheduler = _scheduler(optimizer, settings, settings.epochs * steps_per_epoch)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(label, total=settings.epochs * steps_per_epoch, status="")
        last_epoch = ""
        for epoch in range(settings.epochs):
            loss_sum = torch.zeros((), device=device)  # summed on the device: no sync per step
            correct = torch.zeros((), dtype=torch.int64, device=device)
            for idx in torch.randperm(len(labels), generator=generator).to(device).split(settings.batch_size):
                x = splits.spec.normalise(augment(images[idx], settings.max_shift, hflip, generator))
                logits = model(x)
                loss = F.cross_entropy(logits, labels[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                loss_sum += loss.detach() * len(idx)
                correct += (logits.argmax(1) == labels[idx]).sum()
                progress.update(task, advance=1, status=f"epoch {epoch + 1}/{settings.epochs}{last_epoch}")
            last_epoch = (f", last epoch: loss {float(loss_sum) / len(labels):.3f}, "
                          f"train accuracy {100 * int(correct) / len(labels):.1f}%")
    return evaluate(model, splits.spec.normalise(splits.test.images), splits.test.labels, device)


def training_splits(model: str, data_dir: Path, download: bool, settings: TrainSettings) -> Splits:
    """The data `model` trains and is evaluated on under `settings`; raises DatasetUnavailable."""
    dataset = get_model_spec(model).dataset
    return load_splits(dataset, data_dir, download, settings.train_limit, settings.test_limit)


def checkpoint_identity(cfg: RunConfig, model: str, settings: TrainSettings, dataset: dict | None) -> dict:
    """The config values that decide a checkpoint's weights (not the device: results are comparable); a model
    source's identity too, so another file or data file of the same name retrains."""
    return {"model": model, "preset": cfg.preset, "seed": cfg.seed, "train": settings.training_dict(),
            "dataset": dataset,
            "source": source_identity(cfg.model_source(model)) if is_source(model) else None}


def same_identity(config: dict, wanted: dict, keys: tuple[str, ...] = IDENTITY_KEYS) -> bool:
    """True when `config` agrees with `wanted` on every identity key in `keys`."""
    return all(config.get(key) == wanted.get(key) for key in keys)


def load_dense_checkpoint(path: Path, model: str) -> tuple[nn.Module, dict]:
    """The dense `model` saved at `path`, and its config; a bad file or another model: ArtifactError."""
    state, config = load_checkpoint(path)
    found = config.get("model") if isinstance(config, dict) else None
    if found != model:
        raise ArtifactError(f"{path}: holds a {found} checkpoint, not {model}; "
                            "delete it or use another --out")
    module = build_model(model)
    check_state_shapes(module.state_dict(), state, str(path), model)
    module.load_state_dict(state)
    return module.eval(), config


def ensure_checkpoint(cfg: RunConfig, model: str, splits: Splits, device: torch.device,
                      console: Console) -> tuple[nn.Module, dict]:
    """The trained dense `model`: its checkpoint when that was made with this config, else trained now."""
    settings = get_preset(cfg.preset).settings(model)
    path = checkpoint_path(cfg.out, model)
    wanted = checkpoint_identity(cfg, model, settings, splits.describe())
    if path.exists():
        module, config = load_dense_checkpoint(path, model)
        if same_identity(config, wanted):
            console.print(f"{model}: reusing {path} (test accuracy {config['accuracy']:.2f}%)")
            return module, config
        console.print(f"{model}: {path} was trained with another config; retraining")
    torch.manual_seed(cfg.seed)
    module = build_model(model)
    accuracy = train_model(module, splits, settings, cfg.seed, device, console, label=f"train {model}")
    config = {**wanted, "accuracy": accuracy}
    save_checkpoint(path, {k: v.detach().cpu() for k, v in module.state_dict().items()}, config)
    console.print(f"{model}: trained on {splits.describe()['train_size']} {splits.source} images, "
                  f"test accuracy {accuracy:.2f}% -> {path}")
    return module.cpu().eval(), config


def run_train(cfg: RunConfig, console: Console) -> dict[str, dict]:
    """The `train` stage: every model of `cfg` gets a checkpoint; returns model -> checkpoint config.

    Every model's data is loaded before anything trains, so a missing dataset fails fast (DatasetUnavailable).
    """
    device = resolve_device(cfg.device)
    preset = get_preset(cfg.preset)
    splits = {m: training_splits(m, cfg.data_dir, cfg.download, preset.settings(m)) for m in cfg.models}
    return {m: ensure_checkpoint(cfg, m, splits[m], device, console)[1] for m in cfg.models}
