"""Sparse inference layers: Linear as CSR x dense (torch.sparse.mm), Conv2d as im2col (F.unfold) + CSR x dense.

Also the per-layer automatic choice between the dense and CSR form of each pruned layer, made by timing both in
alternation on that layer's real input at the benchmark's batch size (the clock is injected, so tests can fake it).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from bench.harness.latency import ComparePolicy, Timed, beats

LayerClock = Callable[[nn.Module, torch.Tensor], float]  # (module, x) -> seconds one call module(x) took
CHOICE_POLICY = ComparePolicy()  # CSR must take under 0.9x the dense time, by a sign test at 1%
SPARSE = "sparse"
DENSE = "dense"


def _csr(matrix: torch.Tensor) -> torch.Tensor:
    """A 2-D dense matrix as CSR with int32 indices (what the export writes, half the index bytes of int64)."""
    with warnings.catch_warnings():  # torch calls its CSR support beta
        warnings.simplefilter("ignore", UserWarning)
        csr = matrix.detach().to_sparse_csr()
    return torch.sparse_csr_tensor(csr.crow_indices().int(), csr.col_indices().int(), csr.values(), csr.shape,
                                   check_invariants=False)


def tensor_bytes(tensor: torch.Tensor) -> int:
    """Bytes a tensor's elements take; for CSR the values plus both index arrays."""
    return sum(part.numel() * part.element_size() for part in strided_parts(tensor))


