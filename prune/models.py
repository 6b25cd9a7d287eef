"""The model registry: one name -> constructor entry per architecture of the study, and which layers get pruned."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models import resnet18, resnet50

from prune.errors import UsageError
from prune.registry import add_entry, lookup

# Images per forward when evaluating. On 2 cores the CIFAR ResNets ran 256 test images 20-25% faster in batches
# of 32 than in one batch of 256 (their activations fit the caches); the LeNets do not care.
EVAL_BATCH = 32


@dataclass(frozen=True)
class ModelSpec:
    """What the pipeline needs to know about an architecture besides its constructor."""

    name: str
    build: Callable[[], nn.Module]  # picklable for a model source, so a child process can rebuild it
    dataset: str | None  # registry name in prune.data ("mnist", "cifar10"); None: no data given for a source
    input_shape: tuple[int, int, int]  # (C, H, W) of one sample
    num_classes: int = 10
    classifier: str | None = None  # module name of the layer giving the logits; None: the last Linear
    exclude: str | None = None  # regular expression (re.search) of further layer names kept dense
    source: str | None = None  # the model source (prune.sources) it was resolved from; None: the registry's

    def prunable_layers(self, model: nn.Module) -> list[tuple[str, nn.Module]]:
        """The layers of `model` (built from this spec) that are pruned."""
        return prunable_layers(model, self.classifier, self.exclude)


MODELS: dict[str, ModelSpec] = {}
RESOLVED: dict[str, ModelSpec] = {}  # model sources resolved in this process (prune.sources), by source


def register_model(name: str, dataset: str, input_shape: tuple[int, int, int]):
    """Decorator adding a constructor to MODELS under `name`; registering a name twice is a bug."""

    def add(build: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
        add_entry(MODELS, "model", name, ModelSpec(name, build, dataset, input_shape))
        return build

    return add


def is_source(name: str) -> bool:
    """True for a model source (prune.sources), False for a registry name (which never holds ':')."""
    return ":" in name


def add_resolved(spec: ModelSpec) -> None:
    """Make a resolved model source known to get_model_spec in this process (a child process adds the spec it
    was sent); the same source resolved with other options is a UsageError."""
    known = RESOLVED.setdefault(spec.name, spec)
    if known != spec:
        raise UsageError(f"model {spec.name!r} given twice with different input shapes, classes or --exclude")


def get_model_spec(name: str) -> ModelSpec:
    """Look a model up by name (a registry name or a resolved source); an unknown name is a UsageError listing
    the valid ones."""
    return RESOLVED[name] if name in RESOLVED else lookup(MODELS, "model", name)


def build_model(name: str) -> nn.Module:
    """A freshly initialised model of the named architecture (use torch.manual_seed first for reproducibility)."""
    return get_model_spec(name).build()


def classifier_name(model: nn.Module) -> str:
    """The module name of the last Linear: the study's models' classifier (prune.classifier finds any)."""
    return [name for name, module in model.named_modules() if isinstance(module, nn.Linear)][-1]


def prunable_layers(model: nn.Module, classifier: str | None = None,
                    exclude: str | None = None) -> list[tuple[str, nn.Module]]:
    """Every Conv2d and Linear in module order except the classifier (by module name; None: the last Linear,
    as the study prunes) and those whose name matches the regular expression `exclude`."""
    head = classifier_name(model) if classifier is None else classifier
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))
            and n != head and not (exclude and re.search(exclude, n))]


def arch_layers(model: nn.Module, arch: str | None = None) -> list[tuple[str, nn.Module]]:
    """The prunable layers of `model`, built from the architecture `arch` (a registry name or a resolved model
    source, whose classifier and --exclude decide); None: every Conv2d and Linear but the last Linear."""
    return prunable_layers(model) if arch is None else get_model_spec(arch).prunable_layers(model)


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
