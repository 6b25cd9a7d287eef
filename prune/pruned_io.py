"""Pruned checkpoints stored as what changed from the dense model they were pruned from.

A model pruned without recovery keeps every dense weight (torch's weight_orig) and adds a mask: saved whole, one
is 1.25x the dense file, and a model's ten ratios 12.5x. Saved against one copy of the dense state per model
(`prune.config.base_path`), it holds its masks as bits (1/32 of the weights' bytes) and only the tensors that
differ from that copy: BatchNorm statistics after `bn`, everything after `finetune`, every tensor of a structured
model. Loading checks the copy's sha256, then every mask's bit count, before the model checks every shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from prune.errors import ArtifactError
from prune.io import file_sha256, load_checkpoint, save_checkpoint, torch_load, torch_save
from prune.pruning import MASK_SUFFIX, ORIG_SUFFIX

BASE_SHA256 = "base_sha256"  # config key: sha256 of the dense copy the checkpoint refers to
FROM_BASE = "from_base"  # config key: stored key -> the dense copy's key holding the same tensor
MASK_BITS = "mask_bits"  # config key: masks stored as numpy.packbits of their 0/1 values


@dataclass(frozen=True)
class Base:
    """The dense state a model's pruned checkpoints refer to, and the sha256 of its file."""

    state: dict[str, torch.Tensor]
    sha256: str


def write_base(path: Path, state: dict[str, torch.Tensor]) -> Base:
    """Write the dense state the pruned checkpoints of a model refer to (torch_save is deterministic: the same
    weights rewrite the same file, and earlier checkpoints stay valid)."""
    state = {name: tensor.detach().cpu() for name, tensor in state.items()}
    torch_save(path, state)
    return Base(state, file_sha256(path))


def base_key(key: str) -> str:
    """The dense state's key of a pruned state's key: weight_orig is the dense weight, others keep their name."""
    return key.removesuffix(ORIG_SUFFIX) + "weight" if key.endswith(ORIG_SUFFIX) else key


def save_pruned(path: Path, state: dict[str, torch.Tensor], base: Base, config: dict) -> None:
    """Save `state` (a pruned model's state_dict) as its masks' bits and the tensors that differ from `base`."""
    stored: dict[str, torch.Tensor] = {}
    from_base: dict[str, str] = {}
    mask_bits: list[str] = []
    for key, tensor in state.items():
        tensor = tensor.detach().cpu()
        dense = base.state.get(base_key(key))
        if key.endswith(MASK_SUFFIX):
            stored[key] = torch.from_numpy(np.packbits(tensor.numpy().ravel() != 0))
            mask_bits.append(key)
        elif dense is not None and dense.dtype == tensor.dtype and torch.equal(dense, tensor):
            from_base[key] = base_key(key)
        else:
            stored[key] = tensor
    save_checkpoint(path, stored, {**config, BASE_SHA256: base.sha256, FROM_BASE: from_base, MASK_BITS: mask_bits})


def load_pruned_state(path: Path, base: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(state_dict, config) of a pruned checkpoint: tensors taken from the dense copy at `base` where it refers
    to them, masks unpacked to the dtype of their weight. A checkpoint saved whole (no dense copy) loads as
    saved, bool masks as float."""
    state, config = load_checkpoint(path)
    if BASE_SHA256 not in config:
        return {k: v.float() if k.endswith(MASK_SUFFIX) and v.dtype == torch.bool else v
                for k, v in state.items()}, config
    if not base.is_file() or file_sha256(base) != config[BASE_SHA256]:
        raise ArtifactError(f"{path}: refers to the dense weights of {base}, which are missing or have changed; "
                            "rerun `python -m bench prune`")
    dense = torch_load(base)
    for key, dense_key in config[FROM_BASE].items():
        if dense_key not in dense:
            raise ArtifactError(f"{path}: refers to {dense_key!r}, which {base} does not hold")
        state[key] = dense[dense_key]
    for key in config[MASK_BITS]:
        state[key] = _unpacked(state, key, path)
    return state, config


def _unpacked(state: dict[str, torch.Tensor], key: str, path: Path) -> torch.Tensor:
    """The mask stored at `key` as bits, in its weight's shape and dtype; a wrong bit count is an ArtifactError."""
    weight = state.get(key.removesuffix(MASK_SUFFIX) + ORIG_SUFFIX)
    bits = state[key]
    if weight is None or bits.dtype != torch.uint8 or bits.dim() != 1:
        raise ArtifactError(f"{path}: mask {key!r} has no weight_orig beside it or is not a 1-D uint8 bit array")
    count = weight.numel()
    unpacked = np.unpackbits(bits.numpy())
    if bits.numel() != -(-count // 8) or unpacked[count:].any():
        raise ArtifactError(f"{path}: mask {key!r} holds {bits.numel()} bytes of bits, not the "
                            f"{-(-count // 8)} of its {count} weights")
    return torch.from_numpy(unpacked[:count].copy()).to(weight.dtype).reshape(weight.shape)
