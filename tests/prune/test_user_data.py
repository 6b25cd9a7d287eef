"""The user's data (--data npz:FILE): how a file is read, split and normalised, and each bad file's error."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from prune.data import get_dataset, load_splits
from prune.errors import UsageError
from prune.user_data import check_user_data, data_spec


def _npz(path: Path, count: int = 50, shape=(3, 4, 4), **arrays) -> str:
    """An npz of `count` uint8 images (3, 4, 4) with labels 0-2 (or `arrays`); its data spec for `shape`."""
    rng = np.random.default_rng(0)
    arrays = arrays or {"x": rng.integers(0, 256, (count, 3, 4, 4), dtype=np.uint8),
                        "y": rng.integers(0, 3, count)}
    np.savez(path, **arrays)
    return data_spec(f"npz:{path}", shape)


def test_x_and_y_split_seeded_into_train_and_test_named_by_file(tmp_path):
    spec = _npz(tmp_path / "mine.npz")
    splits = load_splits(spec, Path())
    assert (len(splits.train.labels), len(splits.test.labels)) == (40, 10)
    assert splits.source == "npz:mine.npz"
    again = load_splits(spec, Path())
    assert torch.equal(again.test.images, splits.test.images)


def test_a_file_with_its_own_split_is_used_as_given(tmp_path):
    x = np.zeros((6, 1, 2, 2), dtype=np.uint8)
    spec = _npz(tmp_path / "split.npz", x_train=x, y_train=np.arange(6) % 2, x_test=x[:2] + 9,
                y_test=np.array([1, 0]))
    splits = load_splits(spec, Path())
    assert len(splits.train.labels) == 6 and sorted(splits.test.labels.tolist()) == [0, 1]
    assert int(splits.test.images.max()) == 9


def test_a_split_given_in_class_order_is_shuffled_so_a_limit_takes_every_class(tmp_path):
    y = np.repeat(np.arange(4), 25)  # 0 x25, 1 x25, ...: as class folders or a concatenated file come
    x = np.zeros((100, 1, 2, 2), dtype=np.uint8)
    spec = _npz(tmp_path / "sorted.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    splits = load_splits(spec, Path(), train_limit=20, test_limit=20)
    assert set(splits.train.labels.tolist()) == set(splits.test.labels.tolist()) == {0, 1, 2, 3}
    assert torch.equal(load_splits(spec, Path(), test_limit=20).test.labels, splits.test.labels)


def test_normalisation_uses_the_training_part_per_channel_statistics(tmp_path):
    x = np.random.default_rng(1).normal(0.5, 0.1, (40, 2, 4, 4)).astype(np.float32) * 255
    x[:, 1] += 50
    dataset = get_dataset(_npz(tmp_path / "float.npz", x=x, y=np.zeros(40, dtype=np.int64)))
    train = dataset.normalise(dataset.load(Path(), False, True).images)
    assert torch.allclose(train.mean(dim=(0, 2, 3)), torch.zeros(2), atol=1e-4)
    assert torch.allclose(train.std(dim=(0, 2, 3)), torch.ones(2), atol=1e-3)


@pytest.mark.parametrize(("arrays", "expected"), [
    ({"z": np.zeros((2, 1, 2, 2))}, "no array 'x' (it holds z)"),
    ({"x": np.zeros((2, 1, 2, 2))}, "no array 'y'"),
    ({"x": np.zeros((2, 4)), "y": np.zeros(2)}, "x is [2, 4] and y [2]; pass x (N,C,H,W) and y (N,)"),
    ({"x": np.zeros((2, 1, 2, 2)), "y": np.array([0.5, 1.0])}, "y holds fractions"),
])
def test_a_file_without_usable_x_and_y_is_a_usage_error(tmp_path, arrays, expected):
    with pytest.raises(UsageError, match="^--data npz:") as error:
        get_dataset(_npz(tmp_path / "bad.npz", **arrays))
    assert expected in str(error.value)


def test_a_missing_file_or_unknown_kind_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such file or folder"):
        data_spec(f"npz:{tmp_path / 'absent.npz'}", (1, 2, 2))
    with pytest.raises(UsageError, match="unknown data kind 'csv'; choose from npz"):
        data_spec(f"csv:{tmp_path}", (1, 2, 2))


def test_samples_of_another_shape_or_labels_beyond_the_outputs_do_not_fit_the_model(tmp_path):
    spec = _npz(tmp_path / "mine.npz")
    check_user_data(spec, 3, "m")
    with pytest.raises(UsageError, match="samples are 3,4,4, model 'm' takes 1,4,4"):
        check_user_data(data_spec(f"npz:{tmp_path / 'mine.npz'}", (1, 4, 4)), 3, "m")
    with pytest.raises(UsageError, match=r"labels 0-2 outside model 'm'\'s 2 outputs \(0-1\)"):
        check_user_data(spec, 2, "m")


def _png_folder(root: Path, per_class: int = 5, size=(12, 8)) -> None:
    """Class folders cat/ and dog/ of RGB PNGs `size` (W, H): cats dark, dogs bright."""
    for label, (name, level) in enumerate((("cat", 30), ("dog", 220))):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", size, (level, level + i, label)).save(root / name / f"{i}.png")


def test_an_image_folder_is_resized_cropped_and_split_seeded_with_labels_by_folder(tmp_path):
    _png_folder(tmp_path / "pets")
    splits = load_splits(data_spec(f"imagefolder:{tmp_path / 'pets'}", (3, 4, 4)), Path())
    assert splits.train.images.shape == (8, 3, 4, 4) and splits.test.images.shape == (2, 3, 4, 4)
    assert splits.source == "imagefolder:pets"
    images = torch.cat([splits.train.images, splits.test.images])
    labels = torch.cat([splits.train.labels, splits.test.labels])
    assert torch.equal(images[:, 0, 0, 0] > 100, labels == 1)


def test_train_and_test_folders_are_used_as_given_and_grayscale_for_one_channel(tmp_path):
    _png_folder(tmp_path / "pets" / "train", per_class=3)
    _png_folder(tmp_path / "pets" / "val", per_class=1)
    splits = load_splits(data_spec(f"imagefolder:{tmp_path / 'pets'}", (1, 6, 6)), Path())
    assert splits.train.images.shape == (6, 1, 6, 6) and sorted(splits.test.labels.tolist()) == [0, 1]


@pytest.mark.parametrize(("make", "shape", "expected"), [
    (lambda root: root.mkdir(), (3, 4, 4), "Couldn't find any class folder"),
    (lambda root: (root / "cat").mkdir(parents=True) or (root / "cat" / "0.png").write_bytes(b"no png"),
     (3, 4, 4), "cannot read image"),
    (lambda root: _png_folder(root), (2, 4, 4), "give 1 (grayscale) or 3 (RGB)"),
])
def test_an_unusable_image_folder_is_a_usage_error(tmp_path, make, shape, expected):
    make(tmp_path / "pets")
    with pytest.raises(UsageError, match="^--data imagefolder") as error:
        get_dataset(data_spec(f"imagefolder:{tmp_path / 'pets'}", shape))
    assert expected in str(error.value)


def test_test_classes_other_than_the_training_folders_are_refused(tmp_path):
    _png_folder(tmp_path / "pets" / "train")
    _png_folder(tmp_path / "pets" / "test")
    (tmp_path / "pets" / "test" / "cow").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "pets" / "test" / "cow" / "0.png")
    with pytest.raises(UsageError, match="classes cat, cow, dog differ from the training folder's cat, dog"):
        get_dataset(data_spec(f"imagefolder:{tmp_path / 'pets'}", (3, 4, 4)))