def strided_parts(tensor: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The strided tensors that hold a tensor's data: a CSR tensor's values and index arrays, else itself."""
    if tensor.layout == torch.sparse_csr:
        return (tensor.values(), tensor.crow_indices(), tensor.col_indices())
    return (tensor,)


class CsrLinear(nn.Module):
    """y = x W^T + b with W (out, in) held as CSR; computed as (W @ x^T)^T by torch.sparse.mm."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.register_buffer("weight", weight)  # (out, in) sparse CSR
        self.register_buffer("bias", bias)

    @classmethod
    def from_dense(cls, layer: nn.Linear) -> CsrLinear:
        return cls(_csr(layer.weight), None if layer.bias is None else layer.bias.detach())

    def to_dense(self) -> nn.Linear:
        """The equivalent nn.Linear (weights densified)."""
        out_features, in_features = self.weight.shape
        layer = nn.Linear(in_features, out_features, bias=self.bias is not None, device="meta")
        layer.weight = nn.Parameter(self.weight.to_dense(), requires_grad=False)
        if self.bias is not None:
            layer.bias = nn.Parameter(self.bias, requires_grad=False)
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.sparse.mm(self.weight, x.t()).t()  # (out, N) -> (N, out)
        return y if self.bias is None else y + self.bias


class CsrConv2d(nn.Module):
    """Conv2d (groups=1) as im2col: F.unfold's (N, C*kh*kw, L) columns multiplied by the CSR (out, C*kh*kw)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, in_channels: int,
                 kernel_size: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
                 dilation: tuple[int, int]) -> None:
        super().__init__()
        self.register_buffer("weight", weight)  # (out, C*kh*kw) sparse CSR
        self.register_buffer("bias", bias)
        self.in_channels, self.kernel_size = in_channels, kernel_size
        self.stride, self.padding, self.dilation = stride, padding, dilation

    @classmethod
    def from_dense(cls, layer: nn.Conv2d) -> CsrConv2d:
        if not csr_runs(layer):
            raise ValueError(f"im2col+CSR supports groups=1, numeric zero padding; got {layer}")
        matrix = layer.weight.detach().reshape(layer.out_channels, -1)
        bias = None if layer.bias is None else layer.bias.detach()
        return cls(_csr(matrix), bias, layer.in_channels, layer.kernel_size, layer.stride, layer.padding,
                   layer.dilation)

    def to_dense(self) -> nn.Conv2d:
        """The equivalent nn.Conv2d (weights densified)."""
        out_channels = self.weight.shape[0]
        layer = nn.Conv2d(self.in_channels, out_channels, self.kernel_size, self.stride, self.padding,
                          self.dilation, bias=self.bias is not None, device="meta")
        dense = self.weight.to_dense().reshape(out_channels, self.in_channels, *self.kernel_size)
        layer.weight = nn.Parameter(dense, requires_grad=False)
        if self.bias is not None:
            layer.bias = nn.Parameter(self.bias, requires_grad=False)
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        cols = F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)  # (N, C*kh*kw, L)
        k, length = cols.shape[1], cols.shape[2]
        flat = cols.transpose(0, 1).reshape(k, n * length)  # (C*kh*kw, N*L)
        y = torch.sparse.mm(self.weight, flat).reshape(-1, n, length).transpose(0, 1)  # (N, out, L)
        out_h = (h + 2 * self.padding[0] - self.dilation[0] * (self.kernel_size[0] - 1) - 1) // self.stride[0] + 1
        y = y.reshape(n, -1, out_h, length // out_h)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)


SPARSE_FORMS: dict[type[nn.Module], type[nn.Module]] = {nn.Linear: CsrLinear, nn.Conv2d: CsrConv2d}


def csr_runs(layer: nn.Module) -> bool:
    """True when a CSR form computes `layer` exactly: a Linear, or a Conv2d with groups=1 and numeric zero
    padding; grouped and depthwise convolutions, 'same'/'valid' padding and other padding modes run dense."""
    if isinstance(layer, nn.Conv2d):
        return layer.groups == 1 and isinstance(layer.padding, tuple) and layer.padding_mode == "zeros"
    return isinstance(layer, nn.Linear)


def sparse_layer(layer: nn.Module) -> nn.Module:
    """The CSR form of a dense Linear or Conv2d."""
    return SPARSE_FORMS[type(layer)].from_dense(layer)


def sparse_layer_from_csr(meta_layer: nn.Module, csr: torch.Tensor, bias: torch.Tensor | None) -> nn.Module:
    """The CSR form of `meta_layer` (a Linear/Conv2d built on the meta device) holding an exported CSR weight."""
    if isinstance(meta_layer, nn.Linear):
        return CsrLinear(csr, bias)
    return CsrConv2d(csr, bias, meta_layer.in_channels, meta_layer.kernel_size, meta_layer.stride,
                     meta_layer.padding, meta_layer.dilation)


def held_tensors(model: nn.Module) -> Iterator[torch.Tensor]:
    """Every tensor the module tree holds: parameters, buffers, and plain tensor attributes (the `weight` that
    torch.nn.utils.prune computes from weight_orig * weight_mask is one)."""
    for module in model.modules():
        yield from module.parameters(recurse=False)
        yield from module.buffers(recurse=False)
        yield from (value for value in vars(module).values() if isinstance(value, torch.Tensor))


def module_bytes(model: nn.Module) -> int:
    """Bytes of every storage the module's tensors use, each counted once (views and shared tensors are one)."""
    storages = {}
    for tensor in held_tensors(model):
        for part in strided_parts(tensor):
            storage = part.untyped_storage()
            storages[part.device, storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


def layer_inputs(model: nn.Module, names: list[str], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The input each named submodule receives when `model` runs on `x` (captured with forward pre-hooks)."""
    captured: dict[str, torch.Tensor] = {}
    hooks = [model.get_submodule(name).register_forward_pre_hook(
        lambda _m, args, name=name: captured.setdefault(name, args[0])) for name in names]
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return captured


def wall_clock(sync: Callable[[], None] = lambda: None) -> LayerClock:
    """A LayerClock of wall time; `sync` waits for the device (torch.cuda.synchronize) around the call."""

    def clock(module: nn.Module, x: torch.Tensor) -> float:
        sync()
        start = time.perf_counter()
        module(x)
        sync()
        return time.perf_counter() - start

    return clock


def choose_layers(model: nn.Module, names: list[str], x: torch.Tensor, clock: LayerClock,
                  policy: ComparePolicy = CHOICE_POLICY) -> dict[str, str]:
    """Put each named layer in its faster form for inputs like `x`, in place; returns layer -> "dense"/"sparse".

    A layer goes sparse only when its CSR form, timed in alternation with the dense form on the layer's own
    input, takes under `policy.margin` of the dense time by a sign test (bench.harness.latency.beats); within the
    noise it stays dense. Timed alone, a layer can win that it loses inside the model (at batch 1 LeNet-300-100's
    first layer is 0.87x as CSR alone, 1.15x the whole model), so the choice stands only if the whole model, timed
    the same way against itself with those layers dense, wins too; otherwise every layer is dense. The losing
    forms are dropped as soon as they lose.
    """
    with torch.inference_mode():
        inputs = layer_inputs(model, names, x)
        choice = {name: choose_layer(model, name, inputs.pop(name), clock, policy) for name in names}
        chosen = [name for name in names if choice[name] == SPARSE]
        if chosen and not chosen_model_wins(model, chosen, x, clock, policy):
            return dict.fromkeys(names, DENSE)
    return choice


def choose_layer(model: nn.Module, name: str, x: torch.Tensor, clock: LayerClock, policy: ComparePolicy) -> str:
    """Put layer `name` in whichever form runs faster on its input `x` (dense unless CSR clearly wins)."""
    current = model.get_submodule(name)
    dense = current.to_dense() if form_of(current) == SPARSE else current
    sparse = current if dense is not current else sparse_layer(current)
    faster = beats(lambda: clock(sparse, x), lambda: clock(dense, x), policy)
    model.set_submodule(name, sparse if faster else dense)
    return SPARSE if faster else DENSE


def chosen_model_wins(model: nn.Module, chosen: list[str], x: torch.Tensor, clock: LayerClock,
                      policy: ComparePolicy) -> bool:
    """Whether `model` with its `chosen` layers sparse beats it with them dense; leaves the winner in place."""
    sparse = {name: model.get_submodule(name) for name in chosen}
    dense = {name: layer.to_dense() for name, layer in sparse.items()}

    def with_layers(layers: dict[str, nn.Module]) -> Timed:
        def timed() -> float:
            for name, layer in layers.items():  # swapping module references: nothing copied, nothing timed
                model.set_submodule(name, layer)
            return clock(model, x)

        return timed

    wins = beats(with_layers(sparse), with_layers(dense), policy)
    for name, layer in (sparse if wins else dense).items():
        model.set_submodule(name, layer)
    return wins


def form_of(layer: nn.Module) -> str:
    """"sparse" for a CSR layer, "dense" otherwise."""
    return SPARSE if isinstance(layer, (CsrLinear, CsrConv2d)) else DENSE


def set_forms(model: nn.Module, choice: Mapping[str, str]) -> None:
    """Put each named layer in the form `choice` gives it ("dense" or "sparse"), in place.

    Converted under inference mode, like the forms choose_layers built: outside it, torch refuses to wrap their
    inference tensors in the new form's parameters.
    """
    with torch.inference_mode():
        for name, form in choice.items():
            layer = model.get_submodule(name)
            if form_of(layer) != form:
                model.set_submodule(name, layer.to_dense() if form == DENSE else sparse_layer(layer))
