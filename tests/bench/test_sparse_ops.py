"""CSR Linear and im2col + CSR Conv2d compute what the dense layers compute; torch-auto's per-layer choice."""

from __future__ import annotations

import itertools
import random

import pytest
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from bench.harness.latency import ComparePolicy
from bench.runtimes.sparse_ops import (CsrConv2d, CsrLinear, LayerClock, choose_layers, csr_runs, form_of,
                                       layer_inputs, module_bytes, set_forms, sparse_layer, tensor_bytes)

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


@pytest.mark.parametrize(("layer", "runs"), [
    (nn.Linear(4, 2), True),
    (nn.Conv2d(4, 8, 3, stride=2, padding=1, dilation=2), True),
    (nn.Conv2d(4, 8, 3, groups=2), False),
    (nn.Conv2d(4, 4, 3, groups=4), False),  # depthwise
    (nn.Conv2d(4, 8, 3, padding="same"), False),
    (nn.Conv2d(4, 8, 3, padding=1, padding_mode="reflect"), False),
])
def test_csr_runs_only_the_layers_its_forms_compute_exactly(layer, runs):
    assert csr_runs(layer) is runs


def test_module_bytes_counts_csr_values_and_indices():
    layer = pruned(nn.Linear(100, 40), 0.9)
    sparse = sparse_layer(layer)
    nonzero = int(torch.count_nonzero(layer.weight))
    assert module_bytes(layer) == (100 * 40 + 40) * 4
    assert module_bytes(sparse) == nonzero * 4 + nonzero * 4 + (40 + 1) * 4 + 40 * 4  # values, cols, rows, bias
    assert tensor_bytes(sparse.weight) == nonzero * 8 + 41 * 4


def test_module_bytes_of_a_masked_layer_counts_weight_orig_mask_and_the_computed_weight():
    layer = nn.Linear(784, 300)
    dense = module_bytes(layer)
    torch_prune.l1_unstructured(layer, "weight", amount=0.9)  # keeps `weight` as a plain attribute next to them
    assert module_bytes(layer) == dense + 2 * 784 * 300 * 4
    assert module_bytes(layer) / dense == pytest.approx(3.0, abs=0.01)


def test_module_bytes_counts_a_storage_shared_by_several_tensors_once():
    layer = nn.Linear(100, 40)
    layer.scaled = layer.weight.detach()[:10]  # a view of the weight's storage, held as an attribute
    layer.register_buffer("alias", layer.bias.detach())
    assert module_bytes(layer) == (100 * 40 + 40) * 4


def test_layer_inputs_captures_what_each_layer_receives():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    x = torch.randn(5, 4)
    inputs = layer_inputs(model, ["0", "2"], x)
    assert torch.equal(inputs["0"], x)
    assert torch.equal(inputs["2"], torch.relu(model[0](x)).detach())


def layers_of(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (nn.Linear, CsrLinear))]


def nonzero_cost(module: nn.Module) -> float:
    """A fake cost in seconds: dense takes 1 ns per weight, CSR 2 ns per nonzero (values and indices); a model
    costs what its layers cost."""
    return 1e-9 * sum(2.0 * layer.weight.values().numel() if form_of(layer) == "sparse"
                      else float(layer.weight.numel()) for layer in layers_of(module))


def jittered(cost, jitter: float = 0.2, seed: int = 0) -> LayerClock:
    """A fake LayerClock: the module's cost times a seeded jitter in [1 - jitter, 1 + jitter], as on a busy machine."""
    rng = random.Random(seed)
    return lambda module, x: cost(module) * rng.uniform(1 - jitter, 1 + jitter)


def test_auto_choice_is_sparse_for_a_layer_clearly_faster_as_csr_and_dense_for_one_clearly_slower():
    model = nn.Sequential(pruned(nn.Linear(400, 300), 0.99), nn.ReLU(), pruned(nn.Linear(300, 200), 0.0),
                          nn.ReLU(), nn.Linear(200, 10)).eval()
    x = torch.randn(4, 400)
    with torch.inference_mode():
        expected = model(x)
    choice = choose_layers(model, ["0", "2"], x, jittered(nonzero_cost))
    assert choice == {"0": "sparse", "2": "dense"}
    assert isinstance(model[0], CsrLinear) and isinstance(model[2], nn.Linear)
    with torch.inference_mode():
        assert (model(x) - expected).abs().max() <= TOLERANCE


