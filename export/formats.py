"""The artifact formats registry: one entry per file the export stage writes, with its writer and real loader."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from export.codebook import CODEBOOK_VERSION, codebook_blob
from export.int8 import quantize_int8
from export.loaders import load_torch_model, onnx_session
from export.onnx_io import pruned_initializer_names, sparsify
from export.packed import PACKED_VERSION, pack_state
from export.source import PrunedModel
from export.sparse import SPARSE_VERSION, sparse_file
from prune.registry import add_entry, lookup
from prune.io import torch_save, write_bytes

Writer = Callable[[PrunedModel, Path], None]


def _load_onnx(path: Path, model_name: str, sha256: str | None = None):
    return onnx_session(path, model_name=model_name, sha256=sha256)


LOADERS: dict[str, Callable] = {"torch": load_torch_model, "onnx": _load_onnx}


@dataclass(frozen=True)
class Format:
    """An artifact format: file name, writer, and loader `load(path, model_name, sha256=None)`."""

    name: str
    filename: str
    kind: str  # "torch": load returns an eval-mode nn.Module; "onnx": an onnxruntime.InferenceSession
    write: Writer
    load: Callable
    description: str
    notes: tuple[str, ...] = ()  # facts a report should show next to this format's figures
    sparse: bool = False  # stores masks or zeros as structure: written for the study's unstructured grid only
    lossy: bool = False  # its weights are not the pruned model's: checked and measured, its accuracy its own
    version: int = 1  # of the file layout; a manifest written under another version is exported again


FORMATS: dict[str, Format] = {}


def register_format(name: str, filename: str, kind: str, description: str, notes: tuple[str, ...] = (),
                    sparse: bool = False, lossy: bool = False, version: int = 1):
    """Decorator adding a writer to FORMATS under `name`; registering a name twice is a bug."""

    def add(write: Writer) -> Writer:
        add_entry(FORMATS, "format", name,
                  Format(name, filename, kind, write, LOADERS[kind], description, notes, sparse, lossy, version))
        return write

    return add


def format_versions(names: list[str]) -> dict[str, int]:
    """The layout version of each named format, as a manifest records it."""
    return {name: FORMATS[name].version for name in names}


def formats_for(sparse: bool, lossy: bool = True) -> list[str]:
    """The formats written for a model: all of them, or without the sparse ones (a structured method's smaller
    model has no zeros to store; the other methods and recoveries are compared as shipped, dense or packed);
    without `lossy`, the lossless ones only (a cell whose latency is not timed: a lossy file's accuracy is its
    own and costs a pass over the test images, a ResNet-50 int8 file 20 s of calibration besides)."""
    return [name for name, fmt in FORMATS.items() if (sparse or not fmt.sparse) and (lossy or not fmt.lossy)]


def get_format(name: str) -> Format:
    """Look a format up by name; an unknown name is a UsageError listing the valid ones."""
    return lookup(FORMATS, "format", name)


@register_format("masked", "masked.pt", "torch",
                 "state_dict as torch.nn.utils.prune leaves it (weight_orig + weight_mask)",
                 ("stores every pruned weight twice (original and mask): about 2x dense",), sparse=True)
def write_masked(pruned: PrunedModel, path: Path) -> None:
    torch_save(path, pruned.masked_state)


@register_format("dense", "dense.pt", "torch", "plain state_dict, pruning made permanent (zeros in place)")
def write_dense(pruned: PrunedModel, path: Path) -> None:
    torch_save(path, pruned.dense_state)


def _write_sparse(pruned: PrunedModel, path: Path, layout: str) -> None:
    with warnings.catch_warnings():  # torch calls its sparse CSR support beta
        warnings.simplefilter("ignore", UserWarning)
        torch_save(path, sparse_file(pruned.dense_state, set(pruned.pruned_keys), layout, pruned.name))


@register_format("sparse_coo", "sparse_coo.pt", "torch",
                 "pruned weights as 2-D torch sparse COO tensors, other tensors dense",
                 ("COO indices are int64 (16 bytes per nonzero): larger than dense below ~80% sparsity",),
                 sparse=True, version=SPARSE_VERSION)
def write_sparse_coo(pruned: PrunedModel, path: Path) -> None:
    _write_sparse(pruned, path, "sparse_coo")


@register_format("sparse_csr", "sparse_csr.pt", "torch",
                 "pruned weights as 2-D torch sparse CSR tensors (int32 indices), other tensors dense",
                 ("conv weights stored as (out, in*kh*kw) matrices",), sparse=True, version=SPARSE_VERSION)
def write_sparse_csr(pruned: PrunedModel, path: Path) -> None:
    _write_sparse(pruned, path, "sparse_csr")


@register_format("packed", "packed.pt", "torch",
                 "entropy-coded masks (LZMA2 bitmap or gap bytes) + fp32 nonzeros (byte planes, deflated or LZMA2)",
                 ("lossless: decodes bit-exact to dense.pt",), version=PACKED_VERSION)
def write_packed(pruned: PrunedModel, path: Path) -> None:
    torch_save(path, pack_state(pruned.dense_state, set(pruned.pruned_keys), pruned.name), compact=True)


@register_format("codebook", "codebook.pt", "torch",
                 "Deep Compression's shared weights: per Conv2d/Linear weight (the classifier's too) at most 2^bits "
                 "fp32 centroids (k-means), mask and centroid indices entropy-coded (LZMA2); other tensors fp32",
                 ("lossy: its accuracy is its own; bits: the fewest whose top-1 agrees with the pruned model's "
                  "within --tolerance on the verification images, or --codebook-bits",), lossy=True,
                 version=CODEBOOK_VERSION)
def write_codebook(pruned: PrunedModel, path: Path) -> None:
    torch_save(path, codebook_blob(pruned.dense_state, pruned.shares(pruned.codebook_bits), pruned.name),
               compact=True)


@register_format("onnx", "model.onnx", "onnx", "dense ONNX graph (opset 17, BatchNorm folded into conv)")
def write_onnx(pruned: PrunedModel, path: Path) -> None:
    write_bytes(path, pruned.onnx_bytes)


@register_format("onnx_sparse", "model.sparse.onnx", "onnx",
                 "ONNX graph with pruned weights as sparse_initializer (int64 linear indices)",
                 ("onnxruntime densifies sparse initializers when it loads the model: smaller file, "
                  "same memory and speed as model.onnx",), sparse=True)
def write_onnx_sparse(pruned: PrunedModel, path: Path) -> None:
    proto = pruned.onnx_proto
    write_bytes(path, sparsify(proto, pruned_initializer_names(proto)).SerializeToString())


@register_format("onnx_int8", "model.int8.onnx", "onnx",
                 "int8 ONNX: onnxruntime static QDQ quantization of model.onnx (per-channel symmetric int8 weights, "
                 "uint8 activations calibrated on training images)",
                 ("lossy: its accuracy is its own; symmetric weights keep every pruned zero exactly zero",),
                 lossy=True)
def write_onnx_int8(pruned: PrunedModel, path: Path) -> None:
    write_bytes(path, quantize_int8(pruned.onnx_bytes, pruned.calibration))
