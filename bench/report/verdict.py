"""What to ship per model: the fastest and the smallest artifact within an accuracy tolerance of dense, each with
its figures against the dense model on torch and on onnxruntime, and the Pareto front those choices sit on."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from bench.records import BASELINE_RUNTIME, ArtifactFile, Record
from bench.report.data import RunResults
from bench.report.tables import UNSTABLE_MEANING, accuracy_notes, fmt_bytes, fmt_ms, fmt_x, is_unstable
from bench.runtimes import runs_as, skips_zeros
from prune.config import DEFAULT_METHOD, DEFAULT_RECOVERY, Variant, ratio_tag

LATENCY_BATCH = 1  # the ship-this latency: one request at a time
ORT_DENSE_RUNTIME = "ort-dense"  # the second reference: the dense model exported to ONNX, on onnxruntime
ORT_UNPAIRED = "unpaired: ort-dense at ratio 0 was timed in its own process, not alongside this record"


@dataclass(frozen=True)
class Candidate:
    """One point of a trade-off: a variant's artifact (on a runtime, for latency) with its accuracy and a cost."""

    model: str
    method: str
    recovery: str
    ratio: float  # requested pruning ratio, percent
    runtime: str | None  # the runtime that timed the artifact; None for a file ranked by size alone
    artifact: str  # file name, e.g. "packed.pt"
    accuracy: float | None  # top-1 %, None when not measured
    cost: float  # lower is better: batch-1 p50 ms, or bytes on disk
    to_dense_cost: float | None  # cost / the dense model's (latency: paired in-process when timed so)
    unstable: bool = False  # the latency is flagged unstable (sizes never are)

    @property
    def label(self) -> str:
        """method+recovery, ratio and file: l1-structured+finetune r50 model.onnx."""
        return f"{self.method}+{self.recovery} {ratio_tag(self.ratio)} {self.artifact}"


@dataclass(frozen=True)
class ShipChoice:
    """The artifact chosen for one goal (fastest or smallest) and its figures against the dense model."""

    candidate: Candidate
    accuracy_claim: bool  # chosen within tolerance of a measured dense accuracy; False: on cost alone
    p50_to_torch_dense: float | None  # batch-1 p50 / torch-dense's at ratio 0; None for a file no runtime timed
    p50_torch_paired: bool  # that ratio divides by a dense p50 timed alongside it in the same process
    p50_to_ort_dense: float | None  # batch-1 p50 / ort-dense's at ratio 0 in the same run
    ort_pairing: str | None  # ORT_UNPAIRED whenever p50_to_ort_dense is given; None without it
    bytes_to_dense: float | None  # file bytes / dense.pt's at ratio 0


@dataclass(frozen=True)
class ShipVerdict:
    """Per model: what to ship for speed and for size, within `tolerance` points of the dense accuracy."""

    model: str
    tolerance: float  # accuracy points below dense that still count as no loss
    dense_accuracy: float | None  # the dense model's; None: nothing can be chosen within tolerance (see notes)
    fastest: ShipChoice | None  # lowest stable batch-1 p50; None when no record qualifies (see notes)
    smallest: ShipChoice | None  # smallest file of any format, loaded by a runtime or not
    beats_ort_dense: bool  # fastest is within tolerance and has a lower batch-1 p50 than ort-dense at ratio 0
    notes: tuple[str, ...]  # why a choice is missing or carries no accuracy claim; unstable figures skipped


def dominates(a: Candidate, b: Candidate) -> bool:
    """a is at least as accurate and at most as costly as b, and strictly better in one; False without accuracy."""
    if a.accuracy is None or b.accuracy is None:
        return False
    return (a.accuracy >= b.accuracy and a.cost <= b.cost
            and (a.accuracy > b.accuracy or a.cost < b.cost))


def pareto_front(points: list[Candidate]) -> list[Candidate]:
    """The points no other point dominates, cheapest first (equal points all kept); points without accuracy
    take no part, as nothing can be said of their trade-off."""
    rated = [p for p in points if p.accuracy is not None]
    front = [p for p in rated if not any(dominates(q, p) for q in rated)]
    return sorted(front, key=lambda p: (p.cost, -(p.accuracy or 0.0)))


def is_dense_variant(method: str, recovery: str, ratio: float) -> bool:
    """The dense model: the default variant at ratio 0, the only variant measured unpruned."""
    return ratio == 0 and Variant(method, recovery).is_study


