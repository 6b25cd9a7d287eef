"""The machine and software a measurement ran on, recorded in results.json next to the records."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy
import onnxruntime
import torch

from bench.child import PRELOAD
from bench.presets import MeasureSettings

PROCESS_MODEL = ("each measurement runs in a fresh process forked from a multiprocessing forkserver whose "
                 f"server preloaded {', '.join(PRELOAD)}; baseline_rss_bytes is those libraries, "
                 "peak_rss_bytes the process's VmHWM after loading, timing and the logits check "
                 "(before the test split is mapped in)")


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's marketing name ("model name" in /proc/cpuinfo), else what platform knows."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_name() -> str | None:
    """Name of CUDA device 0, or None without CUDA."""
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def collect_environment(settings: MeasureSettings) -> dict:
    """CPU, cores, thread count, library versions, GPU, and the measurement settings of this run."""
    return {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "threads": settings.threads,
        "inter_op_threads": 1,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "gpu": gpu_name(),
        **settings.to_dict(),
        "process_model": PROCESS_MODEL,
    }
