"""Dense and sparse-initializer ONNX export of a permanent model, and a checked onnxruntime session loader."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import helper, numpy_helper
from torch import nn

from prune.errors import ArtifactError

OPSET = 17
INPUT_NAME, OUTPUT_NAME, BATCH_AXIS = "input", "logits", "batch"
MODEL_KEY = "prunebench.model"  # metadata_props entry naming the architecture, checked at load
WEIGHT_OPS = ("Conv", "Gemm", "MatMul")


def export_onnx(model: nn.Module, model_name: str, example: torch.Tensor) -> bytes:
    """Serialized ONNX of an eval-mode permanent model (legacy exporter: ~1 s for ResNet-50, BN folded into conv)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (example,), buffer, dynamo=False, opset_version=OPSET,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: BATCH_AXIS}, OUTPUT_NAME: {0: BATCH_AXIS}})
    # Concatenated protobuf messages parse as their merge: this appends the metadata entry without a
    # parse/serialize round trip of the whole model (0.6 s for ResNet-50).
    metadata = onnx.ModelProto()
    helper.set_model_props(metadata, {MODEL_KEY: model_name})
    return buffer.getvalue() + metadata.SerializeToString()


def pruned_initializer_names(proto: onnx.ModelProto) -> list[str]:
    """Weight inputs of Conv/Gemm/MatMul nodes except the final classifier (the last Gemm/MatMul); in a quantized
    (QDQ) graph, the int8 initializers their DequantizeLinear nodes read."""
    nodes = [n for n in proto.graph.node if n.op_type in WEIGHT_OPS]
    classifier = max(i for i, n in enumerate(nodes) if n.op_type != "Conv")
    stored = {init.name for init in proto.graph.initializer} | {s.values.name for s in proto.graph.sparse_initializer}
    dequantized = {n.output[0]: n.input[0] for n in proto.graph.node if n.op_type == "DequantizeLinear"}
    weights = [dequantized.get(n.input[1], n.input[1]) for i, n in enumerate(nodes) if i != classifier]
    return [name for name in weights if name in stored]


def sparsify(proto: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    """A copy of `proto` with the named initializers moved to sparse_initializer (linear int64 indices)."""
    sparse = onnx.ModelProto()
    sparse.CopyFrom(proto)
    wanted = set(names)
    keep = []
    for init in sparse.graph.initializer:
        if init.name not in wanted:
            keep.append(init)
            continue
        dense = numpy_helper.to_array(init)
        flat_index = np.flatnonzero(dense)
        values = numpy_helper.from_array(dense.ravel()[flat_index], name=init.name)
        indices = numpy_helper.from_array(flat_index.astype(np.int64))
        sparse.graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, list(dense.shape)))
    del sparse.graph.initializer[:]
    sparse.graph.initializer.extend(keep)
    return sparse


def pruned_sparsity(proto: onnx.ModelProto) -> float:
    """Percent of zeros over the pruned weights of an ONNX model, dense or sparse initializers alike."""
    names = set(pruned_initializer_names(proto))
    zeros = total = 0
    for init in proto.graph.initializer:
        if init.name in names:
            array = numpy_helper.to_array(init)
            total, zeros = total + array.size, zeros + array.size - int(np.count_nonzero(array))
    for sparse in proto.graph.sparse_initializer:
        if sparse.values.name in names:
            size = int(np.prod(sparse.dims))
            total, zeros = total + size, zeros + size - int(np.count_nonzero(numpy_helper.to_array(sparse.values)))
    return 100.0 * zeros / total


def check_onnx(data: bytes, source: Path, model_name: str | None = None) -> None:
    """Parse and fully check ONNX bytes read from `source`; invalid or foreign models are an ArtifactError.

    onnx's shape inference types a sparse_initializer as sparse_tensor(float), which Conv/Gemm reject, while
    onnxruntime densifies it to tensor(float) at load. So a sparse model gets the structural check as stored
    (index order and range included), then the full check with type and shape inference on the graph with each
    sparse initializer declared as a dense tensor of its shape.
    """
    try:
        proto = onnx.load_from_string(data)
        sparse = len(proto.graph.sparse_initializer) > 0
        onnx.checker.check_model(data, full_check=not sparse)
    except Exception as exc:  # protobuf DecodeError, checker ValidationError, shape InferenceError
        raise _invalid(source, exc) from None
    found = {p.key: p.value for p in proto.metadata_props}.get(MODEL_KEY)
    if model_name is not None and found != model_name:
        raise ArtifactError(f"{source}: exported from model {found!r}, not {model_name}; use the matching model")
    if [i.name for i in proto.graph.input] != [INPUT_NAME] or [o.name for o in proto.graph.output] != [OUTPUT_NAME]:
        raise ArtifactError(f"{source}: graph inputs/outputs are not {INPUT_NAME!r} -> {OUTPUT_NAME!r}; re-export it")
    if sparse:
        try:
            onnx.checker.check_model(_declare_sparse_as_dense(proto), full_check=True)
        except Exception as exc:
            raise _invalid(source, exc) from None


def _invalid(source: Path, exc: Exception) -> ArtifactError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ArtifactError(f"{source}: not a valid ONNX model ({reason[:160]}); re-export it")


def _declare_sparse_as_dense(proto: onnx.ModelProto) -> onnx.ModelProto:
    """`proto` (modified in place) with its sparse initializers replaced by dense tensor declarations."""
    for sparse in proto.graph.sparse_initializer:
        proto.graph.input.append(helper.make_tensor_value_info(sparse.values.name, sparse.values.data_type,
                                                               list(sparse.dims)))
    del proto.graph.sparse_initializer[:]
    return proto


def session_from_bytes(data: bytes, threads: int | None, source: Path) -> ort.InferenceSession:
    """A CPU onnxruntime session; sparse initializers are densified by onnxruntime when it loads the model."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 0  # 0: onnxruntime's default (one per physical core)
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ArtifactError(f"{source}: onnxruntime cannot load it ({str(exc).splitlines()[0][:160]})") from None
