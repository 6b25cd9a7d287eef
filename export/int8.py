"""int8 ONNX: onnxruntime's static QDQ quantization of the permanent model's dense graph.

Weights are int8 per output channel and symmetric (zero point 0), so a pruned zero stays exactly zero; activations
are uint8, calibrated (min/max) on a few hundred training images, never on the test images accuracy is measured
on. The quantizer reads `graph.initializer`, so it quantizes model.onnx, not the sparse-initializer graph.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)

from export.onnx_io import INPUT_NAME
from prune.errors import DatasetUnavailable
from prune.models import example_input, get_model_spec

CALIBRATION_IMAGES = 256  # onnxruntime's examples calibrate on a few hundred; min/max settles well before that
CALIBRATION_BATCH = 32


@dataclass(frozen=True)
class Calibration:
    """The inputs activations are calibrated on, and where they came from (recorded next to every int8 figure)."""

    images: torch.Tensor  # normalised model inputs (N, C, H, W)
    note: str


def calibration_data(model: str, data_dir: Path, download: bool, seed: int) -> Calibration:
    """CALIBRATION_IMAGES training images (a seeded draw: the embedded digits are sorted by class), or seeded
    random inputs of the model's shape, saying why, when the training split is unavailable."""
    from prune.data import load_splits

    try:
        splits = load_splits(get_model_spec(model).dataset, data_dir, download, test_limit=0)
    except DatasetUnavailable as exc:
        return random_calibration(model, seed, f"no training images ({exc})")
    images = splits.train.images
    chosen = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:CALIBRATION_IMAGES]
    return Calibration(splits.spec.normalise(images[chosen]),
                       f"{len(chosen)} training images of {splits.train.source}")


def random_calibration(model: str, seed: int, reason: str) -> Calibration:
    """Seeded random inputs of the model's shape, with `reason` in the note."""
    return Calibration(example_input(model, CALIBRATION_IMAGES, seed),
                       f"{CALIBRATION_IMAGES} seeded random inputs: {reason}")


class _Batches(CalibrationDataReader):
    """The calibration images in batches, as onnxruntime's calibrator reads them."""

    def __init__(self, images: torch.Tensor) -> None:
        self.batches: Iterator[torch.Tensor] = iter(images.split(CALIBRATION_BATCH))

    def get_next(self) -> dict | None:
        batch = next(self.batches, None)
        return None if batch is None else {INPUT_NAME: batch.contiguous().numpy()}


def quantize_int8(onnx_bytes: bytes, calibration: Calibration) -> bytes:
    """The int8 QDQ model of a dense ONNX graph: per-channel symmetric int8 weights, uint8 activations (the
    pairing onnxruntime recommends for x86 CPUs), min/max calibrated on `calibration`."""
    quantizer_log = logging.getLogger()  # the quantizer warns on the root logger that pre-processing may help
    level = quantizer_log.level
    quantizer_log.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory(prefix="prunebench-int8-") as tmp:
            source, target = Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx"
            source.write_bytes(onnx_bytes)
            quantize_static(source, target, _Batches(calibration.images), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax)
            return target.read_bytes()
    finally:
        quantizer_log.setLevel(level)
