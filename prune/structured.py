"""L1-structured pruning: whole channels and neurons removed through Torch-Pruning's dependency graph, leaving a
smaller dense model; its shapes saved as data so it reloads with torch.load(weights_only=True)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable

import torch
import torch_pruning as tp
from torch import nn

from prune.errors import ArtifactError, UsageError
from prune.models import ModelSpec, get_model_spec
from prune.pruning import check_state_shapes


def prune_structured(model: nn.Module, ratio: float, example: torch.Tensor, classifier: str,
                     kept: tuple[str, ...] = ()) -> nn.Module:
    """A copy of `model` with `ratio` percent of each coupled channel group removed, lowest group L1 norm first.

    A group is a Conv2d/Linear's outputs with everything the dependency graph ties to them (BatchNorm, the next
    layers' inputs, residual adds); it keeps round(channels * (100 - ratio) / 100) channels, at least one,
    ranked by the sum of |w| over the whole group. The `classifier` module and the `kept` ones (--exclude)
    keep all their outputs, and `model` itself is left untouched. A group that touches a grouped (not
    depthwise) convolution keeps every channel (see grouped_note).
    """
    if not 0 <= ratio < 100:
        raise UsageError(f"ratio {ratio:g} outside [0, 100); pass a percentage such as 50")
    pruned = copy.deepcopy(model)
    try:
        head = pruned.get_submodule(classifier)
    except AttributeError:
        raise UsageError(f"no module {classifier!r} in {type(model).__name__}; pass the classifier's "
                         "name as named_modules() gives it") from None
    if ratio > 0:
        with torch.enable_grad():  # the dependency graph is traced through autograd's grad_fn chain
            _remove_lowest_l1_channels(pruned, example, ratio, [head, *map(pruned.get_submodule, kept)])
    return pruned.train(model.training)  # tracing switched the copy to eval mode


def _remove_lowest_l1_channels(model: nn.Module, example: torch.Tensor, ratio: float,
                               ignored: list[nn.Module]) -> None:
    """Rank every group's channels by L1 norm first, then remove the lowest of each, in place.

    Torch-Pruning's BasePruner keeps int(channels * (1 - ratio)) and, where that is 0, silently leaves the group
    whole (at 99% it prunes nothing of ResNet-18), so the count is ours; the dependency graph does the removal.
    """
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
    importance = tp.importance.GroupMagnitudeImportance(p=1, group_reduction="sum", normalizer=None)
    grouped = {module for _, module in grouped_convolutions(model)}
    plan: list[tuple[tp.Group, list[int]]] = []
    for group in graph.get_all_groups(ignored_layers=ignored, root_module_types=[nn.Conv2d, nn.Linear]):
        if any(item.dep.target.module in grouped for item in group.items):
            continue
        scores = importance(group)  # (channels,): sum of |w| over every weight each channel touches
        keep = max(1, round(len(scores) * (100 - ratio) / 100))
        plan.append((group, torch.argsort(scores, stable=True)[: len(scores) - keep].tolist()))
    for group, lowest in plan:  # groups share no channel, so indices ranked before any removal stay valid
        if lowest:
            group.prune(idxs=lowest)


@torch.no_grad()
def macs(model: nn.Module, example: torch.Tensor) -> int:
    """Multiply-accumulates of the Conv2d and Linear layers in one forward of `example` (its whole batch)."""
    counts: list[int] = []

    def count(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if isinstance(module, nn.Conv2d):  # each output element sums in/groups x kh x kw products
            counts.append(output.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size))
        else:
            counts.append(output.numel() * module.in_features)

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    training = model.training
    model.eval()  # a training-mode forward would move BatchNorm's running statistics
    try:
        model(example)
    finally:
        model.train(training)
        for hook in hooks:
            hook.remove()
    return sum(counts)


def structured_shapes(model: nn.Module) -> dict[str, list[int]]:
    """Every state_dict key's shape: what `rebuild` needs to recreate the pruned architecture without pickle."""
    return {key: list(tensor.shape) for key, tensor in model.state_dict().items()}


