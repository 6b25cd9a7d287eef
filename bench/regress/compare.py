"""What changed between two runs of the benchmark suite: exact figures by threshold, times statistically.

A time is the benchmark's paired ratio (tests/benchmarks/bench_pairing.py): per block pair, its time over its
reference's time, both timed in alternation in one process, so a machine that is slower as a whole changes no
ratio. Like asv's `compare`, a time changed when the median ratio moved by more than a factor AND a two-sided
Mann-Whitney U test on the two runs' ratios gives p below a level.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass

from bench.regress.storage import dev_module

WORSE, BETTER, SAME = "worse", "better", "same"
TIME = "time"  # the figure name of a paired time ratio
TIMED_CHOICE = ("torch-auto", "torch-auto-cuda")  # runtimes that pick dense or CSR per layer by timing: their
# param_bytes and time follow a pick that flipped between unchanged runs here (param_bytes 0.2x-5x, time 2x)


@dataclass(frozen=True)
class Thresholds:
    """How much each figure may change before it counts (sizes and memory in percent, accuracy in points)."""

    latency: float  # percent growth of an inference latency ratio (factor 1 + latency / 100)
    io: float  # percent growth of an export or load time ratio
    p_value: float  # a time changed only when the Mann-Whitney U p-value is below this
    size: float  # percent growth of file, gzip and parameter bytes
    memory: float  # percent growth of peak RSS
    accuracy: float  # accuracy drop, points

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Thresholds:
        """The thresholds the regress options set."""
        return cls(args.latency_threshold, args.io_threshold, args.p_value, args.size_threshold,
                   args.memory_threshold, args.accuracy_threshold)


@dataclass(frozen=True)
class Figure:
    """An exact figure of extra_info: which direction is worse and which threshold it has."""

    name: str
    worse: str  # "higher" or "lower"
    threshold: str  # the Thresholds field holding its allowed change
    relative: bool  # threshold in percent of the baseline (True) or absolute units (False)


FIGURES = (
    Figure("file_bytes", "higher", "size", relative=True),
    Figure("gzip_bytes", "higher", "size", relative=True),
    Figure("param_bytes", "higher", "size", relative=True),
    Figure("peak_rss_bytes", "higher", "memory", relative=True),
    Figure("accuracy", "lower", "accuracy", relative=False),
)


@dataclass(frozen=True)
class Change:
    """One figure of one benchmark compared with the baseline run."""

    benchmark: str  # pytest-benchmark's name, e.g. test_inference_latency[smoke-lenet5-r90-torch-dense-b1]
    fullname: str  # its pytest node id, e.g. tests/benchmarks/test_bench_latency.py::test_inference_latency[...]
    figure: str  # TIME or a Figure name
    baseline: float  # time: the baseline's median paired ratio
    current: float
    verdict: str  # WORSE, BETTER or SAME
    p_value: float | None = None  # time: Mann-Whitney U p-value of the two runs' paired ratios; else None

    @property
    def regressed(self) -> bool:
        """True when the figure got worse beyond its threshold."""
        return self.verdict == WORSE

    @property
    def change(self) -> str:
        """A time's factor, accuracy's point change, others' relative change (from zero: the difference)."""
        if self.figure == TIME:
            return f"x{self.current / self.baseline:.2f}, p={self.p_value:.1g}"
        if self.figure == "accuracy":
            return f"{self.current - self.baseline:+.2f} pts"
        if not self.baseline:
            return f"{self.current - self.baseline:+.6g}"
        return f"{(self.current / self.baseline - 1) * 100:+.1f}%"


def time_verdict(baseline: list[float], current: list[float], factor: float,
                 p_value: float) -> tuple[str, float]:
    """The verdict and the two-sided Mann-Whitney U p-value of `current` against `baseline`.

    WORSE when the median grew by more than `factor` and p < `p_value`; BETTER when it shrank as much.
    """
    p = float(dev_module("scipy.stats").mannwhitneyu(current, baseline, alternative="two-sided").pvalue)
    ratio = statistics.median(current) / statistics.median(baseline)
    if p < p_value and ratio > factor:
        return WORSE, p
    if p < p_value and ratio < 1 / factor:
        return BETTER, p
    return SAME, p


