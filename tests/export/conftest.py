"""Fixtures for the export tests: seeded pruned LeNets written where the sweep would write them, and test images."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import export.exporter
from export.exporter import artifact_dir, export_one
from export.verify import EvalData
from prune.config import pruned_path
from prune.data import load_test_tensors
from prune.errors import DatasetUnavailable
from prune.io import save_checkpoint
from prune.models import build_model, example_input, get_model_spec
from prune.pruning import prune_l1

SEED = 0
EXPORTED = {"lenet300_100": (0, 50, 90, 99), "lenet5": (50, 90, 99)}


def _write_pruned(out: Path, model: str, ratio: float, seed: int = SEED) -> Path:
    """Build `model` under `seed`, prune it L1 at `ratio` and save it as the sweep does."""
    torch.manual_seed(seed)
    module = prune_l1(build_model(model), ratio)
    path = pruned_path(out, model, ratio)
    save_checkpoint(path, module.state_dict(), {"model": model, "ratio": ratio, "schedule": "oneshot",
                                                "seed": seed, "preset": "test"})
    return path


IMAGES = 256


@functools.cache
def _dataset_images(dataset: str) -> EvalData | None:
    """The first IMAGES test images of `dataset` through prune.data (MNIST offline: embedded digits), if any."""
    try:
        test = load_test_tensors(dataset, Path("/nonexistent-prunebench-data"))
    except DatasetUnavailable:
        return None
    return EvalData(test.x[:IMAGES], test.y[:IMAGES], test.source, None)


def _images(model: str) -> EvalData:
    """Test images for `model`, or seeded random images and labels where its dataset is missing (CIFAR-10)."""
    found = _dataset_images(get_model_spec(model).dataset)
    if found is not None:
        return found
    labels = torch.randint(0, 10, (IMAGES,), generator=torch.Generator().manual_seed(SEED))
    return EvalData(example_input(model, IMAGES, SEED), labels, "random-test", None)


@pytest.fixture
def eval_data_from_fixture(monkeypatch) -> None:
    """Make the stage use the fixture's cached images instead of loading the whole test split per model."""
    monkeypatch.setattr(export.exporter, "load_eval_data", lambda model, data_dir, download, seed, limit: _images(model))
    export.exporter.cached_eval_data.cache_clear()
    yield
    export.exporter.cached_eval_data.cache_clear()


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> Path:
    """An --out directory with the LeNets of EXPORTED pruned and exported (shared; tests must not modify it)."""
    out = tmp_path_factory.mktemp("exported")
    for model, ratios in EXPORTED.items():
        data = _images(model)
        for ratio in ratios:
            _write_pruned(out, model, ratio)
            export_one(out, model, ratio, data)
    return out


@pytest.fixture
def artifact(exported) -> Callable[[str, float, str], Path]:
    """Path of one file of the shared export: artifact(model, ratio, filename)."""
    return lambda model, ratio, filename: artifact_dir(exported, model, ratio) / filename


@pytest.fixture
def write_pruned() -> Callable[..., Path]:
    """write_pruned(out, model, ratio, seed=0): a seeded pruned checkpoint where the sweep would write it."""
    return _write_pruned


@pytest.fixture
def images() -> Callable[[str], EvalData]:
    """images(model): the evaluation images the shared export used for `model`."""
    return _images
