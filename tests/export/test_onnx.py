"""ONNX artifacts: dense and sparse-initializer graphs that the checker accepts and onnxruntime runs."""

import numpy as np
import onnx
import pytest

from export.loaders import onnx_session
from export.onnx_io import pruned_initializer_names
from prune.models import example_input, prunable_layers, build_model


@pytest.mark.parametrize("filename", ["model.onnx", "model.sparse.onnx"])
def test_graph_has_opset_17_named_input_and_logits_with_a_dynamic_batch_axis(artifact, filename):
    proto = onnx.load(artifact("lenet5", 90, filename))
    assert max(op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")) >= 17
    (graph_input,) = proto.graph.input
    (graph_output,) = proto.graph.output
    assert graph_input.name == "input" and graph_output.name == "logits"
    assert graph_input.type.tensor_type.shape.dim[0].dim_param == "batch"


def test_dense_onnx_passes_the_full_checker(artifact):
    onnx.checker.check_model(str(artifact("lenet300_100", 90, "model.onnx")), full_check=True)


@pytest.mark.parametrize("model", ["lenet300_100", "lenet5"])
def test_sparse_onnx_stores_exactly_the_pruned_weights_as_sparse_initializers(artifact, model):
    proto = onnx.load(artifact(model, 90, "model.sparse.onnx"))
    sparse = {s.values.name for s in proto.graph.sparse_initializer}
    assert sparse == set(pruned_initializer_names(proto))
    assert len(sparse) == len(prunable_layers(build_model(model)))
    assert not sparse & {init.name for init in proto.graph.initializer}


def test_sparse_onnx_holds_only_the_nonzeros(artifact):
    proto = onnx.load(artifact("lenet300_100", 90, "model.sparse.onnx"))
    for tensor in proto.graph.sparse_initializer:
        values = onnx.numpy_helper.to_array(tensor.values)
        assert np.count_nonzero(values) == values.size
        assert values.size == pytest.approx(0.1 * np.prod(tensor.dims), rel=0.01)


def test_sparse_onnx_is_smaller_than_dense_onnx_at_ninety_percent(artifact):
    assert artifact("lenet5", 90, "model.sparse.onnx").stat().st_size < \
        artifact("lenet5", 90, "model.onnx").stat().st_size / 3


@pytest.mark.parametrize("batch", [1, 3])
def test_onnxruntime_runs_the_sparse_model_like_the_dense_one_at_any_batch_size(artifact, batch):
    x = example_input("lenet5", batch).numpy()
    dense = onnx_session(artifact("lenet5", 90, "model.onnx"), threads=1).run(None, {"input": x})[0]
    sparse = onnx_session(artifact("lenet5", 90, "model.sparse.onnx"), threads=1).run(None, {"input": x})[0]
    assert dense.shape == (batch, 10)
    assert np.abs(dense - sparse).max() <= 1e-6
