"""torch sparse COO / CSR files: pruned weights as 2-D sparse tensors, everything else dense.

Conv weights are flattened to (out, in*kh*kw) so both layouts are 2-D matrices (what torch.sparse.mm takes);
CSR indices are int32 where they fit. torch.load(weights_only=True) validates sparse index invariants but not the
declared sizes, so every tensor is checked against the model's shapes here before anything is densified.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from prune.errors import ArtifactError

SPARSE_VERSION = 1
LAYOUTS = {"sparse_coo": torch.sparse_coo, "sparse_csr": torch.sparse_csr}
INT32_MAX = 2**31 - 1


def matrix_shape(shape: torch.Size | tuple[int, ...]) -> tuple[int, int]:
    """The 2-D shape a weight is stored under: (out, everything else)."""
    return (shape[0], math.prod(shape[1:]))


def to_sparse(weight: torch.Tensor, layout: str) -> torch.Tensor:
    """A weight as a 2-D sparse tensor in `layout` ("sparse_coo" or "sparse_csr")."""
    matrix = weight.detach().reshape(matrix_shape(weight.shape))
    if layout == "sparse_coo":
        return matrix.to_sparse().coalesce()
    csr = matrix.to_sparse_csr()
    if max(csr.values().numel(), matrix.shape[1]) > INT32_MAX:
        return csr
    return torch.sparse_csr_tensor(csr.crow_indices().int(), csr.col_indices().int(), csr.values(), csr.shape)


def sparse_file(state: Mapping[str, torch.Tensor], pruned: set[str], layout: str, model: str) -> dict:
    """The object saved as sparse_coo.pt / sparse_csr.pt for a permanent state_dict."""
    tensors = {key: to_sparse(t, layout) if key in pruned else t.detach() for key, t in state.items()}
    return {"format": f"prunebench-{layout}", "version": SPARSE_VERSION, "model": model,
            "shapes": {key: list(t.shape) for key, t in state.items()}, "state": tensors}


def read_sparse_file(blob: object, expected: Mapping[str, torch.Tensor], model: str,
                     source: str) -> dict[str, torch.Tensor]:
    """Validate a loaded sparse file against the model's state shapes; returns its tensors, sparse ones intact."""
    if not isinstance(blob, dict) or blob.get("format") not in {f"prunebench-{name}" for name in LAYOUTS}:
        raise ArtifactError(f"{source}: not a prunebench sparse file; re-export it with `python -m bench export`")
    if blob.get("model") != model:
        raise ArtifactError(f"{source}: written for model {blob.get('model')!r}, not {model}; "
                            "load it with the model it was exported from")
    state = blob.get("state")
    if not isinstance(state, dict) or state.keys() != expected.keys():
        raise ArtifactError(f"{source}: tensor names differ from {model}'s; the file is for another architecture")
    layout = LAYOUTS[blob["format"].removeprefix("prunebench-")]
    for key, tensor in state.items():
        _check_tensor(key, tensor, expected[key], layout, source)
    return state


def _check_tensor(key: str, tensor: object, like: torch.Tensor, layout: torch.layout, source: str) -> None:
    if not isinstance(tensor, torch.Tensor) or tensor.dtype != like.dtype:
        raise ArtifactError(f"{source}: {key} is not a {like.dtype} tensor; the file is corrupt, re-export it")
    want = matrix_shape(like.shape) if tensor.layout == layout else tuple(like.shape)
    if tensor.layout not in (layout, torch.strided) or tuple(tensor.shape) != tuple(want):
        raise ArtifactError(f"{source}: {key} is a {tensor.layout} tensor of shape {tuple(tensor.shape)}, "
                            f"expected {tuple(want)}; the file does not match the model, re-export it")


def densify(state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Dense state_dict from validated sparse-file tensors (sparse ones reshaped to the model's shapes)."""
    return {key: t.to_dense().reshape(expected[key].shape) if t.layout != torch.strided else t
            for key, t in state.items()}
