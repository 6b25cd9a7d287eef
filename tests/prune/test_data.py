"""Datasets: torchvision's files when present, the embedded MNIST digits offline, loud errors otherwise."""

import gzip
import pickle
import shutil
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision.datasets.cifar
from tiny_datasets import TINY_TEST, TINY_TRAIN, tiny_digits
from torchvision.datasets import CIFAR10

from prune.data import (CIFAR10_STANDIN_SOURCE, EMBEDDED_SOURCE, embedded_digits, embedded_mnist, get_dataset,
                        flips_allowed, load_splits, load_test_tensors, parse_integer_csv, stratified_split)
from prune.errors import DatasetUnavailable, UsageError


def test_mnist_without_files_falls_back_to_the_embedded_digits_split_4000_1000(tmp_path):
    splits = load_splits("mnist", tmp_path)
    assert splits.describe() == {"source": EMBEDDED_SOURCE, "train_size": 4000, "test_size": 1000}
    assert splits.train.images.shape == (4000, 1, 28, 28) and splits.train.images.dtype == torch.uint8


def test_embedded_split_is_stratified_100_test_digits_per_class(tmp_path):
    splits = load_splits("mnist", tmp_path)
    assert torch.bincount(splits.test.labels).tolist() == [100] * 10
    assert torch.bincount(splits.train.labels).tolist() == [400] * 10


def test_embedded_split_is_fixed_across_calls_and_disjoint():
    labels = embedded_digits()[1]
    train, test = stratified_split(labels, 100, seed=5000)
    again_train, again_test = stratified_split(labels, 100, seed=5000)
    assert np.array_equal(train, again_train) and np.array_equal(test, again_test)
    assert not set(train) & set(test) and len(train) + len(test) == 5000


def test_embedded_split_is_shuffled_so_leading_images_hold_every_digit(tmp_path):
    splits = load_splits("mnist", tmp_path, train_limit=256, test_limit=100)
    assert torch.bincount(splits.train.labels, minlength=10).min().item() > 0  # sorted: only zeros
    assert torch.bincount(splits.test.labels, minlength=10).min().item() > 0


def test_embedded_test_tensors_are_normalised_like_mnist(tmp_path):
    test = load_test_tensors("mnist", tmp_path)
    raw = load_splits("mnist", tmp_path).test.images.float() / 255
    assert test.source == EMBEDDED_SOURCE
    assert test.x.dtype == torch.float32 and test.y.dtype == torch.int64
    assert torch.allclose(test.x, (raw - 0.1307) / 0.3081)
    assert test.x.min().item() == pytest.approx(-0.1307 / 0.3081)


def test_embedded_digits_are_real_images_not_noise():
    images, labels = embedded_digits()
    assert images.shape == (5000, 28, 28) and images.max() == 255
    assert (images == 0).mean() > 0.7  # digits: mostly black background
    assert np.bincount(labels).tolist() == [500] * 10


def test_integer_csv_parser_agrees_with_numpy():
    text = b"0,12,255\n7,0,100\n"
    assert parse_integer_csv(text).tolist() == np.loadtxt(text.decode().splitlines(), delimiter=",").tolist()
    assert parse_integer_csv(b"1,2\n3,4").tolist() == [[1, 2], [3, 4]]


def test_integer_csv_parser_rejects_other_text():
    with pytest.raises(ValueError, match="not a CSV of non-negative integers"):
        parse_integer_csv(gzip.compress(b"1,2\n"))


def test_mnist_raw_files_are_read_through_torchvision(mnist_dir):
    splits = load_splits("mnist", mnist_dir)
    images, labels = tiny_digits(TINY_TRAIN, seed=TINY_TRAIN)
    assert splits.describe() == {"source": "mnist", "train_size": TINY_TRAIN, "test_size": TINY_TEST}
    assert torch.equal(splits.train.images[:, 0], torch.from_numpy(images))
    assert torch.equal(splits.train.labels, torch.from_numpy(labels).long())


def test_split_limits_keep_the_first_samples(mnist_dir):
    splits = load_splits("mnist", mnist_dir, train_limit=4, test_limit=2)
    assert splits.describe() == {"source": "mnist", "train_size": 4, "test_size": 2}


def test_incomplete_mnist_folder_is_unavailable_naming_the_fix(mnist_dir):
    (mnist_dir / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetUnavailable, match=r"MNIST in .*mnist-data unusable .*--download .* delete"):
        load_test_tensors("mnist", mnist_dir)


def test_cifar10_batches_are_read_through_torchvision_as_nchw(cifar_dir):
    splits = load_splits("cifar10", cifar_dir)
    assert splits.describe() == {"source": "cifar10", "train_size": TINY_TRAIN, "test_size": TINY_TEST}
    assert splits.train.images.shape == (TINY_TRAIN, 3, 32, 32)
    test = load_test_tensors("cifar10", cifar_dir)
    assert test.x.shape == (TINY_TEST, 3, 32, 32) and test.source == "cifar10"


