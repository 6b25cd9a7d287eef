"""L1-unstructured magnitude pruning with torch.nn.utils.prune, and the sparsity it leaves."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from prune.errors import ArtifactError
from prune.models import arch_layers, build_model


def prune_l1(model: nn.Module, ratio: float, arch: str | None = None) -> nn.Module:
    """Zero `ratio` percent of every prunable weight of `model` (of architecture `arch`, see
    prune.models.arch_layers) by magnitude, in place, leaving PyTorch's masks and hooks.

    On an already pruned model the new mask composes with the old one (PyTorch's PruningContainer), so the
    iterative schedule reaches `ratio` of the *original* weights by pruning only the shortfall.
    """
    for _, module in arch_layers(model, arch):
        total = module.weight.numel()
        target = round(total * ratio / 100)
        already = total - int(torch.count_nonzero(module.weight_mask)) if hasattr(module, "weight_mask") else 0
        torch_prune.l1_unstructured(module, "weight", amount=max(target - already, 0))
    return model


def layer_sparsity(model: nn.Module, arch: str | None = None) -> dict[str, float]:
    """Percent of zeros in each prunable layer's effective weight, by module name."""
    return {name: 100.0 * (1 - torch.count_nonzero(m.weight).item() / m.weight.numel())
            for name, m in arch_layers(model, arch)}


def global_sparsity(model: nn.Module, arch: str | None = None) -> float:
    """Percent of zeros over all prunable weights together."""
    layers = [m for _, m in arch_layers(model, arch)]
    zeros = sum(m.weight.numel() - torch.count_nonzero(m.weight).item() for m in layers)
    return 100.0 * zeros / sum(m.weight.numel() for m in layers)


def is_masked(model: nn.Module, arch: str | None = None) -> bool:
    """True while PyTorch's pruning re-parametrisation (weight_orig, weight_mask, pre-hook) is in place."""
    return any(torch_prune.is_pruned(m) for _, m in arch_layers(model, arch))


def make_permanent(model: nn.Module, arch: str | None = None) -> nn.Module:
    """prune.remove on every pruned layer: plain `weight` parameters with the zeros in place, no hooks.

    The zeros are made +0.0: prune.remove multiplies by the mask, leaving -0.0 wherever it pruned a negative weight
    (about half the zeros), a sign that is no part of the pruned model yet costs a lossless format a bit per zero.
    """
    for _, module in arch_layers(model, arch):
        if torch_prune.is_pruned(module):
            torch_prune.remove(module, "weight")
            with torch.no_grad():
                module.weight.masked_fill_(module.weight == 0, 0.0)
    return model


MASK_SUFFIX = "weight_mask"  # torch's pruning state: the 0/1 mask and the weight it multiplies
ORIG_SUFFIX = "weight_orig"


def masked_model(name: str, state_dict: dict[str, torch.Tensor], source: str = "state_dict") -> nn.Module:
    """Rebuild a pruned model of architecture `name` from a masked state_dict (weight_orig + weight_mask).

    Every tensor's shape is checked against the architecture first; a mismatch is an ArtifactError naming `source`.
    """
    model = build_model(name)
    for _, module in arch_layers(model, name):
        torch_prune.identity(module, "weight")
    expected = model.state_dict()
    check_state_shapes(expected, state_dict, source, name)
    model.load_state_dict(state_dict)
    for _, module in arch_layers(model, name):
        module.weight = module.weight_orig * module.weight_mask  # what torch's pre-hook sets, before any forward
    return model.eval()


def check_state_shapes(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], source: str,
                       model: str) -> None:
    """Raise ArtifactError naming `source` and the key unless `found` has exactly the keys, shapes and dtypes
    of `expected`, and every pruning mask (`*.weight_mask`) holds only 0 and 1."""
    missing, extra = expected.keys() - found.keys(), found.keys() - expected.keys()
    if missing or extra:
        raise ArtifactError(f"{source}: not a {model} state (missing {sorted(missing)[:3]}, unexpected "
                            f"{sorted(extra)[:3]}); was it written for another model?")
    for key, tensor in expected.items():
        if tuple(found[key].shape) != tuple(tensor.shape):
            raise ArtifactError(f"{source}: {key} has shape {tuple(found[key].shape)}, {model} expects "
                                f"{tuple(tensor.shape)}; the file is for another architecture")
        if found[key].dtype != tensor.dtype:
            raise ArtifactError(f"{source}: {key} is {found[key].dtype}, {model} holds {tensor.dtype}; "
                                "the file is corrupt or not prunebench's, rerun the stage that wrote it")
    for key, tensor in found.items():
        if key.endswith(MASK_SUFFIX):
            _check_mask_values(tensor, key, source)


def _check_mask_values(mask: torch.Tensor, key: str, source: str) -> None:
    """A pruning mask is 0 or 1 everywhere; any other value would scale weights instead of pruning them."""
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ArtifactError(f"{source}: {key} holds values other than 0 and 1; the file is corrupt, "
                            "rerun the stage that wrote it")
