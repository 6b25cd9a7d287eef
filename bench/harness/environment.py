"""The machine and software a measurement ran on, recorded in results.json next to the records."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import numpy
import onnxruntime
import torch

from bench.harness.child import PRELOAD
from bench.harness.presets import MeasureSettings

PROCESS_MODEL = ("each measurement runs in a fresh process forked from a multiprocessing forkserver whose "
                 f"server preloaded {', '.join(PRELOAD)}; baseline_rss_bytes is those libraries, "
                 "peak_rss_bytes the process's VmHWM over loading, one inference per batch size and the logits "
                 "check (torch-auto's timing of both forms of its layers, in between, is left out; the dense "
                 "pair and the test split are loaded after it is read)")
SOURCE_DIR = Path(__file__).resolve().parent  # the bench package: its checkout's commit is the code that measured
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8",
               "amx_bf16")  # /proc/cpuinfo flags that decide which kernels oneDNN/MKL/onnxruntime can use


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's marketing name ("model name" in /proc/cpuinfo), else what platform knows."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_speed_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    """Which of SPEED_FLAGS the CPU has (the first "flags" line of /proc/cpuinfo); empty where it cannot be read."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return []
    for line in text.splitlines():
        if line.startswith("flags"):
            present = set(line.split(":", 1)[1].split())
            return [flag for flag in SPEED_FLAGS if flag in present]
    return []


def _git(directory: Path, *args: str) -> str | None:
    """Output of a git command run in `directory`; None when git is missing, fails or hangs."""
    try:
        done = subprocess.run(["git", "--no-optional-locks", "-C", str(directory), *args], capture_output=True,
                              text=True, timeout=10, check=True)  # no index refresh: never blocks a commit
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout


def source_revision(directory: Path = SOURCE_DIR) -> tuple[str | None, bool | None]:
    """(HEAD commit, whether the tree has uncommitted changes) of the checkout whose files `directory` holds;
    (None, None) without git or outside a checkout (e.g. installed into a virtualenv inside another repo)."""
    if not _git(directory, "ls-files", "--", "."):
        return None, None
    commit, status = _git(directory, "rev-parse", "HEAD"), _git(directory, "status", "--porcelain")
    if commit is None or status is None:
        return None, None
    return commit.strip(), bool(status.strip())


def gpu_name() -> str | None:
    """Name of CUDA device 0, or None without CUDA."""
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def collect_environment(settings: MeasureSettings) -> dict:
    """CPU, cores, thread count, library versions, GPU, source revision, and the measurement settings of this run."""
    commit, dirty = source_revision()
    return {
        "cpu": cpu_model(),
        "cpu_flags": cpu_speed_flags(),
        "logical_cores": os.cpu_count(),
        "threads": settings.threads,
        "inter_op_threads": 1,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "gpu": gpu_name(),
        "git_commit": commit,
        "git_dirty": dirty,
        **settings.to_dict(),
        "process_model": PROCESS_MODEL,
    }