def rebuild(arch: str | ModelSpec, shapes: dict[str, list[int]], source: str = "shapes") -> nn.Module:
    """The architecture (a registry name, or a ModelSpec for models outside the registry) in eval mode with every
    Conv2d, Linear and BatchNorm resized to `shapes`, its tensors on the meta device: load a state into it with
    load_state_dict(state, assign=True).

    A key the architecture lacks or misses, a shape a layer cannot take, or layers whose widths no longer chain
    (one meta-device forward checks) is an ArtifactError naming `source` and the key or layer.
    """
    spec = get_model_spec(arch) if isinstance(arch, str) else arch
    with torch.device("meta"):  # no memory and no initialisation cost: the weights come from the state
        model = spec.build().eval()
    _check_keys(model.state_dict().keys(), shapes, source, spec.name)
    for prefix, module in model.named_modules():
        resize = next((f for kind, f in _RESIZERS.items() if isinstance(module, kind)), None)
        key = _size_key(prefix, module)
        if resize is not None and key is not None:
            resize(module, key, list(shapes[key]), source)
    for key, tensor in model.state_dict().items():
        if list(tensor.shape) != list(shapes[key]):
            owner = model.get_submodule(key.rpartition(".")[0])
            raise ArtifactError(f"{source}: {key} has shape {list(shapes[key])}, which the "
                                f"{type(owner).__name__} of {spec.name} cannot take (it holds {list(tensor.shape)})")
    _check_forward(model, spec, source)
    return model


def load_structured(arch: str | ModelSpec, shapes: dict[str, list[int]], state: dict[str, torch.Tensor],
                    source: str = "state") -> nn.Module:
    """The pruned model, in eval mode, from its saved shapes and state; both are checked key by key first."""
    model = rebuild(arch, shapes, source)
    check_state_shapes(model.state_dict(), state, source, arch if isinstance(arch, str) else arch.name)
    model.load_state_dict(state, assign=True)
    return model


def _check_forward(model: nn.Module, spec: ModelSpec, source: str) -> None:
    """Run one meta-device batch; a layer whose input width is not what the layer before it gives is an
    ArtifactError naming that layer (the innermost module running when the shape check failed)."""
    names = {module: name for name, module in model.named_modules()}
    running: list[str] = []

    def enter(module: nn.Module, inputs: tuple) -> None:
        running.append(names[module])

    def leave(module: nn.Module, inputs: tuple, output: object) -> None:
        running.pop()

    hooks = [h for m in names for h in (m.register_forward_pre_hook(enter), m.register_forward_hook(leave))]
    try:
        model(torch.empty((1, *spec.input_shape), device="meta"))
    except RuntimeError as exc:
        layer = running[-1] or "the model's own forward"
        raise ArtifactError(f"{source}: {layer} of {spec.name} does not fit the widths around it "
                            f"({str(exc).splitlines()[0]}); the shapes are corrupt") from None
    finally:
        for hook in hooks:
            hook.remove()


def _check_keys(expected: Iterable[str], shapes: dict[str, list[int]], source: str, name: str) -> None:
    """Raise ArtifactError naming the first key `shapes` lacks or adds, or whose shape is not positive ints."""
    if not isinstance(shapes, dict):
        raise ArtifactError(f"{source}: shapes is a {type(shapes).__name__}, not a dict of state key -> shape")
    keys = set(expected)
    unknown, missing = sorted(shapes.keys() - keys), sorted(keys - shapes.keys())
    if unknown:
        raise ArtifactError(f"{source}: {unknown[0]} is not a key of {name}; was it saved from another model?")
    if missing:
        raise ArtifactError(f"{source}: {missing[0]} of {name} has no shape; the file is truncated or corrupt")
    for key, shape in shapes.items():
        if not isinstance(shape, (list, tuple)) or not all(type(d) is int and d > 0 for d in shape):
            raise ArtifactError(f"{source}: {key} has shape {shape!r}, not a list of positive integers")


