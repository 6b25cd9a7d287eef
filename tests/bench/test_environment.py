"""The environment block of results.json."""

from __future__ import annotations

import platform
import subprocess

import onnxruntime
import pytest
import torch

from bench.config import MeasureConfig
from bench.harness.environment import collect_environment, cpu_model, cpu_speed_flags, source_revision
from bench.harness.presets import resolve_settings

CPUINFO = """processor\t: 0
model name\t: Test CPU @ 3.0GHz
flags\t\t: fpu sse sse2 avx avx2 fma avx512f avx512dq avx512_vnni amx_tile amx_int8
processor\t: 1
flags\t\t: fpu sse sse2
"""


def test_environment_records_versions_threads_and_settings():
    environment = collect_environment(resolve_settings("quick", MeasureConfig()))
    assert environment["torch"] == torch.__version__
    assert environment["onnxruntime"] == onnxruntime.__version__
    assert environment["python"] == platform.python_version()
    assert environment["threads"] == 2 and environment["inter_op_threads"] == 1
    assert environment["batch_sizes"]["resnet50"] == [1, 4] and environment["reps"]["max_reps"] == 1000
    assert environment["gpu"] is None or isinstance(environment["gpu"], str)
    assert environment["logical_cores"] >= 1 and environment["cpu"]


def test_environment_records_the_source_revision_and_the_cpus_speed_flags():
    environment = collect_environment(resolve_settings("quick", MeasureConfig()))
    assert (environment["git_commit"], environment["git_dirty"]) == source_revision()
    assert environment["cpu_flags"] == cpu_speed_flags()


def test_cpu_model_is_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU @ 3.0GHz\n")
    assert cpu_model(cpuinfo) == "Test CPU @ 3.0GHz"
    assert cpu_model(tmp_path / "missing")


def test_cpu_speed_flags_are_the_vector_and_matrix_extensions_the_first_cpu_lists(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO)
    assert cpu_speed_flags(cpuinfo) == ["avx2", "fma", "avx512f", "avx512_vnni", "amx_tile", "amx_int8"]


def test_cpu_speed_flags_are_empty_without_a_flags_line_or_a_file(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nFeatures\t: fp asimd\n")
    assert cpu_speed_flags(cpuinfo) == []
    assert cpu_speed_flags(tmp_path / "missing") == []


def git(directory, *args: str) -> str:
    command = ["git", "-C", str(directory), "-c", "user.name=test", "-c", "user.email=test@example.com", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def checkout(tmp_path):
    """A git repository with one committed package directory."""
    package = tmp_path / "repo" / "bench"
    package.mkdir(parents=True)
    (package / "module.py").write_text("x = 1\n")
    git(package.parent, "init", "-q")
    git(package.parent, "add", ".")
    git(package.parent, "commit", "-q", "-m", "first")
    return package


def test_source_revision_is_the_head_commit_of_a_clean_checkout(checkout):
    assert source_revision(checkout) == (git(checkout, "rev-parse", "HEAD"), False)


def test_source_revision_is_dirty_once_a_tracked_file_changes(checkout):
    (checkout / "module.py").write_text("x = 2\n")
    assert source_revision(checkout) == (git(checkout, "rev-parse", "HEAD"), True)


def test_source_revision_is_unknown_outside_a_checkout(tmp_path):
    assert source_revision(tmp_path) == (None, None)


def test_source_revision_is_unknown_for_an_untracked_directory_inside_a_checkout(checkout):
    installed = checkout.parent / "venv" / "bench"
    installed.mkdir(parents=True)
    (installed / "module.py").write_text("x = 1\n")
    assert source_revision(installed) == (None, None)


def test_source_revision_is_unknown_without_git(checkout, monkeypatch):
    monkeypatch.setenv("PATH", "")
    assert source_revision(checkout) == (None, None)
