"""Match two runs record by record and say what changed: per figure the new/old ratio (accuracy: the difference
in points), the environment that differs, the fields one schema lacks, and the records only one run has."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.compare.load import MEANING_SINCE, Run, RunRecord
from prune.config import DEFAULT_METHOD, DEFAULT_RECOVERY, Variant
from prune.errors import UsageError

# environment keys compared, in the order shown: machine, threads, libraries, code, preset
ENVIRONMENT_KEYS = ("cpu", "logical_cores", "gpu", "threads", "inter_op_threads", "python", "torch", "onnxruntime",
                    "numpy", "platform", "git_commit", "git_dirty", "preset")
VARIANT_FIELDS = frozenset({"method", "recovery"})


@dataclass(frozen=True)
class Figure:
    """A compared figure: its column header and how to read it from a record."""

    header: str
    value: Callable[[RunRecord], float | None]
    points: bool = False  # compared as new - old in points (accuracy), else as new / old


# record field -> the figure compared in every row (the latency per batch size goes between these and accuracy)
FIGURES = {
    "file_bytes": Figure("file", lambda r: r.file_bytes),
    "param_bytes": Figure("params", lambda r: r.param_bytes),
    "peak_rss_bytes": Figure("peak RSS", lambda r: r.peak_rss_bytes),
    "accuracy": Figure("acc", lambda r: r.accuracy, points=True),
}


@dataclass(frozen=True)
class Change:
    """One figure of one record in both runs: old (run A) and new (run B), and how it changed."""

    header: str
    old: float | None
    new: float | None
    points: bool = False  # accuracy: the change is new - old in points
    unpaired: bool = False  # a latency compared as absolute p50s: a run has no dense p50 timed alongside
    unstable_old: bool = False
    unstable_new: bool = False

    @property
    def ratio(self) -> float | None:
        """new / old; None when either is missing or old is 0."""
        return self.new / self.old if self.old and self.new is not None else None

    @property
    def difference(self) -> float | None:
        """new - old; None when either is missing."""
        return None if self.old is None or self.new is None else self.new - self.old


@dataclass(frozen=True)
class Delta:
    """One record found in both runs, and the change of every compared figure."""

    old: RunRecord
    new: RunRecord
    changes: list[Change]


@dataclass(frozen=True)
class Comparison:
    """Everything `compare` shows: environment, skipped fields, deltas per model, and the unmatched records."""

    old: Run
    new: Run
    environment: list[tuple[str, object, object]]  # (key, old, new) of every environment key that differs
    same_environment: list[str]  # the keys both runs agree on
    skipped: list[str]  # one sentence per field compared in neither run, or read as a default
    deltas: dict[str, list[Delta]]  # by model, models in common only
    only_old: list[RunRecord]
    only_new: list[RunRecord]


def environment_diff(old: Run, new: Run) -> tuple[list[tuple[str, object, object]], list[str]]:
    """(key, old, new) of each environment key that differs (the preset from the config when the environment lacks
    it), and the keys that do not."""
    def value(run: Run, key: str) -> object:
        return run.environment.get(key, run.config.get(key))

    keys = [k for k in ENVIRONMENT_KEYS if value(old, k) is not None or value(new, k) is not None]
    differ = [(k, value(old, k), value(new, k)) for k in keys if value(old, k) != value(new, k)]
    return differ, [k for k in keys if value(old, k) == value(new, k)]


def skipped_fields(old: Run, new: Run) -> list[str]:
    """The fields not compared: those whose meaning changed between the two schema versions, and those the
    records of only one run carry (a run without variants reads as the study's)."""
    low, high = sorted((old.schema_version, new.schema_version))
    lines = [f"{name}: not compared, schema {low} counted {before} (schema {since} on)"
             for name, (since, before) in MEANING_SINCE.items() if low < since <= high]
    for label, run, other in (("A", old, new), ("B", new, old)):
        extra = sorted(run.record_fields - other.record_fields)
        if extra:
            line = f"only in run {label}'s records (schema {run.schema_version}), not compared: {', '.join(extra)}"
            if VARIANT_FIELDS <= set(extra):
                line += (f"; run {'B' if label == 'A' else 'A'}'s records read as {DEFAULT_METHOD}+"
                         f"{DEFAULT_RECOVERY}")
            lines.append(line)
    return lines


def _latency_changes(old: RunRecord, new: RunRecord, batches: list[int]) -> list[Change]:
    """p50 per batch as the paired ratio to dense where both runs timed the dense pair, else as absolute p50."""
    changes = []
    for batch in batches:
        a, b = old.latency.get(batch), new.latency.get(batch)
        paired = a is not None and b is not None and a.paired_ratio is not None and b.paired_ratio is not None
        changes.append(Change(
            f"p50 b{batch}",
            (a.paired_ratio if paired else a.p50_ms) if a else None,
            (b.paired_ratio if paired else b.p50_ms) if b else None,
            unpaired=a is not None and b is not None and not paired,
            unstable_old=bool(a and a.unstable), unstable_new=bool(b and b.unstable)))
    return changes


def delta(old: RunRecord, new: RunRecord, figures: list[str], batches: list[int]) -> Delta:
    """The changes of one record: the sizes and memory both schemas mean alike, p50 per batch, then accuracy."""
    def changes(points: bool) -> list[Change]:
        return [Change(FIGURES[name].header, FIGURES[name].value(old), FIGURES[name].value(new), points)
                for name in figures if FIGURES[name].points == points]

    return Delta(old, new, changes(False) + _latency_changes(old, new, batches) + changes(True))


def _order(record: RunRecord) -> tuple:
    return (Variant(record.method, record.recovery).order, record.method, record.recovery, record.ratio)


def compare(old: Run, new: Run) -> Comparison:
    """Match the records of two runs by model, method, recovery, ratio and runtime; UsageError when the runs have
    no model in common."""
    models = list(dict.fromkeys(r.model for r in new.records if any(o.model == r.model for o in old.records)))
    if not models:
        raise UsageError(f"{old.path} and {new.path} have no model in common "
                         f"({', '.join(sorted({r.model for r in old.records})) or 'none'} against "
                         f"{', '.join(sorted({r.model for r in new.records})) or 'none'}); nothing to compare")
    low = min(old.schema_version, new.schema_version)
    figures = [name for name in FIGURES if MEANING_SINCE.get(name, (0, ""))[0] <= low]
    old_by_key = {r.key: r for r in old.records}
    new_keys = {r.key for r in new.records}
    runtimes = list(dict.fromkeys(r.runtime for r in [*new.records, *old.records]))
    deltas = {}
    for model in models:
        batches = sorted({b for r in [*old.records, *new.records] if r.model == model for b in r.latency})
        pairs = sorted(((old_by_key[r.key], r) for r in new.records if r.model == model and r.key in old_by_key),
                       key=lambda pair: (_order(pair[1]), runtimes.index(pair[1].runtime)))
        deltas[model] = [delta(a, b, figures, batches) for a, b in pairs]
    environment, same = environment_diff(old, new)
    return Comparison(old, new, environment, same, skipped_fields(old, new), deltas,
                      [r for r in old.records if r.key not in new_keys],
                      [r for r in new.records if r.key not in old_by_key])


@dataclass(frozen=True)
class Threshold:
    """How far a figure may move and still count as unchanged (--only-changed hides such rows)."""

    percent: float = 5.0  # sizes, memory and latency: |new / old - 1| at most this, in percent
    points: float = 0.1  # accuracy: |new - old| at most this many points

    def changed(self, change: Change) -> bool:
        """Whether the figure moved beyond the threshold, or is present in one run only."""
        if (change.old is None) != (change.new is None):
            return True
        if change.points:
            return change.difference is not None and abs(change.difference) > self.points
        ratio = change.ratio
        return ratio is not None and abs(ratio - 1) * 100 > self.percent


def is_changed(item: Delta, threshold: Threshold) -> bool:
    """A record changed when one run failed it and the other did not, or any figure moved beyond the threshold."""
    return (item.old.error is None) != (item.new.error is None) or any(map(threshold.changed, item.changes))
