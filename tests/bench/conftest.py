"""Fixtures for the measurement tests: tiny pruned LeNets exported with the real export stage, test images, and
jobs run through a fake runtime."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.harness.job import Job
from bench.harness.latency import RepsPolicy
from bench.runtimes import RUNTIMES, Opener, Runtime
from export.exporter import export_one
from export.verify import EvalData
from prune.config import pruned_path
from prune.io import save_checkpoint
from prune.models import build_model, example_input
from prune.pruning import prune_l1

SEED = 0
MEASURED = {"lenet300_100": (0, 90), "lenet5": (90,)}
IMAGES = 96


def eval_data(model: str) -> EvalData:
    """Seeded random images with seeded labels: accuracy is measurable without any dataset on disk."""
    labels = torch.randint(0, 10, (IMAGES,), generator=torch.Generator().manual_seed(SEED))
    return EvalData(example_input(model, IMAGES, SEED), labels, "random-test", None)


def write_pruned(out: Path, model: str, ratio: float) -> None:
    """A seeded model pruned at `ratio`, saved where the sweep saves it."""
    torch.manual_seed(SEED)
    module = prune_l1(build_model(model), ratio)
    save_checkpoint(pruned_path(out, model, ratio), module.state_dict(),
                    {"model": model, "ratio": ratio, "schedule": "oneshot", "seed": SEED, "preset": "smoke"})


@pytest.fixture(scope="session")
def images() -> Callable[[str], EvalData]:
    """images(model): the seeded test images the artifacts were exported and are measured with."""
    return eval_data


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> Path:
    """An --out directory holding the exported artifacts of MEASURED (shared: tests must not modify it)."""
    out = tmp_path_factory.mktemp("exported")
    for model, ratios in MEASURED.items():
        for ratio in ratios:
            write_pruned(out, model, ratio)
            export_one(out, model, ratio, eval_data(model))
    return out


@pytest.fixture
def fake_job(monkeypatch) -> Callable[[Opener], Job]:
    """fake_job(opener): a LeNet-300-100 job at batch 1 and 8 whose runtime is `opener` (registered for this test
    only), with no artifact file, no dense pair and no test data; the torch thread count stays as it is."""

    def job(opener: Opener) -> Job:
        monkeypatch.setitem(RUNTIMES, "fake", Runtime("fake", "dense", "cpu", opener))
        return Job("lenet300_100", "fake", Path("unused.pt"), None, torch.get_num_threads(), (1, 8),
                   RepsPolicy(warmup=0, min_reps=3, max_reps=3, max_seconds=1.0),
                   example_input("lenet300_100", 2, SEED).numpy(), np.zeros((2, 10)), None, SEED)

    return job
