"""Tiny dataset files in torchvision's on-disk layouts (MNIST raw IDX files, pickled CIFAR-10 batches)."""

from __future__ import annotations

import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np

TINY_TRAIN, TINY_TEST = 15, 6  # images per split (CIFAR-10: 5 train batches of 3)


def tiny_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` random 28x28 uint8 images and labels 0-9 cycling."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), np.arange(n, dtype=np.uint8) % 10


def idx_file(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array in the big-endian IDX format of the MNIST raw files."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path) -> None:
    """torchvision's four raw MNIST files under root/MNIST/raw, TINY_TRAIN and TINY_TEST images."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", TINY_TRAIN), ("t10k", TINY_TEST)):
        images, labels = tiny_digits(n, seed=n)
        idx_file(raw / f"{prefix}-images-idx3-ubyte", images)
        idx_file(raw / f"{prefix}-labels-idx1-ubyte", labels)


def md5(path: Path) -> str:
    """Hex md5 of a file, as torchvision's integrity check computes it."""
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_cifar10(folder: Path, train_names: list[str], test_name: str, meta_name: str) -> dict[str, str]:
    """Pickled CIFAR-10 batches (random images) and the label-name meta file; returns file name -> md5."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    sizes = {name: TINY_TRAIN // len(train_names) for name in train_names} | {test_name: TINY_TEST}
    for name, n in sizes.items():
        images = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
        entry = {"data": images, "labels": [i % 10 for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(entry))
    (folder / meta_name).write_bytes(pickle.dumps({"label_names": [f"class{i}" for i in range(10)]}))
    return {name: md5(folder / name) for name in [*sizes, meta_name]}
