"""The runtimes registry: how each artifact is loaded and run (eager torch masked/dense/CSR/auto, onnxruntime).

A Runtime names the artifact format it reads and loads it into a session with `prepare(batch_size)`,
`forward(x) -> logits` and `param_bytes()`. Artifacts are read only through export's loaders. CUDA variants of the
torch runtimes are registered only when torch.cuda.is_available().
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import onnx
import torch
from onnx import helper
from torch import nn

from bench.harness.latency import ComparePolicy
from bench.runtimes.sparse_ops import (CHOICE_POLICY, LayerClock, choose_layers, csr_runs, module_bytes, set_forms,
                                       sparse_layer_from_csr, wall_clock)
from export.loaders import load_torch_model, onnx_session, read_sparse_weights
from export.onnx_io import INPUT_NAME, OUTPUT_NAME
from prune.errors import UsageError
from prune.models import arch_layers, build_model, example_input
from prune.registry import add_entry, lookup


class Session(Protocol):
    """A loaded artifact ready to run."""

    device: str

    def prepare(self, batch_size: int) -> None: ...

    def forward(self, x: torch.Tensor) -> torch.Tensor: ...

    def param_bytes(self) -> int: ...


@dataclass
class TorchSession:
    """An eval-mode torch module on one device."""

    module: nn.Module
    device: str

    def prepare(self, batch_size: int) -> None:
        """Nothing to prepare: eager torch runs any batch size as loaded."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.module(x.to(self.device, non_blocking=True))

    def param_bytes(self) -> int:
        return module_bytes(self.module)


@dataclass
class AutoSession(TorchSession):
    """A torch module whose pruned layers are each dense or CSR, whichever ran faster at the prepared batch.

    The first prepare(batch) of a batch size makes its choice, building and timing both forms of each layer and
    dropping the loser; later ones put that choice back, converting only the layers whose form differs (one layer
    at a time, so a switch between batch sizes holds both forms of one layer at most).
    """

    model_name: str = ""
    layers: list[str] = field(default_factory=list)
    clock: LayerClock = field(default_factory=wall_clock)
    policy: ComparePolicy = CHOICE_POLICY
    choices: dict[int, dict[str, str]] = field(default_factory=dict)  # batch size -> layer -> "dense"/"sparse"

    def prepare(self, batch_size: int) -> None:
        """Choose each layer's form at this batch size, or put back the choice made for it before."""
        if batch_size in self.choices:
            set_forms(self.module, self.choices[batch_size])
            return
        x = example_input(self.model_name, batch_size).to(self.device)
        self.choices[batch_size] = choose_layers(self.module, self.layers, x, self.clock, self.policy)