def _size_key(prefix: str, module: nn.Module) -> str | None:
    """The key whose shape gives the module's size: its weight, or a BatchNorm's running mean without affine."""
    local = "weight" if getattr(module, "weight", None) is not None else "running_mean"
    return f"{prefix}.{local}" if getattr(module, local, None) is not None else None


def _meta(*shape: int) -> torch.Tensor:
    """An uninitialised tensor of `shape` that takes no memory; load_state_dict(assign=True) replaces it."""
    return torch.empty(shape, device="meta")


def grouped_convolutions(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """The grouped convolutions of `model` that are not depthwise: Torch-Pruning cannot remove their channels
    consistently (a group's inputs and outputs are tied per group), so l1-structured leaves them whole."""
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, nn.Conv2d) and 1 < m.groups and not _is_depthwise(m)]


def grouped_note(model: nn.Module) -> str | None:
    """What a structured sweep records about `model`'s grouped convolutions; None without any."""
    names = [name for name, _ in grouped_convolutions(model)]
    if not names:
        return None
    return (f"grouped convolutions {', '.join(names)} and every layer tied to their channels (BatchNorm, the "
            "layers before and after, residual additions) keep all channels: channel removal skips them")


def _is_depthwise(conv: nn.Conv2d) -> bool:
    """One filter per input channel: pruning removes a channel from its input, output and groups at once."""
    return 1 < conv.groups == conv.in_channels == conv.out_channels


def _resize_conv(conv: nn.Conv2d, key: str, shape: list[int], source: str) -> None:
    """Out and in channels from an (out, in / groups, kh, kw) weight; a depthwise conv stays depthwise."""
    depthwise = _is_depthwise(conv)
    groups = shape[0] if depthwise and shape else conv.groups
    if len(shape) != 4 or shape[0] % groups or (depthwise and shape[1] != 1):
        raise ArtifactError(f"{source}: {key} has shape {shape}, not the weight of a Conv2d with "
                            f"{'in = out = groups' if depthwise else f'{groups} groups'} and a "
                            f"{tuple(conv.kernel_size)} kernel")
    conv.out_channels, conv.in_channels, conv.groups = shape[0], shape[1] * groups, groups
    conv.weight = nn.Parameter(_meta(*shape[:2], *conv.kernel_size))
    if conv.bias is not None:
        conv.bias = nn.Parameter(_meta(shape[0]))


def _resize_linear(linear: nn.Linear, key: str, shape: list[int], source: str) -> None:
    """Out and in features from an (out, in) weight."""
    if len(shape) != 2:
        raise ArtifactError(f"{source}: {key} has shape {shape}, not the (out, in) weight of a Linear")
    linear.out_features, linear.in_features = shape
    linear.weight = nn.Parameter(_meta(*shape))
    if linear.bias is not None:
        linear.bias = nn.Parameter(_meta(shape[0]))


def _resize_batchnorm(norm: nn.BatchNorm1d | nn.BatchNorm2d, key: str, shape: list[int], source: str) -> None:
    """num_features, the affine parameters and the running statistics from a (features,) tensor."""
    if len(shape) != 1:
        raise ArtifactError(f"{source}: {key} has shape {shape}, not the (features,) vector of a BatchNorm")
    norm.num_features = shape[0]
    if norm.affine:
        norm.weight, norm.bias = nn.Parameter(_meta(shape[0])), nn.Parameter(_meta(shape[0]))
    if norm.track_running_stats:
        norm.running_mean, norm.running_var = _meta(shape[0]), _meta(shape[0])


_RESIZERS: dict[type[nn.Module], Callable[..., None]] = {
    nn.Conv2d: _resize_conv,
    nn.Linear: _resize_linear,
    nn.BatchNorm1d: _resize_batchnorm,
    nn.BatchNorm2d: _resize_batchnorm,
}
