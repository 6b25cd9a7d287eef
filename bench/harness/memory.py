"""Resident memory of this process from /proc/self/status: current (VmRSS) and peak (VmHWM).

getrusage's ru_maxrss is no use here: Linux carries a parent's maximum into children across fork and exec, so a
child started from a big parent reports the parent's peak. VmHWM belongs to the process's own address space; a
forked child's starts at its RSS at fork time (the parent's shared pages) and `reset_peak` restarts it from now.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
RESET_PEAK = "5"  # clear_refs command that resets VmHWM to the current RSS (Linux >= 4.0)


def status_bytes(field: str, status: Path = STATUS) -> int | None:
    """A kB figure of /proc/self/status in bytes; None where the file or field does not exist (not Linux)."""
    try:
        text = status.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"{field}:"):
            value, unit = line.split()[1:3]
            if unit != "kB":
                raise ValueError(f"{status}: unexpected unit {unit!r} for {field}")
            return int(value) * 1024
    return None


def rss_bytes() -> int | None:
    """Resident set size now."""
    return status_bytes("VmRSS")


def peak_rss_bytes() -> int | None:
    """Highest resident set size since the process started or since the last reset_peak."""
    return status_bytes("VmHWM")


def reset_peak() -> bool:
    """Restart VmHWM from the current RSS; False where the kernel does not allow it."""
    try:
        CLEAR_REFS.write_text(RESET_PEAK)
    except OSError:
        return False
    return True


def release_freed_memory() -> None:
    """Collect garbage and hand the heap's free pages back to the kernel (glibc malloc_trim), so that RSS, and a
    peak reset after this, holds only what is still in use; a no-op for the trim on other C libraries."""
    gc.collect()
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    if hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


@dataclass
class Peak:
    """The peak memory of one stretch of the process: VmHWM, and torch's CUDA allocator peak (None: not read)."""

    rss: int | None = None
    cuda: int | None = None


@contextmanager
def tracked_peak(cuda: bool = False) -> Iterator[Peak]:
    """The peak memory of the enclosed stretch: both peaks restart on entry and are read on exit."""
    peak = Peak()
    reset_peak()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    yield peak
    peak.rss = peak_rss_bytes()
    peak.cuda = torch.cuda.max_memory_allocated() if cuda else None


def larger(first: int | None, second: int | None) -> int | None:
    """The larger of two peaks, either of which may be unknown."""
    known = [value for value in (first, second) if value is not None]
    return max(known) if known else None
