"""The environment block of results.json."""

from __future__ import annotations

import platform

import onnxruntime
import torch

from bench.config import MeasureConfig
from bench.environment import collect_environment, cpu_model
from bench.presets import resolve_settings


def test_environment_records_versions_threads_and_settings():
    environment = collect_environment(resolve_settings("quick", MeasureConfig()))
    assert environment["torch"] == torch.__version__
    assert environment["onnxruntime"] == onnxruntime.__version__
    assert environment["python"] == platform.python_version()
    assert environment["threads"] == 2 and environment["inter_op_threads"] == 1
    assert environment["batch_sizes"]["resnet50"] == [1, 4] and environment["reps"]["max_reps"] == 1000
    assert environment["gpu"] is None or isinstance(environment["gpu"], str)
    assert environment["logical_cores"] >= 1 and environment["cpu"]


def test_cpu_model_is_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU @ 3.0GHz\n")
    assert cpu_model(cpuinfo) == "Test CPU @ 3.0GHz"
    assert cpu_model(tmp_path / "missing")