def dense_record(results: RunResults, model: str, runtime: str) -> Record | None:
    """The successful record of `model`'s dense model on `runtime`, or None."""
    return next((r for r in results.records if r.model == model and r.runtime == runtime and not r.failed
                 and is_dense_variant(r.method, r.recovery, r.ratio)), None)


def variant_accuracy(results: RunResults, model: str, method: str, recovery: str, ratio: float) -> float | None:
    """A variant's accuracy: its baseline runtime's record's when measured, else any successful record's."""
    measured = [r for r in results.records if (r.model, r.method, r.recovery, r.ratio) == (model, method, recovery,
                                                                                           ratio)
                and not r.failed and r.accuracy is not None]
    fallback = measured[0].accuracy if measured else None
    return next((r.accuracy for r in measured if r.runtime == BASELINE_RUNTIME), fallback)


def dense_macs(results: RunResults, model: str) -> int | None:
    """The dense model's MACs, from its BASELINE_RUNTIME record; None without one (or records older than MACs)."""
    record = dense_record(results, model, BASELINE_RUNTIME)
    return record.macs if record else None


def runs_dense_computation(record: Record, dense_macs: int | None) -> bool:
    """Whether a record ran a computation another figure stands for: a runtime that runs another's once loaded
    (ort-sparse densifies its file into ort-dense's graph), or a pruned model with the dense model's MACs (nothing
    removed) on a runtime that multiplies every zero. Its latency is then that dense figure's, and any difference
    from it noise: onnxruntime, say, runs a 90%-zero graph as it runs the unpruned one."""
    if runs_as(record.runtime) is not None:
        return True
    return (dense_macs is not None and record.macs == dense_macs and not skips_zeros(record.runtime)
            and not is_dense_variant(record.method, record.recovery, record.ratio))


def _timed(results: RunResults, model: str) -> list[tuple[Candidate, Record]]:
    """Every successful record of `model` timed at LATENCY_BATCH, as a candidate next to its record."""
    pairs = []
    for r in results.records:
        stats = r.latency_ms.get(str(LATENCY_BATCH))
        if r.model == model and not r.failed and stats is not None:
            candidate = Candidate(model, r.method, r.recovery, r.ratio, r.runtime, r.artifact, r.accuracy,
                                  stats.p50_ms, r.to_dense.get(f"p50_ms@{LATENCY_BATCH}"), stats.unstable)
            pairs.append((candidate, r))
    return pairs


def latency_candidates(results: RunResults, model: str) -> list[Candidate]:
    """Batch-1 p50 of every successful record of `model`, unstable ones included and flagged."""
    return [candidate for candidate, _ in _timed(results, model)]


def file_accuracy(results: RunResults, f: ArtifactFile) -> float | None:
    """A file's accuracy: its own, as export measured it through the loaded file (a lossy one's differs from its
    variant's), else its variant's (files written before export recorded it)."""
    return f.accuracy if f.accuracy is not None else variant_accuracy(results, f.model, f.method, f.recovery,
                                                                      f.ratio)


def size_candidates(results: RunResults, model: str) -> list[Candidate]:
    """Every exported file of `model`, any format, lossy ones (codebook, int8) included, with its accuracy."""
    return [Candidate(model, f.method, f.recovery, f.ratio, None, f.artifact, file_accuracy(results, f),
                      f.file_bytes, f.to_dense)
            for f in results.files if f.model == model]


def _no_accuracy_reason(results: RunResults, model: str, tolerance: float) -> str:
    """Why no choice can be made within tolerance, from what the records say."""
    reasons = accuracy_notes(results, model)
    if dense_record(results, model, BASELINE_RUNTIME) is None:
        reasons = [f"the dense model has no successful {BASELINE_RUNTIME} record", *reasons]
    why = "; ".join(reasons) or "accuracy was not measured"
    return (f"cannot choose within {tolerance:g} points of dense accuracy: {why}. "
            "Fastest and smallest are chosen on cost alone, with no accuracy claim")


def _within(dense_accuracy: float | None, tolerance: float) -> Callable[[Candidate], bool]:
    """Whether a candidate may be chosen: within tolerance of dense, or anything when dense accuracy is unknown."""
    if dense_accuracy is None:
        return lambda c: True
    return lambda c: c.accuracy is not None and c.accuracy >= dense_accuracy - tolerance


