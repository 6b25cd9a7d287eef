"""Loaders for every artifact: restricted unpickling only, sha256 when given, every tensor's shape and dtype
(and every mask's 0/1 values) checked against the model before it is used.

Any truncated, corrupt or foreign file, or one whose sha256 differs from the manifest's, is an ArtifactError whose
one-line message names the file and the fix.
"""

from __future__ import annotations

import functools
import hashlib
import warnings
from collections.abc import Callable
from pathlib import Path

import onnxruntime as ort
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from export.codebook import codebook_header_state, decode_codebook, is_codebook, read_codebook_header
from export.onnx_io import check_onnx, session_from_bytes
from export.packed import header_state, read_header, unpack_state
from export.sparse import LAYOUTS, densify, read_sparse_file
from prune.errors import ArtifactError
from prune.io import file_sha256, torch_load
from prune.models import arch_layers, build_model
from prune.pruning import check_state_shapes
from prune.structured import rebuild


def check_sha256(path: Path, found: str, expected: str | None) -> None:
    """Raise ArtifactError when a manifest's sha256 is given and the file's differs."""
    if expected is not None and found != expected:
        raise ArtifactError(f"{path}: sha256 {found[:12]}... differs from the manifest's {expected[:12]}...; "
                            "the file changed after export, rerun `python -m bench export`")


@functools.cache
def expected_state(model_name: str) -> dict[str, torch.Tensor]:
    """The dense state_dict layout of a model as meta tensors (shapes and dtypes, no memory, no init cost)."""
    with torch.device("meta"):
        return build_model(model_name).state_dict()


def _load_blob(path: Path, sha256: str | None) -> object:
    path = Path(path)
    if sha256 is not None and path.is_file():
        check_sha256(path, file_sha256(path), sha256)
    with warnings.catch_warnings():  # torch warns that it validates sparse invariants under weights_only
        warnings.simplefilter("ignore", UserWarning)
        return torch_load(path)


def architecture(model_name: str, state: dict[str, torch.Tensor], source: str) -> nn.Module:
    """A meta-device module of `model_name` in the shapes `state` declares: the registry's own, or, when every key
    is the architecture's and some shape is narrower, its channel-pruned form (l1-structured), which `rebuild`
    checks layer by layer so that only widths that chain through the whole network are accepted."""
    expected = expected_state(model_name)
    if state.keys() == expected.keys() and any(
            isinstance(t, torch.Tensor) and t.shape != expected[key].shape for key, t in state.items()):
        return rebuild(model_name, {key: list(t.shape) for key, t in state.items()}, source)
    with torch.device("meta"):
        return build_model(model_name)


def _module(model_name: str, state: dict[str, torch.Tensor], source: str) -> nn.Module:
    """A dense eval-mode module of `model_name` holding `state` (checked first), built without initialisation."""
    model = architecture(model_name, state, source)
    check_state_shapes(model.state_dict(), state, source, model_name)
    model.load_state_dict(state, assign=True)
    return model.eval()


def masked_module(model_name: str, state: dict[str, torch.Tensor], source: str) -> nn.Module:
    """prune.pruning.masked_model without initialising weights that the state then replaces (0.2 s per ResNet-50)."""
    with torch.device("meta"):
        model = build_model(model_name)
        for _, module in arch_layers(model, model_name):
            torch_prune.identity(module, "weight")
    check_state_shapes(model.state_dict(), state, source, model_name)
    model.load_state_dict(state, assign=True)
    for _, module in arch_layers(model, model_name):  # as the forward pre-hook does: `weight` is current
        module.weight = module.weight_orig * module.weight_mask
    return model.eval()


def _from_packed(blob: dict, model_name: str, source: str) -> nn.Module:
    header = read_header(blob, source)
    if header["model"] != model_name:
        raise ArtifactError(f"{source}: packed from model {header['model']!r}, not {model_name}; "
                            "load it with the model it was exported from")
    declared = header_state(header)
    check_state_shapes(architecture(model_name, declared, source).state_dict(), declared, source, model_name)
    return _module(model_name, unpack_state(blob, header, source), source)


def _from_codebook(blob: dict, model_name: str, source: str) -> nn.Module:
    header = read_codebook_header(blob, source)
    if header.get("model") != model_name:
        raise ArtifactError(f"{source}: codebook of model {header.get('model')!r}, not {model_name}; "
                            "load it with the model it was exported from")
    declared = codebook_header_state(header)
    check_state_shapes(architecture(model_name, declared, source).state_dict(), declared, source, model_name)
    return _module(model_name, decode_codebook(blob, header, source), source)


def _from_sparse(blob: dict, model_name: str, source: str) -> nn.Module:
    expected = expected_state(model_name)
    return _module(model_name, densify(read_sparse_file(blob, expected, model_name, source), expected), source)


def state_module(blob: dict, model_name: str, source: str) -> nn.Module:
    """An eval-mode module from a state_dict: masked (weight_orig + weight_mask), channel-pruned or dense."""
    if any(key.endswith("weight_orig") for key in blob):
        return masked_module(model_name, blob, source)
    return _module(model_name, blob, source)


def _container(blob: object) -> str | None:
    """Which kind of .pt file a loaded object is: packed, codebook, sparse, state (a plain state_dict), or None."""
    if not isinstance(blob, dict):
        return None
    if blob.keys() == {"header", "payload"}:
        return "codebook" if is_codebook(blob) else "packed"
    if blob.get("format") in {f"prunebench-{layout}" for layout in LAYOUTS}:
        return "sparse"
    if blob and all(isinstance(key, str) and isinstance(t, torch.Tensor) for key, t in blob.items()):
        return "state"
    return None


CONTAINERS: dict[str, Callable[[dict, str, str], nn.Module]] = {
    "packed": _from_packed, "codebook": _from_codebook, "sparse": _from_sparse, "state": state_module}


def load_torch_model(path: str | Path, model_name: str, sha256: str | None = None) -> nn.Module:
    """An eval-mode module from any .pt artifact: the masked module for masked.pt, a dense one otherwise."""
    blob = _load_blob(Path(path), sha256)
    kind = _container(blob)
    if kind is None:
        raise ArtifactError(f"{path}: not a prunebench artifact (no state_dict, sparse or packed content); "
                            "re-export it with `python -m bench export`")
    return CONTAINERS[kind](blob, model_name, str(path))


def read_sparse_weights(path: str | Path, model_name: str, sha256: str | None = None) -> dict[str, torch.Tensor]:
    """The tensors of sparse_csr.pt (or sparse_coo.pt), pruned weights as validated 2-D sparse tensors.

    Shapes are checked against the model before anything is densified; a conv weight is stored as
    (out, in*kh*kw), so reshape a densified tensor to the model's weight shape.
    """
    blob = _load_blob(Path(path), sha256)
    return read_sparse_file(blob, expected_state(model_name), model_name, str(path))


def onnx_session(path: str | Path, threads: int | None = None, *, model_name: str | None = None,
                 sha256: str | None = None) -> ort.InferenceSession:
    """A CPU onnxruntime session for model.onnx or model.sparse.onnx, after onnx.checker's full check.

    Input "input" (N, C, H, W) with a dynamic batch axis, output "logits"; `model_name` checks the architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such file; run `python -m bench export` first")
    data = path.read_bytes()
    check_sha256(path, hashlib.sha256(data).hexdigest(), sha256)
    check_onnx(data, path, model_name)
    return session_from_bytes(data, threads, path)
