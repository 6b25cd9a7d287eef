"""Confirming time regressions: the flagged benchmarks re-run in fresh processes; a real slowdown reproduces.

A benchmark's paired ratio also varies between processes (measured unchanged: torch-masked by 1.6x-1.8x), and
all block pairs of one process share that state, so no test within a run sees it. A fresh process draws a fresh
state: a time regression stands only when every confirmation run flags it again against the same baseline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.regress.compare import TIME, Change, Thresholds, compare_runs

Rerun = Callable[[list[str]], dict[str, dict]]  # node ids -> that run's benchmarks by full name (load_run's form)


@dataclass(frozen=True)
class Confirmation:
    """A time regression of the first run and the same benchmark's time in each confirmation run."""

    first: Change  # the time regression of the full run
    reruns: list[Change | None]  # per confirmation run, its time against the same baseline; None: not compared
    # (absent from the run, or a torch-auto that picked other layers). Stops after the first not reproduced.
    wanted: int  # confirmation runs asked for (--confirm)

    @property
    def confirmed(self) -> bool:
        """True when every confirmation run asked for flagged the time again."""
        return len(self.reruns) == self.wanted and all(flagged(change) for change in self.reruns)


def flagged(change: Change | None) -> bool:
    """True when a confirmation run's time got worse beyond the thresholds again."""
    return change is not None and change.regressed


def confirm_times(flags: list[Change], baseline: dict[str, dict], rerun: Rerun, runs: int,
                  limits: Thresholds) -> list[Confirmation]:
    """Re-run the flagged benchmarks `runs` times, each run only those still flagged in every run so far."""
    reruns: dict[str, list[Change | None]] = {change.fullname: [] for change in flags}
    for _ in range(runs):
        pending = [name for name, changes in reruns.items() if all(flagged(c) for c in changes)]
        if not pending:
            break
        current = rerun(pending)
        times = {c.fullname: c for c in compare_runs(baseline, current, limits).changes if c.figure == TIME}
        for name in pending:
            reruns[name].append(times.get(name))
    return [Confirmation(change, reruns[change.fullname], runs) for change in flags]
