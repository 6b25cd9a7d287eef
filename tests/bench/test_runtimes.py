"""Every runtime loads its artifact through export's loaders and reproduces the pruned model's logits."""

from __future__ import annotations

import onnx
import pytest
import torch

from bench.runtimes import (CUDA_VARIANTS, RUNTIMES, AutoSession, get_runtime, initializer_bytes,
                            select_runtimes, sparse_module)
from bench.runtimes.sparse_ops import CsrConv2d, CsrLinear, form_of
from export.exporter import artifact_dir
from export.loaders import load_torch_model, read_sparse_weights
from prune.errors import UsageError
from prune.models import example_input

CPU_RUNTIMES = ["torch-masked", "torch-dense", "torch-sparse", "torch-auto", "ort-dense", "ort-sparse", "ort-int8"]
TOLERANCE = 1e-5
CASES = [("lenet300_100", 0), ("lenet300_100", 90), ("lenet5", 90)]


def artifact(exported, model: str, ratio: float, runtime: str):
    from export.formats import FORMATS

    return artifact_dir(exported, model, ratio) / FORMATS[RUNTIMES[runtime].format].filename


def reference(exported, model: str, ratio: float, x: torch.Tensor) -> torch.Tensor:
    """Logits of the masked model (the in-memory pruned model as torch.nn.utils.prune leaves it)."""
    module = load_torch_model(artifact_dir(exported, model, ratio) / "masked.pt", model)
    with torch.inference_mode():
        return module(x)


def test_registry_holds_the_cpu_runtimes_and_cuda_variants_only_with_cuda():
    assert [name for name, rt in RUNTIMES.items() if rt.device == "cpu"] == CPU_RUNTIMES
    assert CUDA_VARIANTS == ["torch-masked-cuda", "torch-dense-cuda", "torch-sparse-cuda", "torch-auto-cuda"]
    assert all(name in RUNTIMES for name in CUDA_VARIANTS) == torch.cuda.is_available()


@pytest.mark.parametrize("runtime", [name for name in CPU_RUNTIMES if name != "ort-int8"])
@pytest.mark.parametrize("model, ratio", CASES)
def test_runtime_logits_match_the_pruned_model(exported, runtime, model, ratio):
    x = example_input(model, 5, seed=3)
    session = get_runtime(runtime).load(artifact(exported, model, ratio, runtime), model, threads=1)
    session.prepare(5)
    assert (session.forward(x) - reference(exported, model, ratio, x)).abs().max() <= TOLERANCE


@pytest.mark.parametrize("model, ratio", CASES)
def test_the_int8_runtime_stays_near_the_pruned_models_logits(exported, model, ratio):
    x = example_input(model, 5, seed=3)
    session = get_runtime("ort-int8").load(artifact(exported, model, ratio, "ort-int8"), model, threads=1)
    expected = reference(exported, model, ratio, x)
    error = (session.forward(x) - expected).abs().max()
    assert TOLERANCE < error <= 0.05 * expected.abs().max()  # lossy, by a few percent of the logit range at most


def test_runtime_load_fixes_torch_threads(exported):
    get_runtime("torch-dense").load(artifact(exported, "lenet300_100", 0, "torch-dense"), "lenet300_100", threads=1)
    assert torch.get_num_threads() == 1


def test_sparse_module_runs_every_pruned_layer_as_csr(exported):
    state = read_sparse_weights(artifact_dir(exported, "lenet5", 90) / "sparse_csr.pt", "lenet5")
    module = sparse_module(state, "lenet5")
    assert [type(module[i]) for i in (0, 2, 5, 7)] == [CsrConv2d, CsrConv2d, CsrLinear, torch.nn.Linear]


def test_param_bytes_masked_holds_three_times_the_pruned_weights_and_csr_less_at_90_percent(exported):
    def held(runtime: str, ratio: float) -> int:
        path = artifact(exported, "lenet300_100", ratio, runtime)
        return get_runtime(runtime).load(path, "lenet300_100", threads=1).param_bytes()

    dense = held("torch-dense", 90)
    assert dense == (784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10) * 4
    pruned_weights = (784 * 300 + 300 * 100) * 4
    assert held("torch-masked", 90) == dense + 2 * pruned_weights  # weight = weight_orig * float weight_mask
    assert held("torch-sparse", 90) < 0.25 * dense
    assert held("ort-dense", 90) == held("ort-sparse", 90) == dense


def test_initializer_bytes_counts_sparse_initializers_densified(exported):
    directory = artifact_dir(exported, "lenet300_100", 90)
    sparse = onnx.load(directory / "model.sparse.onnx")
    assert len(sparse.graph.sparse_initializer) == 2
    assert initializer_bytes(sparse) == initializer_bytes(onnx.load(directory / "model.onnx"))


def test_auto_runtime_records_a_choice_per_prepared_batch(exported):
    path = artifact(exported, "lenet300_100", 90, "torch-auto")
    session = get_runtime("torch-auto").load(path, "lenet300_100", threads=1)
    assert isinstance(session, AutoSession)
    session.clock = lambda module, x: cost(module, sparse=1e-4, dense=2e-4)  # sparse always wins
    session.prepare(1)
    session.clock = lambda module, x: cost(module, sparse=2e-4, dense=1e-4)  # dense always wins
    session.prepare(64)
    assert session.choices == {1: {"1": "sparse", "3": "sparse"}, 64: {"1": "dense", "3": "dense"}}
    session.prepare(1)
    assert isinstance(session.module.get_submodule("1"), CsrLinear)  # the batch-1 choice is put back, not redone


def cost(module: torch.nn.Module, sparse: float, dense: float) -> float:
    """A fake time in seconds: each Linear costs `sparse` or `dense` by its form; a model costs what its layers
    cost."""
    layers = [m for m in module.modules() if isinstance(m, (torch.nn.Linear, CsrLinear))]
    return sum(sparse if form_of(layer) == "sparse" else dense for layer in layers)


def test_unknown_runtime_is_a_usage_error_listing_the_valid_ones():
    with pytest.raises(UsageError, match="unknown runtime 'tvm'.*torch-masked, torch-dense"):
        get_runtime("tvm")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")
def test_cuda_runtime_without_cuda_is_a_usage_error():
    with pytest.raises(UsageError, match="'torch-dense-cuda' needs CUDA"):
        select_runtimes(("torch-dense-cuda",), "auto")


def test_default_runtimes_are_the_cpu_ones_on_device_cpu():
    assert select_runtimes(None, "cpu") == CPU_RUNTIMES
    assert select_runtimes(("ort-dense", "torch-dense", "ort-dense"), "cpu") == ["ort-dense", "torch-dense"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("runtime", ["torch-masked-cuda", "torch-dense-cuda", "torch-sparse-cuda",
                                     "torch-auto-cuda"])
def test_cuda_runtime_logits_match_the_pruned_model(exported, runtime):
    x = example_input("lenet5", 5, seed=3)
    session = get_runtime(runtime).load(artifact(exported, "lenet5", 90, runtime), "lenet5", threads=1)
    session.prepare(5)
    logits = session.forward(x.cuda()).cpu()
    assert (logits - reference(exported, "lenet5", 90, x)).abs().max() <= 1e-3  # cuDNN may use TF32
