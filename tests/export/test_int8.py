"""int8 ONNX: onnxruntime's static QDQ quantization keeps pruned zeros, is about 4x smaller, and says what it was
calibrated on."""

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from export.exporter import artifact_dir
from export.int8 import CALIBRATION_IMAGES, calibration_data, quantize_int8, random_calibration
from export.manifest import artifact_entry, read_manifest
from export.onnx_io import export_onnx, pruned_initializer_names
from prune.errors import DatasetUnavailable
from prune.models import build_model, example_input
from prune.pruning import make_permanent, prune_l1


@pytest.fixture(scope="module")
def pruned_lenet5():
    torch.manual_seed(0)
    return make_permanent(prune_l1(build_model("lenet5"), 90)).eval()


@pytest.fixture(scope="module")
def int8_proto(pruned_lenet5) -> onnx.ModelProto:
    graph = export_onnx(pruned_lenet5, "lenet5", example_input("lenet5", 1))
    return onnx.load_from_string(quantize_int8(graph, random_calibration("lenet5", 0, "test")))


def test_int8_weights_are_zero_exactly_where_the_pruned_weights_are(pruned_lenet5, int8_proto):
    stored = {init.name: numpy_helper.to_array(init) for init in int8_proto.graph.initializer}
    names = pruned_initializer_names(int8_proto)
    assert len(names) == 3 and all(stored[name].dtype == np.int8 for name in names)
    for name in names:
        fp32 = pruned_lenet5.state_dict()[name.removesuffix("_quantized")].numpy()
        assert np.array_equal(stored[name] == 0, fp32 == 0)
        assert not stored[f"{name.removesuffix('_quantized')}_zero_point"].any()  # symmetric: zero maps to 0


def test_int8_model_is_at_most_027x_the_fp32_graph(pruned_lenet5, int8_proto):
    fp32 = export_onnx(pruned_lenet5, "lenet5", example_input("lenet5", 1))
    assert len(int8_proto.SerializeToString()) <= 0.27 * len(fp32)


def test_calibration_draws_training_images_and_says_so(tmp_path):
    calibration = calibration_data("lenet5", tmp_path / "no-data", False, 0)
    assert calibration.images.shape == (CALIBRATION_IMAGES, 1, 28, 28)
    assert calibration.note == f"{CALIBRATION_IMAGES} training images of mnist-embedded-5k"


def test_calibration_without_training_images_uses_random_inputs_and_says_why(tmp_path, monkeypatch):
    def unavailable(*args, **kwargs):
        raise DatasetUnavailable("CIFAR-10 not on disk")

    monkeypatch.setattr("prune.data.load_splits", unavailable)
    calibration = calibration_data("resnet18", tmp_path, False, 0)
    assert calibration.images.shape == (CALIBRATION_IMAGES, 3, 32, 32)
    assert calibration.note.startswith(f"{CALIBRATION_IMAGES} seeded random inputs: no training images")


def test_the_export_measures_int8_accuracy_and_records_the_calibration(exported):
    manifest = read_manifest(artifact_dir(exported, "lenet5", 90))
    entry = artifact_entry(manifest, "onnx_int8")
    fp32 = artifact_entry(manifest, "onnx")
    assert abs(entry["accuracy"] - fp32["accuracy"]) <= 2.0 and entry["sparsity"] == fp32["sparsity"]
    assert manifest["calibration"].startswith(f"{CALIBRATION_IMAGES} seeded random inputs")
