"""Paired timing: a benchmarked call and its reference call in alternating blocks of the same process.

On a shared machine other processes slow a benchmark for seconds at a time, so two runs of an unchanged suite
differed by up to 2x per benchmark even in their minima. Both sides of a block pair see the same load, so the
ratio of their times stays steady; `bench regress` compares these ratios (README, "Regression runs").
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.harness.latency import BLOCK_SECONDS, perf_clock

MIN_BLOCKS = 10  # block pairs always timed: Mann-Whitney needs 7 a side to reach p < 0.002
SIZING_CALLS = 5  # calls that size a block, the fastest counting: one descheduled call (4 ms here) sized
# blocks of one or two calls, and their ratios came out 0.003x-113x


@dataclass(frozen=True)
class Pairing:
    """extra_info of a paired benchmark: what it was timed against, and the time ratio of every block pair."""

    reference: str  # the reference's pytest id, e.g. "smoke-lenet5-r0-torch-dense-b8"
    paired_ratios: list[float]  # per block pair: median call time of the benchmark / of the reference

    def to_dict(self) -> dict:
        """The JSON-ready extra_info entries."""
        return {"reference": self.reference, "paired_ratios": self.paired_ratios}


def typical_seconds(call: Callable[[], object]) -> float:
    """The fastest of up to SIZING_CALLS calls, stopping once BLOCK_SECONDS (each side's block length, as in the
    harness's pairing) passed; a slow call runs once."""
    times: list[float] = []
    while len(times) < SIZING_CALLS and sum(times) < BLOCK_SECONDS:
        times.append(perf_clock(call))
    return min(times)


def block_median(call: Callable[[], object], calls: int) -> float:
    """Median seconds of `calls` consecutive calls."""
    return statistics.median(perf_clock(call) for _ in range(calls))


def time_paired(call: Callable[[], object], reference: Callable[[], object], seconds: float,
                min_blocks: int = MIN_BLOCKS) -> list[float]:
    """Per block pair, call time over reference time; blocks alternate until `seconds` and `min_blocks` pass.

    Untimed calls of each side first size its blocks to about BLOCK_SECONDS.
    """
    sizes = [max(1, int(BLOCK_SECONDS / max(typical_seconds(side), 1e-9))) for side in (call, reference)]
    ratios: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(ratios) < min_blocks or time.perf_counter() < deadline:
        ratios.append(block_median(call, sizes[0]) / block_median(reference, sizes[1]))
    return ratios


def record_pairing(benchmark, reference: str, call: Callable[[], object],
                   reference_call: Callable[[], object], seconds: float) -> None:
    """Time `call` against `reference_call` into the benchmark's extra_info; one block pair when disabled."""
    timed = benchmark.enabled
    ratios = time_paired(call, reference_call, seconds if timed else 0.0, MIN_BLOCKS if timed else 1)
    benchmark.extra_info.update(Pairing(reference, ratios).to_dict())
