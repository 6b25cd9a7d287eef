"""The export stage's input: one pruned model of the sweep, its reference logits, masked state and permanent module."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import onnx
import torch
from torch import nn

from export.codebook import Shares, quantized_keys, share_state
from export.int8 import Calibration
from export.loaders import state_module
from export.onnx_io import export_onnx, pruned_initializer_names
from export.verify import torch_logits
from prune.config import STUDY, Variant, base_path, pruned_path, sweep_path
from prune.errors import ArtifactError
from prune.io import read_json
from prune.models import arch_layers, example_input
from prune.pruned_io import load_pruned_state
from prune.pruning import is_masked, make_permanent
from prune.structured import macs


@dataclass
class PrunedModel:
    """A pruned model of one architecture at one ratio under one variant, as every format writer needs it."""

    name: str
    ratio: float
    # state_dict as torch.nn.utils.prune leaves it (weight_orig + weight_mask); None for a structured method's model
    masked_state: dict[str, torch.Tensor] | None
    reference: torch.Tensor  # logits of the pruned module on the evaluation images: what artifacts must reproduce
    dense: nn.Module  # the same module after pruning was made permanent (prune.remove), eval mode
    pruned_keys: tuple[str, ...]  # keys of the pruned weights (zeros in place) in dense.state_dict(); () if none
    variant: Variant = STUDY
    calibration: Calibration | None = None  # inputs the int8 model's activations are calibrated on
    codebook_bits: int = 5  # index bits of the codebook format (the exporter sets the measured choice)
    accuracy: float | None = None  # top-1 percent on the test images (the exporter sets it); None without labels
    fitted: dict[int, Shares] = field(default_factory=dict, repr=False)  # codebook k-means per bit width

    @property
    def structured(self) -> bool:
        """True when channels were removed: a smaller dense model, with no masks and no zeros to store."""
        return self.masked_state is None

    @property
    def sparse_formats(self) -> bool:
        """True when the sparse formats are written: the study's unstructured grid (the other methods and
        recoveries are compared as shipped, dense or packed)."""
        return not self.structured and self.variant.is_study

    @cached_property
    def macs(self) -> int:
        """Multiply-accumulates of one image's forward pass, from the (possibly narrower) architecture."""
        return macs(self.dense, example_input(self.name, 1))

    @cached_property
    def onnx_bytes(self) -> bytes:
        """The dense ONNX graph of the permanent model, serialized, exported once for both ONNX formats."""
        return export_onnx(self.dense, self.name, example_input(self.name, 1))

    @cached_property
    def onnx_proto(self) -> onnx.ModelProto:
        """onnx_bytes parsed, after checking it holds one pruned weight per prunable layer."""
        proto = onnx.load_from_string(self.onnx_bytes)
        found = len(pruned_initializer_names(proto))
        if found != len(self.pruned_keys):
            raise RuntimeError(f"{self.name}: {found} pruned weights in the ONNX graph, "
                               f"{len(self.pruned_keys)} in torch")
        return proto

    def shares(self, bits: int) -> Shares:
        """The codebook k-means of the permanent model's Conv2d/Linear weights at `bits`, fitted once."""
        if bits not in self.fitted:
            self.fitted[bits] = share_state(self.dense_state, quantized_keys(self.dense), bits)
        return self.fitted[bits]

    @cached_property
    def dense_state(self) -> dict[str, torch.Tensor]:
        """state_dict of the permanent model."""
        return self.dense.state_dict()


def require_pruned(out: Path, model: str, ratio: float, variant: Variant = STUDY) -> Path:
    """The sweep's pruned checkpoint for (model, variant, ratio); missing is an ArtifactError telling to run prune."""
    path = pruned_path(out, model, ratio, variant)
    if not path.is_file():
        raise ArtifactError(f"{path}: no pruned {model} ({variant.tag}) at ratio {ratio:g}; run `python -m bench "
                            "prune` with this method and recovery first")
    return path


def sweep_accuracy(out: Path, model: str, ratio: float, variant: Variant, sha256: str, dataset: str | None,
                   test_images: int | None) -> float | None:
    """The accuracy prune recorded for (model, variant, ratio) when its record names the checkpoint of `sha256`
    (a prune stopped between the two writes leaves a record of the file before) and prune tested on the same
    images as export (dataset source and count), else None: export then runs the test split itself."""
    path = sweep_path(out, model, variant)
    if dataset is None or not path.is_file():
        return None
    sweep = read_json(path)
    tested = sweep.get("dataset") or {}
    if (tested.get("source"), tested.get("test_size")) != (dataset, test_images):
        return None
    return next((record["accuracy"] for record in sweep["records"]
                 if record["ratio"] == ratio and record.get("sha256") == sha256), None)


def load_pruned(out: Path, model: str, ratio: float, images: torch.Tensor, variant: Variant = STUDY,
                calibration: Calibration | None = None) -> PrunedModel:
    """Rebuild the pruned model (shapes checked), take its logits on `images`, then make pruning permanent."""
    path = require_pruned(out, model, ratio, variant)
    state, config = load_pruned_state(path, base_path(out, model))
    if config.get("model", model) != model:
        raise ArtifactError(f"{path}: checkpoint of model {config['model']!r}, expected {model}; rerun prune")
    module = state_module(state, model, str(path))
    if not is_masked(module, model):
        return PrunedModel(model, ratio, None, torch_logits(module, images), module, (), variant, calibration)
    masked_state = module.state_dict()  # keeps weight_orig/weight_mask alive after prune.remove drops them
    reference = torch_logits(module, images)
    dense = make_permanent(module, model).eval()
    pruned_keys = tuple(f"{name}.weight" for name, _ in arch_layers(dense, model))
    return PrunedModel(model, ratio, masked_state, reference, dense, pruned_keys, variant, calibration)
