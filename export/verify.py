"""Verification data and logits: every artifact, loaded back, must reproduce the in-memory pruned model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from export.onnx_io import INPUT_NAME, pruned_sparsity
from prune.errors import DatasetUnavailable
from prune.models import EVAL_BATCH, example_input, get_model_spec
from prune.pruning import global_sparsity

VERIFY_BATCH = 16  # first test images whose logits every artifact must reproduce (a wrong loader shows on each)
AGREEMENT_BATCH = 64  # first test images the codebook's top-1 must agree with the pruned model's on
RANDOM_BATCH = 2  # seeded random images when the dataset is absent (a ResNet-50 batch of 64 takes 2 s on 2 cores)
TOLERANCE = 1e-5  # max |logits difference| allowed per unit of logit scale (fp32 error grows with magnitude)


@dataclass(frozen=True)
class EvalData:
    """Images every artifact is run on: the whole test split, or a seeded random batch without a dataset."""

    x: torch.Tensor  # (N, C, H, W) float32, normalised
    y: torch.Tensor | None  # labels; None without a dataset (accuracy is then not measurable)
    source: str | None  # dataset source (e.g. "mnist-embedded-5k"), None without one
    note: str | None  # why accuracy is None

    @property
    def verify_count(self) -> int:
        """How many leading images the logits comparison uses."""
        return min(VERIFY_BATCH, len(self.x))

    @property
    def agreement_count(self) -> int:
        """How many leading images the codebook's bit search compares top-1 on (a 1-point tolerance needs more
        images than a logits comparison does)."""
        return min(AGREEMENT_BATCH, len(self.x))


def load_eval_data(model: str, data_dir: Path, download: bool, seed: int,
                   test_limit: int | None = None) -> EvalData:
    """The first `test_limit` images of the model's test split (all when None; pass the preset's, which prune
    and measure use too), or a seeded random batch with the reason when the dataset is unavailable."""
    from prune.data import load_test_tensors

    try:
        test = load_test_tensors(get_model_spec(model).dataset, data_dir, download)
    except DatasetUnavailable as exc:
        return random_eval_data(model, seed, f"no test data ({exc})")
    return EvalData(test.x[:test_limit], test.y[:test_limit], test.source, None)


def random_eval_data(model: str, seed: int, note: str) -> EvalData:
    """A seeded random verification batch; accuracy is None with `note` as the reason."""
    return EvalData(example_input(model, RANDOM_BATCH, seed), None, None, note)


def torch_logits(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits of an eval-mode module, in batches."""
    with torch.inference_mode():
        return torch.cat([module(batch) for batch in x.split(EVAL_BATCH)])


def onnx_logits(session: ort.InferenceSession, x: torch.Tensor) -> torch.Tensor:
    """Logits of an onnxruntime session, in batches."""
    outputs = [session.run(None, {INPUT_NAME: batch.numpy()})[0] for batch in x.split(EVAL_BATCH)]
    return torch.from_numpy(np.concatenate(outputs))


LOGITS: dict[str, Callable[[object, torch.Tensor], torch.Tensor]] = {"torch": torch_logits, "onnx": onnx_logits}


def top1_accuracy(logits: torch.Tensor, labels: torch.Tensor | None) -> float | None:
    """Top-1 accuracy in percent; None without labels."""
    if labels is None:
        return None
    return 100.0 * (logits.argmax(dim=1) == labels).double().mean().item()


def max_abs_diff(logits: torch.Tensor, reference: torch.Tensor, count: int) -> float:
    """Max |difference| over the first `count` rows."""
    return (logits[:count].double() - reference[:count].double()).abs().max().item()


def allowed_diff(reference: torch.Tensor, count: int) -> float:
    """TOLERANCE, scaled up by the largest reference logit beyond 1: ONNX folds BatchNorm into conv weights, so
    its rounding differs; a random-weight ResNet-50 has logits near 28 and differs by ~3e-5 at full precision."""
    return TOLERANCE * max(1.0, reference[:count].abs().max().item())


def artifact_sparsity(kind: str, loaded: object, path: Path, arch: str) -> float:
    """Percent zeros over the pruned weights of architecture `arch` as the loaded artifact holds them."""
    if kind == "onnx":
        return pruned_sparsity(onnx.load(path))
    return global_sparsity(loaded, arch)
