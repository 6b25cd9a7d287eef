"""Latency of one call: warm-up, then timed repetitions until the mean is stable or the rep/time budget is spent.

Adaptive like pytest-benchmark's calibration: at least `min_reps`, at most `max_reps`, and no new repetition once
`max_seconds` of timed calls have passed; in between it stops as soon as the standard error of the mean falls
below `target_rel_error` of the mean. `measure_paired` times a call and a baseline in alternating blocks of one
process, so that their ratio does not carry the 2x process-to-process noise of a shared machine.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from bench.records import UNSTABLE_IQR, LatencyStats
from prune.errors import UsageError

Clock = Callable[[Callable[[], object]], float]  # seconds one call of the argument takes
BLOCK_SECONDS = 0.01  # measure_paired runs each side about this long before switching to the other


@dataclass(frozen=True)
class RepsPolicy:
    """How many times a call is repeated for one latency figure."""

    warmup: int  # untimed calls first (allocator, caches, lazy initialisation)
    min_reps: int  # timed calls always made
    max_reps: int  # timed calls never exceeded
    max_seconds: float  # no new timed call once this much time was spent in timed calls (after min_reps)
    target_rel_error: float = 0.01  # stop early once std / sqrt(n) / mean falls below this

    def __post_init__(self) -> None:
        if self.warmup < 0 or not 1 <= self.min_reps <= self.max_reps or self.max_seconds <= 0:
            raise UsageError(f"invalid repetition policy {self}; need warmup >= 0, 1 <= min_reps <= max_reps, "
                             "max_seconds > 0")

    def to_dict(self) -> dict:
        """JSON-serialisable form."""
        return asdict(self)


def perf_clock(call: Callable[[], object]) -> float:
    """Wall time of one call on the CPU (time.perf_counter)."""
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def cuda_clock(call: Callable[[], object]) -> float:
    """GPU time of one call between two CUDA events (waits for the call's kernels to finish)."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    call()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1000.0


def is_stable(samples: list[float], target_rel_error: float) -> bool:
    """True once the standard error of the mean is below `target_rel_error` of the mean."""
    if len(samples) < 2:
        return False
    mean = statistics.fmean(samples)
    return mean > 0 and statistics.stdev(samples) / math.sqrt(len(samples)) <= target_rel_error * mean


def latency_stats(samples_s: list[float], warmup: int, batch: int = 1) -> LatencyStats:
    """Percentiles, IQR, mean, standard deviation (ms) and throughput of per-call times given in seconds."""
    ms = np.asarray(samples_s, dtype=np.float64) * 1000.0
    p25, p50, p75, p90, p95, p99 = (float(v) for v in np.percentile(ms, [25, 50, 75, 90, 95, 99]))
    std = float(ms.std(ddof=1)) if len(ms) > 1 else 0.0
    return LatencyStats(p50_ms=p50, p90_ms=p90, p99_ms=p99, mean_ms=float(ms.mean()), std_ms=std, reps=len(ms),
                        warmup=warmup, p95_ms=p95, iqr_ms=p75 - p25, throughput_ips=batch * 1000.0 / p50,
                        unstable=p75 - p25 > UNSTABLE_IQR * p50)


def is_done(samples: list[float], policy: RepsPolicy) -> bool:
    """True once `samples` satisfy `policy`: max_reps reached, or min_reps and either the time budget or stability."""
    return len(samples) >= policy.max_reps or len(samples) >= policy.min_reps and (
        sum(samples) >= policy.max_seconds or is_stable(samples, policy.target_rel_error))


def measure_latency(call: Callable[[], object], policy: RepsPolicy, clock: Clock = perf_clock) -> LatencyStats:
    """Warm up, then time `call` with `clock` as `policy` says; the statistics of the timed calls."""
    for _ in range(policy.warmup):
        call()
    samples: list[float] = []
    while not is_done(samples, policy):
        samples.append(clock(call))
    return latency_stats(samples, policy.warmup)


def measure_paired(call: Callable[[], object], baseline: Callable[[], object], policy: RepsPolicy,
                   clock: Clock = perf_clock) -> tuple[LatencyStats, LatencyStats]:
    """Time `call` and `baseline` in alternating blocks of about BLOCK_SECONDS until both satisfy `policy`.

    Both sides see the same load from other processes and the same state of this one, so the ratio of their
    medians is steady where a ratio between two processes' figures is not. At least one warm-up call each is
    made, and the last one's time sizes the blocks. Returns (call's, baseline's) stats.
    """
    sides = (call, baseline)
    warmup = max(1, policy.warmup)
    for _ in range(warmup):
        warm = [clock(side) for side in sides]
    block = [max(1, min(policy.max_reps, int(BLOCK_SECONDS / max(seconds, 1e-9)))) for seconds in warm]
    samples: tuple[list[float], list[float]] = ([], [])
    while not all(is_done(timed, policy) for timed in samples):
        for side, timed, size in zip(sides, samples, block):
            timed.extend(clock(side) for _ in range(min(size, policy.max_reps - len(timed))))
    return latency_stats(samples[0], warmup), latency_stats(samples[1], warmup)