def _cheapest(candidates: list[Candidate]) -> Candidate | None:
    """Lowest cost; on equal cost the more accurate."""
    return min(candidates, key=lambda c: (c.cost, -(c.accuracy or 0.0)), default=None)


def _speed(candidate: Candidate) -> tuple[float, float]:
    """A latency's rank: its ratio to the dense model (paired in one process where it was timed so), then its p50.

    Absolute p50s of two processes differ by up to 2x on a shared machine, and a process slowed as a whole can
    still come out stable; the paired ratio cancels that, as the report's best cell does."""
    ratio = candidate.to_dense_cost
    return (math.inf if ratio is None else ratio, candidate.cost)


@dataclass(frozen=True)
class DenseBaseline:
    """The speed a choice must not lose to: the fastest batch-1 p50 of the dense model at ratio 0 on torch-dense
    or ort-dense, flagged unstable or not (a flagged figure is noisy, but still a measurement)."""

    runtime: str
    p50_ms: float
    unstable: bool


def dense_baseline(results: RunResults, model: str) -> DenseBaseline | None:
    """The fastest dense figure at ratio 0 among BASELINE_RUNTIME and ORT_DENSE_RUNTIME; None when neither has one."""
    found = []
    for runtime in (BASELINE_RUNTIME, ORT_DENSE_RUNTIME):
        record = dense_record(results, model, runtime)
        p50 = record.p50_ms(LATENCY_BATCH) if record else None
        if p50 is not None:
            found.append(DenseBaseline(runtime, p50, is_unstable(record, LATENCY_BATCH)))
    return min(found, key=lambda b: b.p50_ms, default=None)


def _slower_than_dense(candidate: Candidate, baseline: DenseBaseline | None) -> bool:
    """Whether a candidate's latency is known to exceed the dense model's at ratio 0 (ranked first among slower
    ones, it would still be a slowdown): torch-dense's, paired where timed so, and the baseline's when that is
    ort-dense (unpaired: no process times the two side by side)."""
    if candidate.to_dense_cost is not None and candidate.to_dense_cost > 1.0:
        return True
    return baseline is not None and baseline.runtime == ORT_DENSE_RUNTIME and candidate.cost > baseline.p50_ms


def _baseline_text(baseline: DenseBaseline | None) -> str:
    """The dense figure speed choices are held to, in words; a flagged one is said to count all the same."""
    if baseline is None:
        return f"{BASELINE_RUNTIME} at ratio 0"
    flag = f", flagged unstable ({UNSTABLE_MEANING}) but a measurement all the same" if baseline.unstable else ""
    return f"{baseline.runtime} at ratio 0 ({fmt_ms(baseline.p50_ms)} ms{flag})"


def _fastest(candidates: list[Candidate]) -> Candidate | None:
    """The candidate with the lowest ratio to dense latency; on equal ratios the lower p50."""
    return min(candidates, key=_speed, default=None)


def _latency_choice(results: RunResults, model: str, eligible: Callable[[Candidate], bool], claim: bool,
                    notes: list[str]) -> ShipChoice | None:
    """The lowest stable batch-1 p50 among eligible records, with its ratios to torch and ORT dense."""
    timed = [(c, r) for c, r in _timed(results, model) if eligible(c)]
    macs = dense_macs(results, model)
    same = [c for c, r in timed if runs_dense_computation(r, macs)]
    if same:
        notes.append(f"{len(same)} figure(s) not chosen: the dense computation under another name (all its MACs, "
                     "zeros multiplied, or a file the runtime densifies), so a dense figure stands for them")
    timed = [(c, r) for c, r in timed if c not in same]
    stable = [c for c, _ in timed if not c.unstable]
    baseline = dense_baseline(results, model)
    best = _fastest([c for c in stable if not _slower_than_dense(c, baseline)])
    skipped = [c for c, _ in timed if c.unstable and (best is None or _speed(c) < _speed(best))]
    if skipped:
        notes.append(f"{len(skipped)} faster batch-1 figure(s) never chosen as unstable ({UNSTABLE_MEANING})")
    if best is None and stable:
        notes.append(f"every stable batch-{LATENCY_BATCH} figure is slower than the fastest dense figure, "
                     f"{_baseline_text(baseline)}, which no speed choice may be")
    elif baseline is not None and baseline.unstable:
        notes.append(f"the speed choice is held to the fastest dense figure, {_baseline_text(baseline)}")
    ort = dense_record(results, model, ORT_DENSE_RUNTIME)
    ort_p50 = ort.p50_ms(LATENCY_BATCH) if ort else None
    if ort_p50 is None:
        notes.append(f"no {ORT_DENSE_RUNTIME} batch-{LATENCY_BATCH} p50 at ratio 0: no ORT comparison")
    elif is_unstable(ort, LATENCY_BATCH) and not (baseline and baseline.runtime == ORT_DENSE_RUNTIME):
        notes.append(f"the {ORT_DENSE_RUNTIME} reference at ratio 0 is flagged unstable ({UNSTABLE_MEANING})")
    if best is None:
        notes.append(f"no stable batch-{LATENCY_BATCH} latency qualifies: no fastest choice")
        return None
    record = next(r for c, r in timed if c is best)
    paired = bool(record.paired_dense_ms.get(str(LATENCY_BATCH)))
    to_ort = best.cost / ort_p50 if ort_p50 else None
    return ShipChoice(best, claim, best.to_dense_cost, paired, to_ort, ORT_UNPAIRED if to_ort else None,
                      record.to_dense.get("file_bytes"))


