"""The user's data (`--data KIND:PATH`): an npz file or an image folder, read for a source's input shape.

Resolved to `KIND:C,H,W:/absolute/path`, the string a ModelSpec carries as its dataset, so every process (and
every working directory) reads the same images the same way. Images are normalised with the per-channel mean
and std of the training split. Every bad input is a UsageError of one line.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from prune.data import DatasetSpec, Split, get_dataset
from prune.errors import UsageError
from prune.registry import add_entry, lookup

TEST_FRACTION = 0.2  # data without its own split: this share of it, seeded, is the test split
SPLIT_SEED = 11  # fixed: the split of the user's data never depends on the run's seed

Shape = tuple[int, int, int]
DATA_KINDS: dict[str, Callable[[Path, Shape], DatasetSpec]] = {}  # KIND -> reader of (path, input shape)


def register_data_kind(kind: str):
    """Decorator adding a reader of the user's data (`--data KIND:PATH`) to DATA_KINDS under `kind`."""

    def add(read: Callable[[Path, Shape], DatasetSpec]) -> Callable[[Path, Shape], DatasetSpec]:
        add_entry(DATA_KINDS, "data kind", kind, read)
        return read

    return add


def data_spec(text: str, shape: Shape) -> str:
    """--data's value for a model of input `shape`: KIND:C,H,W:/absolute/path; an unknown kind or a missing
    path is a UsageError."""
    kind, colon, arg = text.partition(":")
    if not colon or not arg:
        raise UsageError(f"--data {text!r} is not KIND:PATH; pass one of {', '.join(DATA_KINDS)}, such as "
                         "npz:data.npz")
    lookup(DATA_KINDS, "data kind", kind)
    path = Path(arg).resolve()
    if not path.exists():
        raise UsageError(f"--data {text!r}: no such file or folder {arg}")
    return f"{kind}:{','.join(map(str, shape))}:{path}"


def _parts(spec: str) -> tuple[str, Shape, Path]:
    """The kind, input shape and path of a resolved spec (data_spec's form)."""
    kind, shape, path = spec.split(":", 2)
    c, h, w = (int(n) for n in shape.split(","))
    return kind, (c, h, w), Path(path)


def user_dataset(spec: str) -> DatasetSpec:
    """The dataset a resolved spec names, read once per process."""
    kind, shape, path = _parts(spec)
    return lookup(DATA_KINDS, "data kind", kind)(path, shape)


def data_label(spec: str) -> str:
    """How records name the user's data: kind and file or folder name (npz:1,28,28:/a/t.npz -> npz:t.npz)."""
    kind, _, path = _parts(spec)
    return f"{kind}:{path.name}"


def data_sha256(spec: str) -> str | None:
    """sha256 of the data file (None for a folder): records tell two files of one name apart."""
    from prune.io import file_sha256

    path = _parts(spec)[2]
    return file_sha256(path) if path.is_file() else None


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of images scaled as DatasetSpec.normalise scales them (x / 255)."""
    scaled = images.double() / 255
    std = scaled.std(dim=(0, 2, 3)).clamp_min(1e-6)
    return tuple(scaled.mean(dim=(0, 2, 3)).tolist()), tuple(std.tolist())


def seeded_split(whole: Split) -> tuple[Split, Split]:
    """(train, test) of data without its own split: TEST_FRACTION of it for test, drawn with SPLIT_SEED."""
    count = len(whole.labels)
    order = torch.randperm(count, generator=torch.Generator().manual_seed(SPLIT_SEED))
    test = max(1, round(count * TEST_FRACTION)) if count > 1 else 0
    return (Split(whole.images[order[test:]], whole.labels[order[test:]], whole.source),
            Split(whole.images[order[:test]], whole.labels[order[:test]], whole.source))


def shuffled(split: Split) -> Split:
    """`split` in an order drawn with SPLIT_SEED: a preset's train and test limits take its leading images, and
    a split given in class order (every image folder, many npz files) would otherwise give the first classes."""
    order = torch.randperm(len(split.labels), generator=torch.Generator().manual_seed(SPLIT_SEED))
    return Split(split.images[order], split.labels[order], split.source)


def splits_dataset(name: str, train: Split, test: Split) -> DatasetSpec:
    """A DatasetSpec of the user's splits, normalised with the training split's per-channel statistics."""
    mean, std = channel_stats(train.images)
    return DatasetSpec(name, lambda _dir, _download, is_train: train if is_train else test, mean, std)


def _npz_array(arrays: dict, key: str, path: Path) -> torch.Tensor:
    """Array `key` of an npz file as a tensor; a missing one is a UsageError."""
    if key not in arrays:
        held = ", ".join(sorted(arrays)) or "none"
        raise UsageError(f"--data npz:{path}: no array {key!r} (it holds {held}); pass x (N,C,H,W) and "
                         "y (N,), or x_train, y_train, x_test, y_test")
    return torch.from_numpy(np.ascontiguousarray(arrays[key]))


def _npz_split(images: torch.Tensor, labels: torch.Tensor, path: Path) -> Split:
    """One split of an npz file: 4-D images (uint8 kept, else float32) and one integer label per image."""
    if images.dim() != 4 or labels.dim() != 1 or len(images) != len(labels):
        raise UsageError(f"--data npz:{path}: x is {list(images.shape)} and y {list(labels.shape)}; pass x "
                         "(N,C,H,W) and y (N,)")
    if labels.is_floating_point() and not torch.equal(labels, labels.round()):
        raise UsageError(f"--data npz:{path}: y holds fractions; pass whole class indices")
    images = images if images.dtype == torch.uint8 else images.float()
    return Split(images, labels.long(), f"npz:{path.name}")


@register_data_kind("npz")
@lru_cache(maxsize=4)
def npz_dataset(path: Path, shape: Shape) -> DatasetSpec:
    """An npz file: x_train, y_train, x_test, y_test when it holds them, else x and y split seeded. uint8
    images are pixels 0-255; other dtypes are floats on that scale. Their shape is checked, not changed."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as exc:
        raise UsageError(f"--data npz:{path}: not a readable npz file ({exc})") from None
    if {"x_train", "y_train", "x_test", "y_test"} <= arrays.keys():
        train = _npz_split(_npz_array(arrays, "x_train", path), _npz_array(arrays, "y_train", path), path)
        test = _npz_split(_npz_array(arrays, "x_test", path), _npz_array(arrays, "y_test", path), path)
        train, test = shuffled(train), shuffled(test)
    else:
        whole = _npz_split(_npz_array(arrays, "x", path), _npz_array(arrays, "y", path), path)
        train, test = seeded_split(whole)
    return splits_dataset(f"npz:{path}", train, test)