def test_present_cifar10_is_used_instead_of_the_stand_in(cifar_dir):
    batch = pickle.loads((cifar_dir / CIFAR10.base_folder / "test_batch").read_bytes())
    test = load_splits("cifar10", cifar_dir).test
    assert test.source == "cifar10"
    assert torch.equal(test.images, torch.from_numpy(batch["data"]).view(-1, 3, 32, 32))
    assert test.labels.tolist() == batch["labels"]


def test_cifar10_channels_are_normalised_per_channel(cifar_dir):
    test = load_test_tensors("cifar10", cifar_dir)
    raw = load_splits("cifar10", cifar_dir).test.images.float() / 255
    assert torch.allclose(test.x[:, 2], (raw[:, 2] - 0.4465) / 0.2616)


def test_cifar10_without_files_stands_in_the_embedded_digits_split_4000_1000(tmp_path):
    splits = load_splits("cifar10", tmp_path)
    assert splits.describe() == {"source": CIFAR10_STANDIN_SOURCE, "train_size": 4000, "test_size": 1000}
    assert splits.train.images.shape == (4000, 3, 32, 32) and splits.test.images.shape == (1000, 3, 32, 32)
    assert splits.train.images.dtype == torch.uint8 and splits.test.labels.dtype == torch.int64


def test_cifar10_stand_in_is_the_digits_centred_with_2_pixel_zero_borders_in_3_equal_channels(tmp_path):
    test, digits = load_splits("cifar10", tmp_path).test, embedded_mnist(train=False)
    for channel in range(3):
        assert torch.equal(test.images[:, channel, 2:30, 2:30], digits.images[:, 0])
    border = test.images.clone()
    border[:, :, 2:30, 2:30] = 0
    assert border.max().item() == 0
    assert torch.equal(test.labels, digits.labels)


def test_cifar10_stand_in_source_names_the_digits_and_cifar10_in_every_loader(tmp_path):
    assert "mnist" in CIFAR10_STANDIN_SOURCE and "cifar10" in CIFAR10_STANDIN_SOURCE
    assert CIFAR10_STANDIN_SOURCE != EMBEDDED_SOURCE
    assert load_test_tensors("cifar10", tmp_path).source == CIFAR10_STANDIN_SOURCE


def test_cifar10_stand_in_is_normalised_with_cifar10_statistics(tmp_path):
    test = load_test_tensors("cifar10", tmp_path)
    assert test.x.shape == (1000, 3, 32, 32) and test.x.dtype == torch.float32
    assert test.x[:, 0].min().item() == pytest.approx(-0.4914 / 0.2470)
    assert test.x[:, 2].max().item() == pytest.approx((1 - 0.4465) / 0.2616)


def test_download_reads_cifar10_through_torchvision_not_the_stand_in(cifar_dir, tmp_path, monkeypatch):
    fetched = []

    def fake_download(dataset: CIFAR10) -> None:
        fetched.append(dataset.root)
        shutil.copytree(cifar_dir / CIFAR10.base_folder, Path(dataset.root) / CIFAR10.base_folder,
                        dirs_exist_ok=True)

    monkeypatch.setattr(CIFAR10, "download", fake_download)
    splits = load_splits("cifar10", tmp_path / "empty", download=True)
    assert splits.describe() == {"source": "cifar10", "train_size": TINY_TRAIN, "test_size": TINY_TEST}
    assert fetched == [str(tmp_path / "empty")] * 2


def test_failed_cifar10_download_is_unavailable_not_the_stand_in(tmp_path, monkeypatch):
    def offline(*args, **kwargs) -> None:
        raise URLError("network unreachable")

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", offline)
    with pytest.raises(DatasetUnavailable, match=r"CIFAR10 in .* unusable .*network unreachable"):
        load_splits("cifar10", tmp_path, download=True)


def test_empty_cifar10_folder_is_unavailable_naming_the_folder_and_the_fix(tmp_path):
    (tmp_path / CIFAR10.base_folder).mkdir()
    with pytest.raises(DatasetUnavailable) as info:
        load_test_tensors("cifar10", tmp_path)
    message = str(info.value)
    assert str(tmp_path / CIFAR10.base_folder) in message and "--download" in message and "stand-in" in message
    assert "\n" not in message


def test_corrupt_cifar10_batch_is_unavailable(cifar_dir):
    (cifar_dir / "cifar-10-batches-py" / "test_batch").write_bytes(b"garbage")
    with pytest.raises(DatasetUnavailable, match="CIFAR10 in .* unusable"):
        load_test_tensors("cifar10", cifar_dir)


def test_unknown_dataset_is_a_usage_error_listing_the_valid_names():
    with pytest.raises(UsageError, match="unknown dataset 'imagenet'; choose from mnist, cifar10"):
        get_dataset("imagenet")


def test_flips_suit_cifar10_but_no_digits():
    assert flips_allowed("cifar10")
    assert not any(flips_allowed(source) for source in ("mnist", EMBEDDED_SOURCE, CIFAR10_STANDIN_SOURCE))
