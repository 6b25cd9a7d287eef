"""The pruning methods registry: how a model is pruned at a ratio, and what kind of model that leaves.

Unstructured methods zero weights through torch.nn.utils.prune (masks and hooks stay until export makes them
permanent); the structured one removes whole channels and returns a smaller dense model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn
from torch.nn.utils import prune as torch_prune

from prune.classifier import WEIGHTED
from prune.models import arch_layers, classifier_name, example_input, get_model_spec
from prune.pruning import prune_l1
from prune.registry import add_entry, lookup
from prune.structured import prune_structured

# (model, ratio of the original weights, the ratio `model` is already pruned at, architecture name) -> pruned model
Pruner = Callable[[nn.Module, float, float, str], nn.Module]


@dataclass(frozen=True)
class Method:
    """A pruning method: its pruner, and whether it leaves a smaller dense model (no zeros, no masks)."""

    name: str
    description: str
    prune: Pruner
    structured: bool


METHODS: dict[str, Method] = {}


def register_method(name: str, description: str, structured: bool = False):
    """Decorator adding a pruner to METHODS under `name`; registering a name twice is a bug."""

    def add(prune: Pruner) -> Pruner:
        add_entry(METHODS, "method", name, Method(name, description, prune, structured))
        return prune

    return add


def get_method(name: str) -> Method:
    """Look a method up by name; an unknown name is a UsageError listing the valid ones."""
    return lookup(METHODS, "method", name)


@register_method("l1-unstructured", "the study's: each prunable layer loses `ratio` % of its weights, smallest "
                                    "|w| first")
def l1_unstructured(model: nn.Module, ratio: float, previous: float, name: str) -> nn.Module:
    return prune_l1(model, ratio, name)


@register_method("global-l1", "one |w| threshold over every prunable layer together (torch's "
                              "global_unstructured): `ratio` % of all their weights, unevenly per layer")
def global_l1(model: nn.Module, ratio: float, previous: float, name: str) -> nn.Module:
    """Zero `ratio` percent of all prunable weights together, composing with masks already in place."""
    layers = [module for _, module in arch_layers(model, name)]
    total = sum(module.weight.numel() for module in layers)
    pruned = sum(int((module.weight_mask == 0).sum()) for module in layers if hasattr(module, "weight_mask"))
    torch_prune.global_unstructured([(module, "weight") for module in layers], torch_prune.L1Unstructured,
                                    amount=max(round(total * ratio / 100) - pruned, 0))
    return model


@register_method("l1-structured", "output channels and neurons with the lowest L1 norm removed with everything "
                                  "tied to them (Torch-Pruning's dependency graph): a smaller dense model",
                 structured=True)
def l1_structured(model: nn.Module, ratio: float, previous: float, name: str) -> nn.Module:
    """Keep (100 - ratio) % of the original channels: from a model already at `previous`, remove the step."""
    step = 100 * (1 - (100 - ratio) / (100 - previous))
    classifier = get_model_spec(name).classifier or classifier_name(model)
    pruned = {layer for layer, _ in arch_layers(model, name)}
    kept = tuple(layer for layer, module in model.named_modules()  # what --exclude keeps dense
                 if isinstance(module, WEIGHTED) and layer not in pruned and layer != classifier)
    return prune_structured(model, step, example_input(name, 1), classifier, kept)