IMAGE_MODES = {1: "L", 3: "RGB"}  # channels of the input shape -> the PIL mode images are converted to
TEST_FOLDERS = ("test", "val")  # an image folder's test split, when it has a "train" folder beside one


def _image_folder(root: Path, shape: Shape, label: str, classes: list[str] | None = None) -> Split:
    """Every image under `root` (a folder per class, as torchvision's ImageFolder reads it) as uint8
    (N,C,H,W): the shorter side resized to max(H, W), then centre-cropped to H,W; other classes refused."""
    from torchvision import transforms
    from torchvision.datasets import ImageFolder

    c, h, w = shape
    resize = transforms.Compose([transforms.Resize(max(h, w)), transforms.CenterCrop((h, w))])
    try:
        folder = ImageFolder(str(root), loader=lambda file: _open_image(file, IMAGE_MODES[c]))
    except (FileNotFoundError, OSError) as exc:
        raise UsageError(f"--data imagefolder:{root}: {str(exc).splitlines()[0]}") from None
    if classes is not None and folder.classes != classes:
        raise UsageError(f"--data imagefolder:{root}: classes {', '.join(folder.classes)} differ from the "
                         f"training folder's {', '.join(classes)}")
    images = [transforms.functional.pil_to_tensor(resize(image)) for image, _ in folder]
    return Split(torch.stack(images), torch.tensor(folder.targets, dtype=torch.int64), label)


def _open_image(file: str, mode: str):
    """One image file in `mode` (L or RGB); an unreadable one is a UsageError naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as image:
            return image.convert(mode)
    except (OSError, UnidentifiedImageError) as exc:
        raise UsageError(f"--data imagefolder: cannot read image {file} ({exc})") from None


@register_data_kind("imagefolder")
@lru_cache(maxsize=4)
def imagefolder_dataset(path: Path, shape: Shape) -> DatasetSpec:
    """A folder of class folders (torchvision's ImageFolder): DIR/train with DIR/test (else DIR/val) as given,
    else all of DIR split seeded. Images become the input shape's channels (1: grayscale, 3: RGB) and H,W."""
    if shape[0] not in IMAGE_MODES:
        raise UsageError(f"--data imagefolder:{path}: input shape has {shape[0]} channels; image folders "
                         "give 1 (grayscale) or 3 (RGB)")
    if not path.is_dir():
        raise UsageError(f"--data imagefolder:{path}: not a folder")
    label = f"imagefolder:{path.name}"
    test_dir = next((path / name for name in TEST_FOLDERS if (path / name).is_dir()), None)
    if (path / "train").is_dir() and test_dir is not None:
        train = _image_folder(path / "train", shape, label)
        classes = sorted(entry.name for entry in (path / "train").iterdir() if entry.is_dir())
        test = _image_folder(test_dir, shape, label, classes)
        train, test = shuffled(train), shuffled(test)
    else:
        train, test = seeded_split(_image_folder(path, shape, label))
    return splits_dataset(label, train, test)


def check_user_data(spec: str, num_classes: int, model: str) -> None:
    """Both splits of the user's data fit `model`: samples of its input shape, labels in [0, classes)."""
    kind, shape, path = _parts(spec)
    dataset = get_dataset(spec)
    for split in (dataset.load(Path(), False, True), dataset.load(Path(), False, False)):
        found = tuple(split.images.shape[1:])
        if found != shape:
            raise UsageError(f"--data {kind}:{path}: samples are {','.join(map(str, found))}, model "
                             f"{model!r} takes {','.join(map(str, shape))}")
        if len(split.labels) and (split.labels.min() < 0 or split.labels.max() >= num_classes):
            raise UsageError(f"--data {kind}:{path}: labels {int(split.labels.min())}-"
                             f"{int(split.labels.max())} outside model {model!r}'s {num_classes} outputs "
                             f"(0-{num_classes - 1})")