@dataclass
class OrtSession:
    """An onnxruntime CPU session and the ONNX file it came from."""

    session: object  # onnxruntime.InferenceSession
    path: Path
    device: str = "cpu"

    def prepare(self, batch_size: int) -> None:
        """Nothing to prepare: the graph has a dynamic batch axis."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0])

    def param_bytes(self) -> int:
        return initializer_bytes(onnx.load(self.path))


def initializer_bytes(proto: onnx.ModelProto) -> int:
    """Bytes of every initializer as onnxruntime holds it: sparse initializers count densified."""
    def size(dims, data_type: int) -> int:
        return int(np.prod(dims, dtype=np.int64)) * helper.tensor_dtype_to_np_dtype(data_type).itemsize

    dense = sum(size(t.dims, t.data_type) for t in proto.graph.initializer)
    return dense + sum(size(s.dims, s.values.data_type) for s in proto.graph.sparse_initializer)


Opener = Callable[[Path, str, int, str, "str | None"], Session]  # (path, model, threads, device, sha256)


@dataclass(frozen=True)
class Runtime:
    """How one artifact format is run: the format it reads, the device, and its loader."""

    name: str
    format: str  # key in export.formats.FORMATS
    device: str  # "cpu" or "cuda"
    open: Opener
    notes: tuple[str, ...] = ()  # facts shown next to this runtime's figures
    paired: bool = True  # timed in alternation with the torch-dense pair in its process (bench.harness.job)
    skips_zeros: bool = False  # computes only the nonzero weights; the others multiply every pruned zero
    runs_as: str | None = None  # the runtime whose computation this one runs once loaded (ort-sparse: ort-dense)

    def load(self, artifact_path: Path, model_name: str, threads: int, sha256: str | None = None) -> Session:
        """Fix the thread counts, then load the artifact (sha256 checked against the manifest when given)."""
        set_threads(threads)
        return self.open(Path(artifact_path), model_name, threads, self.device, sha256)


RUNTIMES: dict[str, Runtime] = {}
CUDA_VARIANTS: list[str] = []  # names of the CUDA runtimes, registered or not


def register_runtime(name: str, format: str, notes: tuple[str, ...] = (), cuda: bool = False,
                     paired: bool = True, skips_zeros: bool = False, runs_as: str | None = None):
    """Decorator adding an opener to RUNTIMES (and `<name>-cuda` when `cuda` and CUDA is present)."""

    def add(opener: Opener) -> Opener:
        variants = [(name, "cpu")] + ([(f"{name}-cuda", "cuda")] if cuda else [])
        for runtime_name, device in variants:
            if device == "cuda":
                CUDA_VARIANTS.append(runtime_name)
                if not torch.cuda.is_available():
                    continue
            add_entry(RUNTIMES, "runtime", runtime_name, Runtime(runtime_name, format, device, opener, notes,
                                                                      paired, skips_zeros, runs_as))
        return opener

    return add


def set_threads(threads: int) -> None:
    """torch intra-op threads = `threads`, inter-op threads = 1 (settable once per process, before any work)."""
    torch.set_num_threads(threads)
    if torch.get_num_interop_threads() != 1:
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # inter-op pool already started in this process; it stays as it is
            pass


def _registered(name: str) -> Runtime | None:
    """Runtime `name`, or its CPU entry for a CUDA variant not registered here; None when unknown."""
    return RUNTIMES.get(name) or RUNTIMES.get(name.removesuffix("-cuda"))


def skips_zeros(name: str) -> bool:
    """Whether runtime `name` (a CUDA variant too, registered or not) computes only the nonzero weights."""
    runtime = _registered(name)
    return runtime is not None and runtime.skips_zeros


def runs_as(name: str) -> str | None:
    """The runtime whose computation runtime `name` runs once loaded, when it is another one's; else None."""
    runtime = _registered(name)
    return runtime.runs_as if runtime else None


def get_runtime(name: str) -> Runtime:
    """Look a runtime up by name; unknown or CUDA-without-CUDA is a UsageError listing the valid names."""
    if name in CUDA_VARIANTS and name not in RUNTIMES:
        raise UsageError(f"runtime {name!r} needs CUDA, which is not available here; "
                         f"choose from {', '.join(RUNTIMES)}")
    return lookup(RUNTIMES, "runtime", name)


def select_runtimes(names: tuple[str, ...] | None, device: str) -> list[str]:
    """The runtimes to measure: `names` validated, or every CPU one plus the CUDA ones when `device` allows."""
    if names is not None:
        return [get_runtime(name).name for name in dict.fromkeys(names)]
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda but CUDA is not available here; pass --device cpu")
    return [name for name, rt in RUNTIMES.items() if rt.device == "cpu" or device in ("auto", "cuda")]


def csr_layer_names(model_name: str) -> list[str]:
    """Names of the pruned layers of an architecture that a CSR form can compute (found on a meta-device
    build: no memory, no init)."""
    with torch.device("meta"):
        return [name for name, layer in arch_layers(build_model(model_name), model_name) if csr_runs(layer)]