def time_change(baseline: dict, current: dict, limits: Thresholds) -> Change | None:
    """The paired time ratio of one benchmark compared; None when either run has no paired ratios."""
    old, new = baseline["extra_info"].get("paired_ratios"), current["extra_info"].get("paired_ratios")
    if not old or not new:
        return None
    percent = limits.latency if current["extra_info"].get("runtime") else limits.io
    verdict, p = time_verdict(old, new, 1 + percent / 100, limits.p_value)
    return Change(current["name"], current["fullname"], TIME, statistics.median(old), statistics.median(new),
                  verdict, p)


def figure_change(baseline: dict, current: dict, figure: Figure, limits: Thresholds) -> Change | None:
    """One exact figure of extra_info compared; None when either run does not know it."""
    old, new = baseline["extra_info"].get(figure.name), current["extra_info"].get(figure.name)
    if old is None or new is None:
        return None
    limit = getattr(limits, figure.threshold)
    allowed = abs(old) * limit / 100 if figure.relative else limit
    growth = new - old if figure.worse == "higher" else old - new
    verdict = WORSE if growth > allowed else BETTER if -growth > allowed else SAME
    return Change(current["name"], current["fullname"], figure.name, old, new, verdict)


@dataclass(frozen=True)
class Comparison:
    """A run compared with its baseline: every figure of the benchmarks in both, and those only in one."""

    changes: list[Change]
    new: list[str]  # names of benchmarks only in the current run (not regressions)
    missing: list[str]  # names of benchmarks only in the baseline
    rechosen: list[str]  # TIMED_CHOICE benchmarks whose layer pick changed: time and param_bytes not compared

    @property
    def regressions(self) -> list[Change]:
        """The figures that got worse beyond their threshold."""
        return [c for c in self.changes if c.regressed]

    @property
    def time_regressions(self) -> list[Change]:
        """The times that got worse: statistical, so `bench regress` confirms them in fresh processes."""
        return [c for c in self.regressions if c.figure == TIME]

    @property
    def exact_regressions(self) -> list[Change]:
        """Sizes, memory and accuracy that got worse: exact figures, a regression without confirmation."""
        return [c for c in self.regressions if c.figure != TIME]

    @property
    def improvements(self) -> list[Change]:
        """The figures that got better beyond their threshold."""
        return [c for c in self.changes if c.verdict == BETTER]


def rechose(baseline: dict, current: dict) -> bool:
    """True when a runtime that picks its layers by timing picked differently in the two runs."""
    old, new = baseline["extra_info"], current["extra_info"]
    return new.get("runtime") in TIMED_CHOICE and old.get("param_bytes") != new.get("param_bytes")


def compare_runs(baseline: dict[str, dict], current: dict[str, dict], limits: Thresholds) -> Comparison:
    """Every figure known in both runs, compared, for the benchmarks (by full name) of both runs."""
    changes, rechosen = [], []
    for key in sorted(baseline.keys() & current.keys()):
        old, new = baseline[key], current[key]
        picked_otherwise = rechose(old, new)
        if picked_otherwise:
            rechosen.append(new["name"])
        found = [] if picked_otherwise else [time_change(old, new, limits)]
        found += [figure_change(old, new, figure, limits) for figure in FIGURES
                  if not (picked_otherwise and figure.name == "param_bytes")]
        changes += [change for change in found if change is not None]
    new_names = [current[key]["name"] for key in sorted(current.keys() - baseline.keys())]
    missing = [baseline[key]["name"] for key in sorted(baseline.keys() - current.keys())]
    return Comparison(changes, new_names, missing, rechosen)
