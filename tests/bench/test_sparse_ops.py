"""CSR Linear and im2col + CSR Conv2d compute what the dense layers compute; torch-auto's per-layer choice."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from bench.sparse_ops import (CsrConv2d, CsrLinear, choose_layers, form_of, layer_inputs, median_timer,
                              module_bytes, sparse_layer, tensor_bytes)

TOLERANCE = 1e-5


def pruned(layer: nn.Module, amount: float) -> nn.Module:
    """`layer` with `amount` of its weights zeroed by L1 magnitude, pruning made permanent."""
    torch_prune.l1_unstructured(layer, "weight", amount=amount)
    torch_prune.remove(layer, "weight")
    return layer.eval()


@pytest.fixture(autouse=True)
def seeded() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch", [1, 7])
def test_csr_linear_equals_dense_linear(bias, batch):
    dense = pruned(nn.Linear(50, 30, bias=bias), 0.8)
    x = torch.randn(batch, 50)
    with torch.inference_mode():
        assert (CsrLinear.from_dense(dense)(x) - dense(x)).abs().max() <= TOLERANCE


@pytest.mark.parametrize("kwargs", [
    {"kernel_size": 3, "padding": 1},
    {"kernel_size": 3, "stride": 2, "padding": 1, "bias": False},
    {"kernel_size": (3, 5), "stride": (2, 1), "padding": (0, 2)},
    {"kernel_size": 3, "dilation": 2, "padding": 2},
    {"kernel_size": 1, "stride": 2, "bias": False},
    {"kernel_size": 5},
])
def test_im2col_csr_conv_equals_dense_conv(kwargs):
    dense = pruned(nn.Conv2d(6, 8, **kwargs), 0.7)
    x = torch.randn(3, 6, 13, 11)
    with torch.inference_mode():
        out = CsrConv2d.from_dense(dense)(x)
        expected = dense(x)
    assert out.shape == expected.shape
    assert (out - expected).abs().max() <= TOLERANCE


def test_csr_layers_convert_back_to_identical_dense_layers():
    for layer in (pruned(nn.Linear(20, 10), 0.5), pruned(nn.Conv2d(3, 4, 3, stride=2, padding=1), 0.5)):
        back = sparse_layer(layer).to_dense()
        assert type(back) is type(layer)
        assert torch.equal(back.weight, layer.weight) and torch.equal(back.bias, layer.bias)


def test_grouped_conv_is_refused():
    with pytest.raises(ValueError, match="groups=1"):
        CsrConv2d.from_dense(nn.Conv2d(4, 4, 3, groups=2))


def test_module_bytes_counts_csr_values_and_indices():
    layer = pruned(nn.Linear(100, 40), 0.9)
    sparse = sparse_layer(layer)
    nonzero = int(torch.count_nonzero(layer.weight))
    assert module_bytes(layer) == (100 * 40 + 40) * 4
    assert module_bytes(sparse) == nonzero * 4 + nonzero * 4 + (40 + 1) * 4 + 40 * 4  # values, cols, rows, bias
    assert tensor_bytes(sparse.weight) == nonzero * 8 + 41 * 4


def test_layer_inputs_captures_what_each_layer_receives():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    x = torch.randn(5, 4)
    inputs = layer_inputs(model, ["0", "2"], x)
    assert torch.equal(inputs["0"], x)
    assert torch.equal(inputs["2"], torch.relu(model[0](x)).detach())


def layers_of(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (nn.Linear, CsrLinear))]


def nonzero_cost_timer(module: nn.Module, x: torch.Tensor, limit: float) -> float:
    """A fake timer: dense costs one unit per weight, CSR two units per nonzero (values and indices); a model
    costs what its layers cost."""
    return sum(2.0 * layer.weight.values().numel() if form_of(layer) == "sparse" else float(layer.weight.numel())
               for layer in layers_of(module))


def test_auto_choice_follows_the_timer_sparse_for_99_percent_dense_for_0_percent():
    model = nn.Sequential(pruned(nn.Linear(400, 300), 0.99), nn.ReLU(), pruned(nn.Linear(300, 200), 0.0),
                          nn.ReLU(), nn.Linear(200, 10)).eval()
    x = torch.randn(4, 400)
    with torch.inference_mode():
        expected = model(x)
    choice = choose_layers(model, ["0", "2"], x, nonzero_cost_timer)
    assert choice == {"0": "sparse", "2": "dense"}
    assert isinstance(model[0], CsrLinear) and isinstance(model[2], nn.Linear)
    with torch.inference_mode():
        assert (model(x) - expected).abs().max() <= TOLERANCE


def test_auto_choice_switches_a_sparse_layer_back_to_dense_when_dense_is_faster():
    model = nn.Sequential(sparse_layer(pruned(nn.Linear(30, 20), 0.0)), nn.ReLU(), nn.Linear(20, 10))
    assert choose_layers(model, ["0"], torch.randn(2, 30), nonzero_cost_timer) == {"0": "dense"}
    assert isinstance(model[0], nn.Linear)


def test_auto_choice_keeps_dense_within_the_noise_margin():
    model = nn.Sequential(pruned(nn.Linear(30, 20), 0.9), nn.ReLU(), nn.Linear(20, 10))
    nearly_equal = lambda layer, x, limit: 0.95 if form_of(layer) == "sparse" else 1.0  # noqa: E731
    assert choose_layers(model, ["0"], torch.randn(2, 30), nearly_equal, margin=0.9) == {"0": "dense"}


def test_auto_choice_falls_back_to_dense_when_the_whole_model_is_slower_with_it():
    model = nn.Sequential(pruned(nn.Linear(30, 20), 0.9), nn.ReLU(), nn.Linear(20, 10))

    def alone_faster_together_slower(module: nn.Module, x: torch.Tensor, limit: float) -> float:
        if isinstance(module, nn.Sequential):
            return 3.0 if any(form_of(layer) == "sparse" for layer in layers_of(module)) else 2.0
        return 0.5 if form_of(module) == "sparse" else 1.0

    assert choose_layers(model, ["0"], torch.randn(2, 30), alone_faster_together_slower) == {"0": "dense"}
    assert isinstance(model[0], nn.Linear)


def test_median_timer_gives_up_on_a_hopeless_form_after_its_warmup_call():
    calls = []
    layer = nn.Sequential(nn.Linear(3, 3))
    layer.register_forward_pre_hook(lambda m, args: calls.append(1))
    timer = median_timer(reps=4)
    timer(layer, torch.randn(1, 3), math.inf)
    assert len(calls) == 5
    timer(layer, torch.randn(1, 3), 0.0)
    assert len(calls) == 6