def test_forms_chosen_at_one_batch_size_convert_to_another_batch_sizes_choice_outside_inference_mode():
    model = nn.Sequential(pruned(nn.Linear(400, 300), 0.99), nn.ReLU(), nn.Linear(300, 10)).eval()
    x = torch.randn(4, 400)
    with torch.inference_mode():
        expected = model(x)
    assert choose_layers(model, ["0"], x, jittered(nonzero_cost)) == {"0": "sparse"}
    set_forms(model, {"0": "dense"})
    assert isinstance(model[0], nn.Linear)
    set_forms(model, {"0": "sparse"})
    assert isinstance(model[0], CsrLinear)
    with torch.inference_mode():
        assert (model(x) - expected).abs().max() <= TOLERANCE


def test_auto_choice_switches_a_sparse_layer_back_to_dense_when_dense_is_faster():
    model = nn.Sequential(sparse_layer(pruned(nn.Linear(30, 20), 0.0)), nn.ReLU(), nn.Linear(20, 10))
    assert choose_layers(model, ["0"], torch.randn(2, 30), jittered(nonzero_cost)) == {"0": "dense"}
    assert isinstance(model[0], nn.Linear)


@pytest.mark.parametrize("seed", range(5))
def test_auto_choice_keeps_dense_when_csr_is_faster_only_within_the_noise(seed):
    model = nn.Sequential(pruned(nn.Linear(30, 20), 0.9), nn.ReLU(), nn.Linear(20, 10))
    nearly_equal = jittered(lambda layer: 0.95e-3 if form_of(layer) == "sparse" else 1e-3, seed=seed)
    assert choose_layers(model, ["0"], torch.randn(2, 30), nearly_equal, ComparePolicy(margin=0.9)) == {"0": "dense"}
    assert isinstance(model[0], nn.Linear)


def test_auto_choice_falls_back_to_dense_when_the_whole_model_is_slower_with_it():
    model = nn.Sequential(pruned(nn.Linear(30, 20), 0.9), nn.ReLU(), nn.Linear(20, 10))

    def alone_faster_together_slower(module: nn.Module) -> float:
        if isinstance(module, nn.Sequential):
            return 3e-3 if any(form_of(layer) == "sparse" for layer in layers_of(module)) else 2e-3
        return 0.5e-3 if form_of(module) == "sparse" else 1e-3

    assert choose_layers(model, ["0"], torch.randn(2, 30), jittered(alone_faster_together_slower)) == {"0": "dense"}
    assert isinstance(model[0], nn.Linear)


def test_auto_choice_keeps_the_sparse_layers_when_the_whole_model_is_faster_with_them():
    model = nn.Sequential(pruned(nn.Linear(400, 300), 0.99), nn.ReLU(), nn.Linear(300, 10))
    x = torch.randn(4, 400)
    seen: list[str] = []

    def logging_cost(module: nn.Module) -> float:
        seen.append(type(module).__name__)
        return nonzero_cost(module)

    assert choose_layers(model, ["0"], x, jittered(logging_cost)) == {"0": "sparse"}
    assert "Sequential" in seen  # the whole model was timed, not only the layer
    assert isinstance(model[0], CsrLinear)


def test_auto_choice_times_dense_and_csr_forms_in_alternation():
    model = nn.Sequential(pruned(nn.Linear(400, 300), 0.99), nn.ReLU(), nn.Linear(300, 10))
    forms: list[str] = []

    def logging_cost(module: nn.Module) -> float:
        if not isinstance(module, nn.Sequential):
            forms.append(form_of(module))
        return nonzero_cost(module)

    choose_layers(model, ["0"], torch.randn(4, 400), jittered(logging_cost))
    switches = sum(a != b for a, b in itertools.pairwise(forms))
    assert switches >= 7  # one switch per round at least, where one timing of each form would switch once
