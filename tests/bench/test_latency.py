"""Latency statistics and the adaptive repetition policy, on fake forwards and fake clocks (no timing asserts)."""

from __future__ import annotations

import itertools
import random

import pytest

from bench.harness.latency import (ComparePolicy, RepsPolicy, beats, is_stable, latency_stats,
                                   measure_latency, measure_paired, sign_test_p)
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


def test_stats_flag_a_latency_whose_interquartile_range_exceeds_a_tenth_of_the_median():
    steady = latency_stats([0.010, 0.010, 0.0102, 0.0101], warmup=0)
    noisy = latency_stats([0.008, 0.010, 0.012, 0.014], warmup=0)
    assert steady.iqr_ms == pytest.approx(0.125) and not steady.unstable
    assert noisy.iqr_ms == pytest.approx(3.0) and noisy.unstable


def test_throughput_is_the_batch_in_images_per_second_at_the_median():
    forward = FakeForward([0.008, 0.004])  # autorange's one-call trial reads the first duration
    policy = RepsPolicy(warmup=0, min_reps=3, max_reps=3, max_seconds=10)
    stats = measure_latency(forward, policy, forward.clock, batch=64)
    assert stats.p50_ms == pytest.approx(4.0)
    assert stats.throughput_ips == pytest.approx(64 * 1000 / stats.p50_ms) == pytest.approx(16_000)


def test_warmup_calls_are_made_but_not_timed():
    forward = FakeForward([0.01])
    stats = measure_latency(forward, RepsPolicy(warmup=3, min_reps=4, max_reps=4, max_seconds=10), forward.clock)
    assert forward.calls == 3 + 1 + 4  # warm-up, autorange's one-call trial, the timed calls
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
    # autorange's trial reads the first 0.1; then 0.3+0.1+0.3+0.1+0.3 >= 1.0
    assert measure_latency(forward, policy, forward.clock).reps == 5


def test_min_reps_run_even_beyond_the_time_budget():
    forward = FakeForward([5.0])
    policy = RepsPolicy(warmup=0, min_reps=3, max_reps=10, max_seconds=1.0)
    assert measure_latency(forward, policy, forward.clock).reps == 3


def test_stability_is_standard_error_relative_to_the_mean():
    assert is_stable([1.0, 1.0, 1.0], 0.01)
    assert not is_stable([1.0, 2.0, 1.0], 0.01)
    assert not is_stable([1.0], 0.5)


class CountingForward:
    """A fake forward whose n-th call takes durations[n % len(durations)] seconds; its clock adds up the calls
    made during one reading, so that loops of calls are timed as a real clock would time them."""

    def __init__(self, durations):
        self.durations = durations
        self.calls = 0
        self.timed = 0.0

    def __call__(self) -> None:
        self.calls += 1

    def clock(self, call) -> float:
        first = self.calls
        call()
        seconds = sum(self.durations[n % len(self.durations)] for n in range(first, self.calls))
        self.timed += seconds
        return seconds


def test_sub_millisecond_calls_are_timed_in_loops_lasting_the_sample_seconds():
    forward = CountingForward([0.0001])
    policy = RepsPolicy(warmup=1, min_reps=5, max_reps=5, max_seconds=10, sample_seconds=0.001)
    stats = measure_latency(forward, policy, forward.clock)
    assert (stats.loops, stats.reps) == (10, 5)
    assert forward.calls == 1 + (1 + 2 + 5 + 10) + 5 * 10  # warm-up, autorange's trials, five samples of ten
    assert stats.p50_ms == pytest.approx(0.1)


def test_calls_longer_than_the_sample_seconds_are_timed_one_at_a_time():
    forward = CountingForward([0.002])
    stats = measure_latency(forward, RepsPolicy(warmup=1, min_reps=3, max_reps=3, max_seconds=10), forward.clock)
    assert stats.loops == 1 and forward.calls == 1 + 1 + 3  # warm-up, autorange's one-call trial, three samples