def ship_this(results: RunResults, model: str, tolerance: float) -> ShipVerdict:
    """The fastest (batch-1 p50) and smallest artifact of `model` within `tolerance` points of dense accuracy;
    without a dense accuracy, the fastest and smallest overall, marked as carrying no accuracy claim."""
    dense_accuracy = variant_accuracy(results, model, DEFAULT_METHOD, DEFAULT_RECOVERY, 0)
    claim = dense_accuracy is not None
    notes = [] if claim else [_no_accuracy_reason(results, model, tolerance)]
    eligible = _within(dense_accuracy, tolerance)
    fastest = _latency_choice(results, model, eligible, claim, notes)
    small = _cheapest([c for c in size_candidates(results, model) if eligible(c)])
    smallest = ShipChoice(small, claim, None, False, None, None, small.to_dense_cost) if small else None
    beats = bool(fastest and claim and fastest.p50_to_ort_dense is not None and fastest.p50_to_ort_dense < 1)
    return ShipVerdict(model, tolerance, dense_accuracy, fastest, smallest, beats, tuple(notes))


def _accuracy_text(choice: ShipChoice, dense_accuracy: float | None) -> str:
    accuracy = choice.candidate.accuracy
    if not choice.accuracy_claim or accuracy is None or dense_accuracy is None:
        return "accuracy not compared"
    return f"{accuracy:.2f}% (dense {dense_accuracy:.2f}%)"


def _fastest_text(verdict: ShipVerdict) -> str:
    choice = verdict.fastest
    if choice is None:
        return "no latency choice"
    c = choice.candidate
    verb = "ship" if choice.accuracy_claim else "fastest, NO accuracy claim:"
    parts = [f"batch-{LATENCY_BATCH} p50 {fmt_ms(c.cost)} ms"]
    if choice.p50_to_torch_dense is not None:
        pairing = "" if choice.p50_torch_paired else " (unpaired)"
        parts.append(f"{fmt_x(choice.p50_to_torch_dense)} torch dense{pairing}")
    if choice.p50_to_ort_dense is not None:
        parts.append(f"{fmt_x(choice.p50_to_ort_dense)} ORT dense (unpaired)")
    return f"{verb} `{c.label}` on {c.runtime}: {_accuracy_text(choice, verdict.dense_accuracy)}, {', '.join(parts)}"


def _smallest_text(verdict: ShipVerdict) -> str:
    choice = verdict.smallest
    if choice is None:
        return "no file qualifies"
    c = choice.candidate
    claim = f", {c.accuracy:.2f}%" if choice.accuracy_claim and c.accuracy is not None else ", NO accuracy claim"
    ratio = f" ({fmt_x(choice.bytes_to_dense)} dense.pt)" if choice.bytes_to_dense is not None else ""
    return (f"`{c.artifact}` of {c.method}+{c.recovery} {ratio_tag(c.ratio)}, {fmt_bytes(c.cost)}B{ratio}"
            f"{claim}")


def ship_lines(verdict: ShipVerdict) -> list[str]:
    """The verdict in markdown: the choice line, then a line of notes when there are any."""
    head = (f"**{verdict.model}**: {_fastest_text(verdict)}; smallest file: {_smallest_text(verdict)}")
    return [head, f"_{verdict.model}: {'; '.join(verdict.notes)}._"] if verdict.notes else [head]
