"""The process launcher and per-process memory: each measurement's peak RSS is its own, failures come back as text."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from bench.child import run_in_child
from bench.memory import peak_rss_bytes, reset_peak, rss_bytes, status_bytes

MB = 1 << 20
ALLOCATED_MB = 200


def allocate_and_report(megabytes: int) -> dict:
    """Child: read the baseline, touch `megabytes` of fresh memory, report baseline and peak."""
    baseline = rss_bytes()
    reset_peak()
    block = bytearray(megabytes * MB)
    block[::4096] = b"\x01" * len(block[::4096])  # touch every page so it is resident
    return {"baseline": baseline, "peak": peak_rss_bytes(), "pid": os.getpid()}


def report_memory() -> dict:
    return {"baseline": rss_bytes(), "peak": peak_rss_bytes()}


def raise_error() -> None:
    raise ValueError("bad artifact")


def kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def block_forever() -> None:
    signal.pause()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_child_peak_rss_reflects_its_own_allocation():
    result = run_in_child(allocate_and_report, ALLOCATED_MB, timeout=120)
    assert result.ok, result.error
    assert result.value["pid"] != os.getpid()
    assert result.value["peak"] - result.value["baseline"] >= ALLOCATED_MB * MB


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_child_peak_rss_does_not_inherit_an_earlier_childs_peak():
    run_in_child(allocate_and_report, ALLOCATED_MB, timeout=120)
    result = run_in_child(report_memory, timeout=120)
    assert result.value["peak"] - result.value["baseline"] < ALLOCATED_MB * MB / 2


def test_child_exception_comes_back_as_an_error():
    result = run_in_child(raise_error, timeout=120)
    assert not result.ok and result.value is None
    assert result.error.startswith("ValueError: bad artifact")


def test_child_killed_by_a_signal_comes_back_as_an_error():
    result = run_in_child(kill_self, timeout=120)
    assert result.error == "child process killed by SIGKILL"


def test_child_past_its_timeout_is_killed_and_reported():
    result = run_in_child(block_forever, timeout=0.5)
    assert result.error == "timed out after 0.5 s"


def test_status_fields_are_read_in_bytes(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n")
    assert status_bytes("VmHWM", status) == 2048 * 1024
    assert status_bytes("VmRSS", status) == 1024 * 1024
    assert status_bytes("VmSwap", status) is None
    assert status_bytes("VmRSS", tmp_path / "missing") is None
