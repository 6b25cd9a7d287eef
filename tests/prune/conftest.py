"""Fixtures for the prune tests: smoke-preset run configs in tmp_path, tiny torchvision dataset files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tiny_datasets import write_cifar10, write_mnist
from torchvision.datasets import CIFAR10

from prune.config import RunConfig


@pytest.fixture
def smoke_config(tmp_path) -> Callable[..., RunConfig]:
    """smoke_config(**overrides): a CPU smoke-preset RunConfig writing to tmp_path/out, no data on disk."""

    def make(**overrides) -> RunConfig:
        settings = {"models": ("lenet300_100",), "ratios": (0, 50, 90), "out": tmp_path / "out",
                    "data_dir": tmp_path / "data", "device": "cpu", "seed": 0, "preset": "smoke"}
        return RunConfig(**{**settings, **overrides})

    return make


@pytest.fixture
def mnist_dir(tmp_path) -> Path:
    """A data dir holding torchvision's raw MNIST files with a few random images."""
    root = tmp_path / "mnist-data"
    write_mnist(root)
    return root


@pytest.fixture
def cifar_dir(tmp_path, monkeypatch) -> Path:
    """A data dir with tiny pickled CIFAR-10 batches; torchvision's md5 table patched to their checksums."""
    root = tmp_path / "cifar-data"
    train_names = [name for name, _ in CIFAR10.train_list]
    test_name, meta_name = CIFAR10.test_list[0][0], CIFAR10.meta["filename"]
    sums = write_cifar10(root / CIFAR10.base_folder, train_names, test_name, meta_name)
    monkeypatch.setattr(CIFAR10, "train_list", [[name, sums[name]] for name in train_names])
    monkeypatch.setattr(CIFAR10, "test_list", [[test_name, sums[test_name]]])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": sums[meta_name]})
    return root
