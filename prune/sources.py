"""Model sources: a model from outside the registry, named by a string that any process can resolve again.

`torchvision:<builder>` builds a torchvision classifier with random weights; `path/to/file.py:function` and
`package.module:function` import the user's code and call the function, which must return an nn.Module.
Importing the user's code runs it: that is the user's choice. Every bad input is a UsageError of one line.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch
import torchvision
from torch import nn

from prune.classifier import find_classifier
from prune.user_data import check_user_data, data_label, data_sha256
from prune.errors import UsageError
from prune.io import file_sha256
from prune.models import ModelSpec, add_resolved


@dataclass(frozen=True)
class SourceRef:
    """A source string taken apart: its kind (a key of SOURCE_KINDS), what to import and what to call."""

    text: str  # the source as given, e.g. "torchvision:mobilenet_v3_small"
    kind: str  # "torchvision", "file" or "module"
    target: str  # "torchvision", a path ending in .py, or a dotted module name
    attr: str  # the builder or function name


@dataclass(frozen=True)
class ModelSource:
    """A model source and the options that shape the model: what --models, --input-shape, --num-classes and
    --exclude and --data say (a checkpoint is the dense model's weights, loaded by prune.user_checkpoint)."""

    text: str
    input_shape: tuple[int, int, int]  # (C, H, W) of one sample
    num_classes: int = 1000  # outputs of a torchvision builder's classifier; a function's model has its own
    exclude: str | None = None  # regular expression (re.search) of layer names kept dense, as the classifier
    data: str | None = None  # the user's data (prune.user_data.data_spec's form); None: no accuracy

    def __post_init__(self) -> None:
        parse_source(self.text)
        if self.num_classes < 1:
            raise UsageError(f"--num-classes {self.num_classes} is below 1; pass the classifier's outputs")
        if self.exclude is not None:
            try:
                re.compile(self.exclude)
            except re.error as exc:
                raise UsageError(f"--exclude {self.exclude!r} is not a regular expression ({exc})") from None


@dataclass(frozen=True)
class SourceBuild:
    """A source's constructor as a picklable value: calling it, in any process, builds a random model."""

    source: ModelSource

    def __call__(self) -> nn.Module:
        return build_source(self.source)


def parse_source(text: str) -> SourceRef:
    """The parts of a source string; one without a target or a function is a UsageError showing the forms."""
    target, _, attr = text.rpartition(":")
    if not target or not attr.isidentifier():
        raise UsageError(f"model {text!r} is not torchvision:<builder>, path/to/file.py:function or "
                         "package.module:function")
    kind = "torchvision" if target == "torchvision" else "file" if target.endswith(".py") else "module"
    return SourceRef(text, kind, target, attr)


MODEL_SEPARATORS = ", "  # what separates the names of --models


def split_models(text: str) -> tuple[str, ...]:
    """--models text as names, each once, split at commas and spaces; a file source whose path holds either (the
    file exists when the text is read whole) is a UsageError saying so, instead of an unknown model."""
    names = tuple(dict.fromkeys(part for part in re.split(f"[{MODEL_SEPARATORS}]", text) if part))
    for end in (match.end() for match in re.finditer(r"\.py:[A-Za-z_]\w*", text)):
        starts = [0, *(i + 1 for i, ch in enumerate(text[:end]) if ch in MODEL_SEPARATORS)]
        for candidate in (text[start:end] for start in starts):
            if any(ch in candidate for ch in MODEL_SEPARATORS) and Path(candidate.rpartition(":")[0]).is_file():
                raise UsageError(f"model {candidate!r}: its path holds a comma or space, which separate the "
                                 "names of --models; rename the file or link it (ln -s) to a path without them")
    return names


def first_line(exc: BaseException) -> str:
    """'<ExceptionType>: <first line of its message>', for one-line error messages."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _called(ref: SourceRef, function: Callable[..., object], **kwargs: object) -> object:
    """What `function` returns; an exception it raises is a UsageError naming the model and its first line."""
    try:
        return function(**kwargs)
    except Exception as exc:  # the user's code may raise anything
        raise UsageError(f"model {ref.text!r}: {ref.attr}() raised {first_line(exc)}") from None


def _close(name: str, names: list[str]) -> str:
    """'; close names: a, b' when difflib finds any, else ''."""
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.6)
    return f"; close names: {', '.join(close)}" if close else ""


def torchvision_model(ref: SourceRef, num_classes: int) -> object:
    """A torchvision classification builder called with `num_classes` and no weights (nothing downloads)."""
    names = torchvision.models.list_models(module=torchvision.models)
    if ref.attr not in names:
        raise UsageError(f"unknown torchvision builder {ref.attr!r}{_close(ref.attr, names)} (the "
                         "classifiers are torchvision.models.list_models(module=torchvision.models))")
    builder = torchvision.models.get_model_builder(ref.attr)
    return _called(ref, builder, weights=None, num_classes=num_classes)


def _import_file(ref: SourceRef) -> ModuleType:
    """The user's file imported as a module named after its resolved path (once per process)."""
    path = Path(ref.target).resolve()
    if not path.is_file():
        raise UsageError(f"model {ref.text!r}: no file {ref.target}")
    name = f"_prunebench_source_{path.stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # classes and dataclasses defined in the file look their module up here
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code may raise anything
        del sys.modules[name]
        raise UsageError(f"model {ref.text!r}: importing {ref.target} raised {first_line(exc)}") from None
    return module


def _import_module(ref: SourceRef) -> ModuleType:
    """The user's module imported from the Python path."""
    try:
        return importlib.import_module(ref.target)
    except Exception as exc:  # the user's code may raise anything, a missing module ModuleNotFoundError
        raise UsageError(f"model {ref.text!r}: importing {ref.target} raised {first_line(exc)}") from None


def _function_model(ref: SourceRef, module: ModuleType) -> object:
    """What the named function of `module` returns when called without arguments."""
    function = getattr(module, ref.attr, None)
    if not callable(function):
        names = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        raise UsageError(f"model {ref.text!r}: {ref.target} defines no function {ref.attr!r}"
                         f"{_close(ref.attr, names)}")
    return _called(ref, function)


def file_model(ref: SourceRef, num_classes: int) -> object:
    """path/to/file.py:function: the function's model (num_classes is the function's own business)."""
    return _function_model(ref, _import_file(ref))


def module_model(ref: SourceRef, num_classes: int) -> object:
    """package.module:function: the function's model (num_classes is the function's own business)."""
    return _function_model(ref, _import_module(ref))


SOURCE_KINDS: dict[str, Callable[[SourceRef, int], object]] = {
    "torchvision": torchvision_model,
    "file": file_model,
    "module": module_model,
}


def build_source(source: ModelSource) -> nn.Module:
    """A fresh model of `source` with random weights; anything but an nn.Module is a UsageError."""
    ref = parse_source(source.text)
    model = SOURCE_KINDS[ref.kind](ref, source.num_classes)
    if not isinstance(model, nn.Module):
        raise UsageError(f"model {ref.text!r}: {ref.attr}() returned a {type(model).__name__}, not an "
                         "nn.Module")
    return model


def parse_input_shape(text: str) -> tuple[int, int, int]:
    """'3,224,224' -> (3, 224, 224); anything but three positive whole numbers is a UsageError."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 3 or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise UsageError(f"--input-shape {text!r} is not C,H,W: pass three positive whole numbers such as "
                         "3,224,224")
    return (int(parts[0]), int(parts[1]), int(parts[2]))


def check_input_shape(model: nn.Module, source: ModelSource) -> int:
    """Run one sample of the source's input shape through `model` (in eval mode); returns the number of
    classes. A shape the model rejects, or an output other than (batch, classes) logits, is a UsageError."""
    shape = ",".join(map(str, source.input_shape))
    try:
        with torch.inference_mode():
            logits = model.eval()(torch.zeros((1, *source.input_shape)))
    except Exception as exc:  # the user's forward may raise anything
        raise UsageError(f"model {source.text!r} rejects input shape {shape}: {first_line(exc)}") from None
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != 1:
        found = list(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise UsageError(f"model {source.text!r} maps input shape {shape} to {found}, not (batch, classes) "
                         "logits")
    return logits.shape[1]


def resolve_source(source: ModelSource) -> ModelSpec:
    """Build `source` once, check its input shape (and that its data fits) and find its classifier: the
    ModelSpec every stage uses."""
    model = build_source(source)
    num_classes = check_input_shape(model, source)
    example = torch.randn((1, *source.input_shape), generator=torch.Generator().manual_seed(0))
    classifier = find_classifier(model, example, f"model {source.text!r}")
    if source.data is not None:
        check_user_data(source.data, num_classes, source.text)
    spec = ModelSpec(name=source.text, build=SourceBuild(source), dataset=source.data,
                     input_shape=source.input_shape, num_classes=num_classes, classifier=classifier,
                     exclude=source.exclude, source=source.text)
    if not spec.prunable_layers(model):
        kept = f" and the layers --exclude {source.exclude!r} keeps" if source.exclude else ""
        raise UsageError(f"model {source.text!r} has no Conv2d or Linear layer to prune besides its "
                         f"classifier {classifier!r}{kept}")
    return spec


def register_source(source: ModelSource) -> ModelSpec:
    """Resolve `source` and make it known to prune.models.get_model_spec under its source string."""
    spec = resolve_source(source)
    add_resolved(spec)
    return spec


def source_identity(source: ModelSource, checkpoint: Path | None = None) -> dict:
    """What a record says about where the model came from: the source, a sha256 of its file (file sources) and
    of the checkpoint, the input shape, and the data with a sha256 of its file; JSON-ready."""
    ref = parse_source(source.text)
    return {"source": source.text, "kind": ref.kind,
            "source_sha256": file_sha256(Path(ref.target)) if ref.kind == "file" else None,
            "checkpoint": None if checkpoint is None else str(checkpoint),
            "checkpoint_sha256": None if checkpoint is None else file_sha256(checkpoint),
            "input_shape": list(source.input_shape),
            "data": None if source.data is None else data_label(source.data),
            "data_sha256": None if source.data is None else data_sha256(source.data)}
