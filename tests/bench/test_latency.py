"""Latency statistics and the adaptive repetition policy, on fake forwards and fake clocks (no timing asserts)."""

from __future__ import annotations

import itertools

import pytest

from bench.latency import RepsPolicy, is_stable, latency_stats, measure_latency, measure_paired
from prune.errors import UsageError


class FakeForward:
    """Counts calls; its clock reports the next of a fixed sequence of durations instead of measuring."""

    def __init__(self, durations):
        self.calls = 0
        self.durations = itertools.cycle(durations)

    def __call__(self) -> None:
        self.calls += 1

    def clock(self, call) -> float:
        call()
        return next(self.durations)


def test_stats_are_milliseconds_of_the_samples():
    stats = latency_stats([0.001, 0.002, 0.003, 0.004, 0.010], warmup=2)
    assert stats.p50_ms == pytest.approx(3.0)
    assert stats.mean_ms == pytest.approx(4.0)
    assert stats.p90_ms == pytest.approx(7.6)
    assert stats.p99_ms == pytest.approx(9.76)
    assert stats.std_ms == pytest.approx(3.5355, abs=1e-4)
    assert (stats.reps, stats.warmup) == (5, 2)


def test_warmup_calls_are_made_but_not_timed():
    forward = FakeForward([0.01])
    stats = measure_latency(forward, RepsPolicy(warmup=3, min_reps=4, max_reps=4, max_seconds=10), forward.clock)
    assert forward.calls == 7
    assert stats.reps == 4 and stats.warmup == 3


def test_constant_durations_stop_at_min_reps():
    forward = FakeForward([0.002])
    stats = measure_latency(forward, RepsPolicy(warmup=0, min_reps=5, max_reps=1000, max_seconds=10), forward.clock)
    assert stats.reps == 5
    assert stats.std_ms == 0


def test_noisy_durations_run_to_max_reps_within_the_time_budget():
    forward = FakeForward([0.001, 0.009])
    policy = RepsPolicy(warmup=0, min_reps=3, max_reps=50, max_seconds=100, target_rel_error=1e-9)
    assert measure_latency(forward, policy, forward.clock).reps == 50


def test_time_budget_stops_repetitions_after_min_reps():
    forward = FakeForward([0.1, 0.3])
    policy = RepsPolicy(warmup=0, min_reps=2, max_reps=1000, max_seconds=1.0, target_rel_error=1e-9)
    assert measure_latency(forward, policy, forward.clock).reps == 6  # 0.1+0.3+0.1+0.3+0.1+0.3 >= 1.0


def test_min_reps_run_even_beyond_the_time_budget():
    forward = FakeForward([5.0])
    policy = RepsPolicy(warmup=0, min_reps=3, max_reps=10, max_seconds=1.0)
    assert measure_latency(forward, policy, forward.clock).reps == 3


def test_stability_is_standard_error_relative_to_the_mean():
    assert is_stable([1.0, 1.0, 1.0], 0.01)
    assert not is_stable([1.0, 2.0, 1.0], 0.01)
    assert not is_stable([1.0], 0.5)


@pytest.mark.parametrize("kwargs", [
    {"warmup": -1, "min_reps": 1, "max_reps": 1, "max_seconds": 1},
    {"warmup": 0, "min_reps": 0, "max_reps": 1, "max_seconds": 1},
    {"warmup": 0, "min_reps": 5, "max_reps": 4, "max_seconds": 1},
    {"warmup": 0, "min_reps": 1, "max_reps": 1, "max_seconds": 0},
])
def test_invalid_policy_is_a_usage_error(kwargs):
    with pytest.raises(UsageError, match="repetition policy"):
        RepsPolicy(**kwargs)


class Side:
    """A fake forward of fixed duration that logs its name on every call, for the paired timer."""

    def __init__(self, name: str, seconds: float, log: list[str]):
        self.name, self.seconds, self.log = name, seconds, log

    def __call__(self) -> None:
        self.log.append(self.name)


def side_clock(side: Side) -> float:
    side()
    return side.seconds


def test_paired_timing_alternates_blocks_of_about_ten_milliseconds_of_each_side():
    log: list[str] = []
    policy = RepsPolicy(warmup=1, min_reps=4, max_reps=100, max_seconds=0.02, target_rel_error=0.0)
    own, base = measure_paired(Side("own", 0.004, log), Side("dense", 0.002, log), policy, side_clock)
    timed = log[2:]  # one warm-up call each, whose times size the blocks
    assert timed[:14] == ["own"] * 2 + ["dense"] * 5 + ["own"] * 2 + ["dense"] * 5
    assert (own.p50_ms, base.p50_ms) == (pytest.approx(4.0), pytest.approx(2.0))


def test_paired_timing_runs_until_both_sides_meet_the_policy():
    log: list[str] = []
    policy = RepsPolicy(warmup=0, min_reps=3, max_reps=50, max_seconds=0.1, target_rel_error=0.0)
    own, base = measure_paired(Side("own", 0.05, log), Side("dense", 0.001, log), policy, side_clock)
    assert own.reps == 3  # 3 calls pass its 0.1 s budget
    assert base.reps == 30  # blocks of 10 calls, one after each of the slow side's calls


def test_paired_timing_never_exceeds_max_reps_on_either_side():
    log: list[str] = []
    policy = RepsPolicy(warmup=0, min_reps=1, max_reps=7, max_seconds=10.0, target_rel_error=0.0)
    own, base = measure_paired(Side("own", 0.0001, log), Side("dense", 0.0001, log), policy, side_clock)
    assert (own.reps, base.reps) == (7, 7)
