"""Latency of one call: warm-up, then timed repetitions until the mean is stable or the rep/time budget is spent.

Adaptive like pytest-benchmark's calibration: at least `min_reps`, at most `max_reps`, and no new repetition once
`max_seconds` of timed calls have passed; in between it stops as soon as the standard error of the mean falls
below `target_rel_error` of the mean. A repetition (a sample) times back-to-back calls for about `sample_seconds`
and divides by their number, as timeit's and pyperf's loops do: a LeNet forward takes 0.1 ms, and one call at a
time its interquartile range is 40% of the median on 2 threads, from thread wake-ups and timer jitter rather than
from the forward. `measure_paired` times a call and a baseline in alternating blocks of one process, so that
their ratio does not carry the 2x process-to-process noise of a shared machine; `beats` decides from such
alternating blocks whether one call is faster than another by a margin (torch-auto's choice).
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
Timed = Callable[[], float]  # makes one call and returns the seconds it took
BLOCK_SECONDS = 0.01  # measure_paired runs each side about this long before switching to the other


@dataclass(frozen=True)
class RepsPolicy:
    """How many times a call is repeated for one latency figure."""

    warmup: int  # untimed calls first (allocator, caches, lazy initialisation)
    min_reps: int  # timed calls always made
    max_reps: int  # timed calls never exceeded
    max_seconds: float  # no new timed call once this much time was spent in timed calls (after min_reps)
    target_rel_error: float = 0.01  # stop early once std / sqrt(n) / mean falls below this
    sample_seconds: float = 0.001  # a sample loops the call at least this long (see autorange); 0: one call

    def __post_init__(self) -> None:
        if (self.warmup < 0 or not 1 <= self.min_reps <= self.max_reps or self.max_seconds <= 0
                or self.sample_seconds < 0):
            raise UsageError(f"invalid repetition policy {self}; need warmup >= 0, 1 <= min_reps <= max_reps, "
                             "max_seconds > 0, sample_seconds >= 0")

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


def latency_stats(samples_s: list[float], warmup: int, batch: int = 1, loops: int = 1) -> LatencyStats:
    """Percentiles, IQR, mean, standard deviation (ms) and throughput of per-call times given in seconds (each
    the mean over a sample of `loops` calls)."""
    ms = np.asarray(samples_s, dtype=np.float64) * 1000.0
    p25, p50, p75, p90, p95, p99 = (float(v) for v in np.percentile(ms, [25, 50, 75, 90, 95, 99]))
    std = float(ms.std(ddof=1)) if len(ms) > 1 else 0.0
    return LatencyStats(p50_ms=p50, p90_ms=p90, p99_ms=p99, mean_ms=float(ms.mean()), std_ms=std, reps=len(ms),
                        warmup=warmup, p95_ms=p95, iqr_ms=p75 - p25, throughput_ips=batch * 1000.0 / p50,
                        unstable=p75 - p25 > UNSTABLE_IQR * p50, loops=loops)


def is_done(samples: list[float], policy: RepsPolicy, loops: int = 1) -> bool:
    """True once `samples` (per-call seconds, each over `loops` calls) satisfy `policy`: max_reps reached, or
    min_reps and either the time budget or stability."""
    return len(samples) >= policy.max_reps or len(samples) >= policy.min_reps and (
        sum(samples) * loops >= policy.max_seconds or is_stable(samples, policy.target_rel_error))


def looped_clock(clock: Clock, loops: int) -> Clock:
    """A clock that times `loops` back-to-back calls as one reading and returns the seconds per call."""
    if loops == 1:
        return clock

    def per_call(call: Callable[[], object]) -> float:
        return clock(lambda: [call() for _ in range(loops)]) / loops

    return per_call


def autorange(call: Callable[[], object], clock: Clock, seconds: float) -> tuple[int, float]:
    """timeit's autorange: the first of 1, 2, 5, 10, 20, 50, ... calls whose reading together lasts `seconds`
    (the trials double as warm-up), with the seconds per call of that last trial. Run after the warm-up: sized on
    a first call, slowed by lazy initialisation, a 0.1 ms forward stayed unlooped and came out 1.9x its looped
    pair."""
    for loops in (n * 10**exponent for exponent in range(7) for n in (1, 2, 5)):
        per_call = looped_clock(clock, loops)(call)
        if per_call * loops >= seconds:
            break
    return loops, per_call


def measure_latency(call: Callable[[], object], policy: RepsPolicy, clock: Clock = perf_clock,
                    batch: int = 1) -> LatencyStats:
    """Warm up, then time `call` (a forward at `batch` images) with `clock` as `policy` says; their statistics.
    After the warm-up, calls shorter than sample_seconds are timed in loops."""
    for _ in range(policy.warmup):
        call()
    loops, _ = autorange(call, clock, policy.sample_seconds)
    sample = looped_clock(clock, loops)
    samples: list[float] = []
    while not is_done(samples, policy, loops):
        samples.append(sample(call))
    return latency_stats(samples, policy.warmup, batch, loops)


def measure_paired(call: Callable[[], object], baseline: Callable[[], object], policy: RepsPolicy,
                   clock: Clock = perf_clock, batch: int = 1) -> tuple[LatencyStats, LatencyStats]:
    """Time `call` and `baseline` in alternating blocks of about BLOCK_SECONDS until both satisfy `policy`.

    Both sides see the same load from other processes and the same state of this one, so the ratio of their
    medians is steady where a ratio between two processes' figures is not. At least one warm-up call each is
    made; each side's sample loops are then sized as measure_latency's, and its blocks by a sample's time.
    Both are forwards at `batch` images. Returns (call's, baseline's) stats.
    """
    sides = (call, baseline)
    warmup = max(1, policy.warmup)
    for _ in range(warmup):
        for side in sides:
            side()
    sized = [autorange(side, clock, policy.sample_seconds) for side in sides]
    loops = [n for n, _ in sized]
    clocks = [looped_clock(clock, n) for n in loops]
    block = [max(1, min(policy.max_reps, int(BLOCK_SECONDS / max(seconds * n, 1e-9)))) for n, seconds in sized]
    samples: tuple[list[float], list[float]] = ([], [])
    while not all(is_done(timed, policy, n) for timed, n in zip(samples, loops)):
        for side, timed, size, sample in zip(sides, samples, block, clocks):
            timed.extend(sample(side) for _ in range(min(size, policy.max_reps - len(timed))))
    return (latency_stats(samples[0], warmup, batch, loops[0]),
            latency_stats(samples[1], warmup, batch, loops[1]))


@dataclass(frozen=True)
class ComparePolicy:
    """When `beats` stops comparing a candidate call with a baseline call, and what it needs to call it faster."""

    margin: float = 0.9  # the candidate must take under this fraction of the baseline's time
    alpha: float = 0.01  # chance of a wrong verdict, over all looks together
    looks: tuple[int, ...] = (10, 20, 40, 80, 160)  # rounds after which the sign test is applied
    max_seconds: float = 0.25  # no new round after the first look once both sides' calls add up to this
    block_seconds: float = 0.002  # each side runs about this long per round (at least one call)
    hopeless: float = 3.0  # a candidate whose warm-up call takes this many times the baseline's loses at once

    def verdict(self, wins: int, rounds: int) -> bool | None:
        """True (False) when the rounds the candidate won (lost) are too many for chance at alpha / len(looks),
        so that testing at every look keeps wrong verdicts under alpha (Bonferroni); None: undecided."""
        level = self.alpha / len(self.looks)
        if sign_test_p(wins, rounds) <= level:
            return True
        if sign_test_p(rounds - wins, rounds) <= level:
            return False
        return None


def sign_test_p(successes: int, rounds: int) -> float:
    """One-sided sign-test p-value: the chance of at least `successes` heads in `rounds` fair coin flips."""
    return sum(math.comb(rounds, k) for k in range(successes, rounds + 1)) / 2**rounds


def beats(candidate: Timed, baseline: Timed, policy: ComparePolicy) -> bool:
    """True when `candidate` takes under `policy.margin` of `baseline`'s time, by a one-sided sign test.

    Each round times a block of each side, which one goes first alternating, and is won when the candidate's
    median is under the margin of the baseline's (a median, so that one call stalled by another process does not
    decide a round). At each look the wins or the losses may be too many for chance (True or False); when the
    looks or the time budget end first it is False, so a difference within the noise keeps the baseline. Calls
    slower than the budget still get the rounds of the first look. Two warm-up calls each (the first pays lazy
    initialisation); the faster of the two sizes the blocks and spots a hopeless candidate.
    """
    warm = [min(pair) for pair in zip(*[(candidate(), baseline()) for _ in range(2)], strict=True)]
    if warm[0] > policy.hopeless * warm[1]:
        return False
    sides = (candidate, baseline)
    sizes = [max(1, int(policy.block_seconds / max(seconds, 1e-9))) for seconds in warm]
    wins = rounds = 0
    spent = 0.0
    while rounds < policy.looks[-1]:
        medians = [0.0, 0.0]
        for side in ((1, 0) if rounds % 2 == 0 else (0, 1)):
            block = [sides[side]() for _ in range(sizes[side])]
            spent += sum(block)
            medians[side] = statistics.median(block)
        rounds += 1
        wins += medians[0] < policy.margin * medians[1]
        out_of_time = rounds >= policy.looks[0] and spent >= policy.max_seconds
        if rounds in policy.looks or out_of_time:
            verdict = policy.verdict(wins, rounds)
            if verdict is not None or out_of_time:
                return bool(verdict)
    return False