def sparse_module(state: dict[str, torch.Tensor], model_name: str) -> nn.Module:
    """A model whose pruned layers are CSR layers holding the file's CSR weights; other tensors as they are.
    A pruned layer no CSR form computes (a grouped convolution, say) gets its weight densified: it runs
    dense."""
    with torch.device("meta"):
        model = build_model(model_name)
    replaced, densified = set(), {}
    for name, layer in arch_layers(model, model_name):
        prefix = f"{name}."
        weight = state[f"{prefix}weight"]
        if weight.layout == torch.sparse_csr and csr_runs(layer):
            model.set_submodule(name, sparse_layer_from_csr(layer, weight, state.get(f"{prefix}bias")))
            replaced |= {key for key in (f"{prefix}weight", f"{prefix}bias") if key in state}
        elif weight.layout == torch.sparse_csr:
            densified[f"{prefix}weight"] = weight.to_dense().reshape(layer.weight.shape)
    rest = {key: densified.get(key, tensor) for key, tensor in state.items() if key not in replaced}
    result = model.load_state_dict(rest, strict=False, assign=True)
    if result.unexpected_keys or set(result.missing_keys) != replaced:
        raise RuntimeError(f"{model_name}: {result.missing_keys} / {result.unexpected_keys} left unloaded")
    return model.eval()


@register_runtime("torch-masked", "masked", cuda=True, notes=(
    "torch.nn.utils.prune hooks live: weight = weight_orig * weight_mask recomputed on every forward",))
def open_masked(path: Path, model_name: str, threads: int, device: str, sha256: str | None) -> Session:
    return TorchSession(load_torch_model(path, model_name, sha256).to(device), device)


@register_runtime("torch-dense", "dense", cuda=True)
def open_dense(path: Path, model_name: str, threads: int, device: str, sha256: str | None) -> Session:
    return TorchSession(load_torch_model(path, model_name, sha256).to(device), device)


DENSE_FALLBACK = ("grouped and depthwise convolutions, and padding modes im2col+CSR lacks, run dense (as "
                  "torch-dense), when a model has any")


@register_runtime("torch-sparse", "sparse_csr", cuda=True, skips_zeros=True, notes=(
    "pruned Linear: CSR torch.sparse.mm; pruned Conv2d: im2col (F.unfold) + CSR torch.sparse.mm",
    DENSE_FALLBACK))
def open_sparse(path: Path, model_name: str, threads: int, device: str, sha256: str | None) -> Session:
    module = sparse_module(read_sparse_weights(path, model_name, sha256), model_name)
    return TorchSession(module.to(device), device)


@register_runtime("torch-auto", "sparse_csr", cuda=True, skips_zeros=True, notes=(
    (f"each pruned layer dense or CSR: CSR only where it took under {CHOICE_POLICY.margin:g}x the dense time, "
     "timed in alternation with it on the layer's own input at the timed batch size (sign test), and only if the "
     f"whole model then took under {CHOICE_POLICY.margin:g}x all-dense, timed the same way"), DENSE_FALLBACK))
def open_auto(path: Path, model_name: str, threads: int, device: str, sha256: str | None) -> Session:
    module = sparse_module(read_sparse_weights(path, model_name, sha256), model_name).to(device)
    clock = wall_clock(torch.cuda.synchronize) if device == "cuda" else wall_clock()
    return AutoSession(module, device, model_name, csr_layer_names(model_name), clock)


UNPAIRED = ("timed without the dense pair: onnxruntime's intra-op threads keep spinning after a run and made a "
            "torch model timed alongside 1.5x-8x slower, so its ratio to dense is across processes")


@register_runtime("ort-int8", "onnx_int8", paired=False, notes=(
    "onnxruntime CPU execution provider on the int8 QDQ model (int8 weights, uint8 activations): lossy, so its "
    "accuracy and logits differ from the pruned model's; int8 speed depends on the CPU's instructions (AVX-512 "
    "VNNI or AMX: see the environment)", UNPAIRED))
@register_runtime("ort-sparse", "onnx_sparse", paired=False, runs_as="ort-dense", notes=(
    "onnxruntime densifies sparse initializers when it loads the model: param_bytes, memory and speed as dense",
    UNPAIRED))
@register_runtime("ort-dense", "onnx", paired=False,
                  notes=("onnxruntime CPU execution provider, sequential execution", UNPAIRED))
def open_ort(path: Path, model_name: str, threads: int, device: str, sha256: str | None) -> Session:
    """An onnxruntime session of any ONNX artifact (ONNX Runtime densifies sparse initializers at load)."""
    return OrtSession(onnx_session(path, threads, model_name=model_name, sha256=sha256), path)