def test_time_budget_counts_every_call_of_a_loop():
    forward = CountingForward([0.0001] * 6 + [0.0003])  # looped samples differ: never stable
    policy = RepsPolicy(warmup=1, min_reps=1, max_reps=1000, max_seconds=0.01, target_rel_error=1e-9)
    stats = measure_latency(forward, policy, forward.clock)
    sampled = stats.reps * stats.loops * stats.mean_ms / 1000
    assert 0.01 <= sampled < 0.01 + stats.loops * 0.0003
    assert stats.loops == 10 and stats.reps < 20


def test_paired_sides_are_looped_each_by_its_own_warm_up_time():
    fast, slow = CountingForward([0.0001]), CountingForward([0.0005])

    def clock(call) -> float:  # a looped side is a lambda: time it by the calls it made on either forward
        before = fast.calls, slow.calls
        call()
        return (fast.calls - before[0]) * 0.0001 + (slow.calls - before[1]) * 0.0005

    own, base = measure_paired(fast, slow, RepsPolicy(warmup=1, min_reps=4, max_reps=4, max_seconds=10), clock)
    assert (own.loops, base.loops) == (10, 2)
    assert (own.p50_ms, base.p50_ms) == (pytest.approx(0.1), pytest.approx(0.5))


@pytest.mark.parametrize("kwargs", [
    {"warmup": -1, "min_reps": 1, "max_reps": 1, "max_seconds": 1},
    {"warmup": 0, "min_reps": 0, "max_reps": 1, "max_seconds": 1},
    {"warmup": 0, "min_reps": 5, "max_reps": 4, "max_seconds": 1},
    {"warmup": 0, "min_reps": 1, "max_reps": 1, "max_seconds": 0},
    {"warmup": 0, "min_reps": 1, "max_reps": 1, "max_seconds": 1, "sample_seconds": -0.001},
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
    timed = log[4:]  # one warm-up call each, then autorange's one-call trial each, whose times size the blocks
    assert timed[:14] == ["own"] * 2 + ["dense"] * 5 + ["own"] * 2 + ["dense"] * 5
    assert (own.p50_ms, base.p50_ms) == (pytest.approx(4.0), pytest.approx(2.0))


def test_paired_timing_gives_both_sides_the_throughput_of_their_batch():
    log: list[str] = []
    policy = RepsPolicy(warmup=1, min_reps=4, max_reps=4, max_seconds=1.0)
    own, base = measure_paired(Side("own", 0.004, log), Side("dense", 0.002, log), policy, side_clock, batch=8)
    assert own.throughput_ips == pytest.approx(8 * 1000 / own.p50_ms) == pytest.approx(2000)
    assert base.throughput_ips == pytest.approx(8 * 1000 / base.p50_ms) == pytest.approx(4000)


def test_paired_timing_runs_until_both_sides_meet_the_policy():
    log: list[str] = []
    policy = RepsPolicy(warmup=0, min_reps=3, max_reps=50, max_seconds=0.1, target_rel_error=0.0)
    own, base = measure_paired(Side("own", 0.05, log), Side("dense", 0.001, log), policy, side_clock)
    assert own.reps == 3  # 3 calls pass its 0.1 s budget
    assert base.reps == 30  # blocks of 10 calls, one after each of the slow side's calls


def test_paired_timing_never_exceeds_max_reps_on_either_side():
    log: list[str] = []
    policy = RepsPolicy(warmup=0, min_reps=1, max_reps=7, max_seconds=10.0, target_rel_error=0.0, sample_seconds=0)
    own, base = measure_paired(Side("own", 0.0001, log), Side("dense", 0.0001, log), policy, side_clock)
    assert (own.reps, base.reps) == (7, 7)


def test_sign_test_p_is_the_binomial_upper_tail_of_a_fair_coin():
    assert sign_test_p(7, 7) == pytest.approx(0.5**7)
    assert sign_test_p(9, 10) == pytest.approx(11 / 1024)
    assert sign_test_p(0, 5) == 1.0


class Timings:
    """Fake timed calls: each returns `seconds` times a seeded jitter in [1 - jitter, 1 + jitter]; counts calls and
    the seconds returned."""

    def __init__(self, seconds: float, jitter: float, seed: int):
        self.seconds, self.jitter, self.rng = seconds, jitter, random.Random(seed)
        self.times: list[float] = []

    def __call__(self) -> float:
        self.times.append(self.seconds * self.rng.uniform(1 - self.jitter, 1 + self.jitter))
        return self.times[-1]

    @property
    def calls(self) -> int:
        return len(self.times)


def rounds_run(side: Timings, block_seconds: float = 0.002) -> float:
    """Rounds a side took part in: its calls after the two warm-ups, over the block size the faster one set."""
    return (side.calls - 2) / max(1, int(block_seconds / min(side.times[:2])))


def test_the_verdict_needs_more_wins_or_losses_than_chance_allows_at_each_look():
    policy = ComparePolicy(alpha=0.01, looks=(10, 20))  # each look at 0.005
    assert policy.verdict(10, 10) is True  # 0.5 ** 10 = 0.001
    assert policy.verdict(9, 10) is None  # 11 / 1024 = 0.011
    assert policy.verdict(0, 10) is False
    assert policy.verdict(17, 20) is True and policy.verdict(16, 20) is None  # 0.0013 and 0.0059


def test_a_candidate_clearly_under_the_margin_beats_the_baseline_at_the_first_look():
    candidate, baseline = Timings(0.0006, 0.2, seed=1), Timings(0.001, 0.2, seed=2)
    assert beats(candidate, baseline, ComparePolicy(margin=0.9, alpha=0.01, looks=(10, 20, 40)))
    assert rounds_run(candidate) == rounds_run(baseline) == 10


def test_a_call_stalled_by_another_process_does_not_decide_a_round():
    stalled = itertools.cycle([0.0006, 0.0006, 0.012])  # every third call 20x slower: a block's mean 4.4x baseline
    assert beats(lambda: next(stalled), lambda: 0.001, ComparePolicy(margin=0.9))


def test_a_candidate_within_the_noise_of_the_margin_does_not_beat_the_baseline():
    for seed in range(5):
        candidate, baseline = Timings(0.00095, 0.2, seed=seed), Timings(0.001, 0.2, seed=seed + 100)
        assert not beats(candidate, baseline, ComparePolicy(margin=0.9, alpha=0.01))


def test_an_undecided_comparison_ends_after_its_last_look_and_keeps_the_baseline():
    candidate, baseline = Timings(0.00088, 0.3, seed=3), Timings(0.001, 0.3, seed=4)
    assert not beats(candidate, baseline, ComparePolicy(margin=0.9, looks=(10, 20), max_seconds=100.0))
    assert rounds_run(candidate) == rounds_run(baseline) == 20


def test_an_undecided_comparison_stops_at_its_time_budget_and_keeps_the_baseline():
    candidate, baseline = Timings(0.00088, 0.3, seed=3), Timings(0.001, 0.3, seed=4)
    assert not beats(candidate, baseline, ComparePolicy(margin=0.9, looks=(10, 20, 40), max_seconds=0.1))
    timed = sum(candidate.times[2:]) + sum(baseline.times[2:])  # after the two warm-ups each
    assert 0.1 <= timed < 0.1 + 0.01  # the round that crossed the budget was the last
    assert 20 < rounds_run(candidate) < 40


def test_calls_slower_than_the_budget_still_get_the_rounds_of_the_first_look():
    candidate, baseline = Timings(0.6, 0.1, seed=9), Timings(1.0, 0.1, seed=10)
    assert beats(candidate, baseline, ComparePolicy(margin=0.9, looks=(10, 20), max_seconds=0.25))
    assert candidate.calls == baseline.calls == 2 + 10


def test_a_slower_candidate_loses_at_the_first_look():
    candidate, baseline = Timings(0.0012, 0.1, seed=5), Timings(0.001, 0.1, seed=6)
    assert not beats(candidate, baseline, ComparePolicy(margin=0.9, looks=(10, 20), block_seconds=0.001))
    assert candidate.calls == baseline.calls == 2 + 10  # two warm-ups, then 10 rounds of one call each


def test_a_hopeless_candidate_loses_after_its_warmup_calls():
    candidate, baseline = Timings(0.004, 0.0, seed=7), Timings(0.001, 0.0, seed=8)
    assert not beats(candidate, baseline, ComparePolicy(hopeless=3.0))
    assert candidate.calls == baseline.calls == 2
