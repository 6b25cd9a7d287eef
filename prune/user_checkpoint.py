"""The user's weights for a model source (--checkpoint): loaded without running code, every key and shape
checked."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from prune.errors import UsageError

STATE_KEYS = ("state_dict", "model")  # where training scripts commonly nest the state_dict in a checkpoint


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The state_dict in `path`: the file's dict of tensors, or one under "state_dict" or "model"; loaded with
    weights_only=True, so the file cannot run code."""
    if not Path(path).is_file():
        raise UsageError(f"checkpoint {path}: no such file")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign, truncated or code-carrying files
        lines = str(exc).strip().splitlines()
        reason = lines[0][:160] if lines else type(exc).__name__
        raise UsageError(f"checkpoint {path}: not a weights-only torch file ({reason})") from None
    held = [blob[key] for key in STATE_KEYS if isinstance(blob, dict) and isinstance(blob.get(key), dict)]
    nested = held[0] if held else blob
    tensors = isinstance(nested, dict) and all(isinstance(v, torch.Tensor) for v in nested.values())
    if not tensors or not nested:
        raise UsageError(f"checkpoint {path}: holds no state_dict (a dict of tensors, or one under "
                         f"{' or '.join(repr(k) for k in STATE_KEYS)})")
    return nested


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], path: Path, label: str) -> None:
    """A UsageError naming the first mismatching key, in the model's order, unless `state` has exactly the
    model's keys and shapes."""
    expected = model.state_dict()
    for key, tensor in expected.items():
        if key not in state:
            raise UsageError(f"checkpoint {path} does not fit {label}: it lacks {key}")
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise UsageError(f"checkpoint {path} does not fit {label}: {key} has shape "
                             f"{list(state[key].shape)}, the model holds {list(tensor.shape)}")
    extra = [key for key in state if key not in expected]
    if extra:
        raise UsageError(f"checkpoint {path} does not fit {label}: {extra[0]} is not a key of the model")


def load_user_checkpoint(model: nn.Module, path: Path, label: str) -> nn.Module:
    """`model` with the checkpoint's weights, once every key and shape is checked; `label` names the model."""
    state = read_state_dict(path)
    check_state_dict(model, state, path, label)
    model.load_state_dict(state)
    return model
