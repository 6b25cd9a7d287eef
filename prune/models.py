"""The model registry: one name -> constructor entry per architecture of the study, and which layers get pruned."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models import resnet18, resnet50

from prune.registry import add_entry, lookup


@dataclass(frozen=True)
class ModelSpec:
    """What the pipeline needs to know about an architecture besides its constructor."""

    name: str
    build: Callable[[], nn.Module]
    dataset: str  # registry name in prune.data: "mnist" or "cifar10"
    input_shape: tuple[int, int, int]  # (C, H, W) of one sample
    num_classes: int = 10


MODELS: dict[str, ModelSpec] = {}


def register_model(name: str, dataset: str, input_shape: tuple[int, int, int]):
    """Decorator adding a constructor to MODELS under `name`; registering a name twice is a bug."""

    def add(build: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
        add_entry(MODELS, "model", name, ModelSpec(name, build, dataset, input_shape))
        return build

    return add


def get_model_spec(name: str) -> ModelSpec:
    """Look a model up by name; an unknown name is a UsageError listing the valid ones."""
    return lookup(MODELS, "model", name)


def build_model(name: str) -> nn.Module:
    """A freshly initialised model of the named architecture (use torch.manual_seed first for reproducibility)."""
    return get_model_spec(name).build()


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every Conv2d and Linear in module order except the final classifier (the last Linear), as the study prunes."""
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    classifier = max(i for i, (_, m) in enumerate(layers) if isinstance(m, nn.Linear))
    return layers[:classifier] + layers[classifier + 1 :]


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters())


@register_model("lenet300_100", dataset="mnist", input_shape=(1, 28, 28))
def lenet300_100() -> nn.Module:
    """LeNet-300-100: fully connected 784-300-100-10 with ReLU (LeCun et al. 1998)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 300),
        nn.ReLU(),
        nn.Linear(300, 100),
        nn.ReLU(),
        nn.Linear(100, 10),
    )


@register_model("lenet5", dataset="mnist", input_shape=(1, 28, 28))
def lenet5() -> nn.Module:
    """Caffe's LeNet-5 as pruned by Han et al. 2015: conv20-pool-conv50-pool-fc500-relu-fc10 (no ReLU on convs)."""
    return nn.Sequential(
        nn.Conv2d(1, 20, 5),  # 28x28 -> 24x24
        nn.MaxPool2d(2),  # -> 12x12
        nn.Conv2d(20, 50, 5),  # -> 8x8
        nn.MaxPool2d(2),  # -> 4x4
        nn.Flatten(),
        nn.Linear(50 * 4 * 4, 500),
        nn.ReLU(),
        nn.Linear(500, 10),
    )


def _cifar_stem(model: nn.Module) -> nn.Module:
    """Replace ImageNet's 7x7/2 stem and max-pool with the 3x3/1 stem used for 32x32 CIFAR images."""
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


@register_model("resnet18", dataset="cifar10", input_shape=(3, 32, 32))
def cifar_resnet18() -> nn.Module:
    """ResNet-18 (He et al. 2016) with the CIFAR stem."""
    return _cifar_stem(resnet18(num_classes=10))


@register_model("resnet50", dataset="cifar10", input_shape=(3, 32, 32))
def cifar_resnet50() -> nn.Module:
    """ResNet-50 (He et al. 2016) with the CIFAR stem; each residual branch's last BatchNorm starts at zero (Goyal
    et al. 2017), so the deep network starts as identities: on the quick preset's 64 steps it reached 23% where the
    default init stayed at chance (12%)."""
    return _cifar_stem(resnet50(num_classes=10, zero_init_residual=True))


def example_input(name: str, batch_size: int, seed: int = 0) -> torch.Tensor:
    """A deterministic random batch shaped for the named model (for export tracing and timing)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn((batch_size, *get_model_spec(name).input_shape), generator=gen)
