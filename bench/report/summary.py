"""The console summary: per model, one compact table of the dense model, the study's finding (the masked model)
and the best artifacts (the "ship this" choices), each figure a ratio to the dense model on torch."""

from __future__ import annotations

from dataclasses import dataclass, replace

from rich import box
from rich.table import Table
from rich.text import Text

from bench.records import BASELINE_RUNTIME, Record
from bench.report.data import MASKED_RUNTIME, RunResults
from bench.report.tables import (MISSING, UNSTABLE_LEGEND, UNSTABLE_MARK, UNSTABLE_MEANING,
                                 accuracy_images_text, accuracy_notes, fmt_bytes, fmt_ms, fmt_x, is_unstable,
                                 marked)
from bench.report.verdict import (LATENCY_BATCH, ORT_DENSE_RUNTIME, ShipChoice, ShipVerdict, dense_macs,
                                  dense_record, runs_dense_computation, ship_this)
from prune.config import STUDY, Variant, ratio_tag

BEST_MARK = "*"  # after a chosen figure here, after the best of its column in the full tables
SUMMARY_LEGEND = (f"x: ratio to row 1 (dense on {BASELINE_RUNTIME}; bytes, ms). {BEST_MARK} chosen within tolerance: "
                  "smallest file, lowest stable p50 per batch (Ship this: the verdict's). "
                  f"{UNSTABLE_LEGEND}.")
FILE = "file"  # the figure a smallest-file choice is marked on; latency figures are named p50@<batch>


@dataclass(frozen=True)
class SummaryRow:
    """One row of a model's summary: why it is there, what it measured, and the record its figures come from."""

    role: str  # "dense", "study", "ship this" (a verdict choice), "best" (chosen, without a verdict)
    variant: Variant
    ratio: float  # requested pruning ratio, percent
    runtime: str | None  # None: a file no runtime loaded, ranked by size alone
    artifact: str  # file name, e.g. "packed.pt"
    accuracy: float | None  # top-1 %, None when not measured
    record: Record | None  # the measurement behind the figures; None for a file no runtime loaded
    file_to_dense: float | None  # file bytes / dense.pt's at ratio 0
    chosen: frozenset[str] = frozenset()  # figures this row was chosen for: FILE, p50@<batch>

    @property
    def key(self) -> tuple:
        """What the row stands for: two choices of the same artifact on the same runtime share one row."""
        return (self.variant, self.ratio, self.runtime, self.artifact)


def _record_row(role: str, record: Record, chosen: frozenset[str] = frozenset()) -> SummaryRow:
    return SummaryRow(role, Variant(record.method, record.recovery), record.ratio, record.runtime,
                      record.artifact, record.accuracy, record, record.to_dense.get("file_bytes"), chosen)


def _choice_row(role: str, results: RunResults, choice: ShipChoice, chosen: str) -> SummaryRow:
    """A ship-this choice as a row; a chosen file shows the figures of a runtime that loaded it, if one did."""
    c = choice.candidate
    variant = Variant(c.method, c.recovery)
    loaded = [r for r in results.records if (r.model, r.method, r.recovery, r.ratio, r.artifact)
              == (c.model, c.method, c.recovery, c.ratio, c.artifact) and not r.failed]
    record = (results.get(c.model, c.ratio, c.runtime, variant) if c.runtime
              else min(loaded, key=lambda r: r.p50_ms(LATENCY_BATCH) or float("inf"), default=None))
    runtime = record.runtime if record else None
    return SummaryRow(role, variant, c.ratio, runtime, c.artifact, c.accuracy, record, choice.bytes_to_dense,
                      frozenset({chosen}))


def masked_ratio(results: RunResults, model: str, verdict: ShipVerdict) -> float | None:
    """The study's highest ratio with a masked-model record within tolerance of dense accuracy (the highest
    measured one when none is, or dense accuracy is unknown); None without a masked record above ratio 0."""
    masked = [r for r in results.records if (r.model, r.runtime) == (model, MASKED_RUNTIME) and r.ratio > 0
              and Variant(r.method, r.recovery) == STUDY and not r.failed]
    floor = None if verdict.dense_accuracy is None else verdict.dense_accuracy - verdict.tolerance
    within = [r.ratio for r in masked if floor is not None and r.accuracy is not None and r.accuracy >= floor]
    return max(within or [r.ratio for r in masked], default=None)


def fastest_at(results: RunResults, model: str, batch: int, verdict: ShipVerdict) -> Record | None:
    """The lowest stable p50 at `batch` within the verdict's tolerance of dense accuracy (any accuracy when dense
    accuracy is unknown) and not the dense computation under another name, chosen as the verdict chooses at
    batch 1."""
    floor = None if verdict.dense_accuracy is None else verdict.dense_accuracy - verdict.tolerance
    macs = dense_macs(results, model)
    timed = [r for r in results.records if r.model == model and not r.failed and r.p50_ms(batch) is not None
             and not is_unstable(r, batch) and (floor is None or (r.accuracy is not None and r.accuracy >= floor))
             and not runs_dense_computation(r, macs)]
    return min(timed, key=lambda r: (r.p50_ms(batch), -(r.accuracy or 0.0)), default=None)


def summary_rows(results: RunResults, model: str, tolerance: float) -> list[SummaryRow]:
    """Dense on torch and on onnxruntime, the masked model at the study's best ratio, then the best artifacts:
    the ship-this choices and the fastest at every other batch size; one row per artifact and runtime, the
    first role it was picked for naming it, every figure it was chosen for marked."""
    verdict = ship_this(results, model, tolerance)
    role = "ship this" if verdict.dense_accuracy is not None else "best"
    candidates = [_record_row("dense", r) for r in (dense_record(results, model, BASELINE_RUNTIME),
                                                    dense_record(results, model, ORT_DENSE_RUNTIME)) if r]
    ratio = masked_ratio(results, model, verdict)
    if ratio is not None:
        candidates.append(_record_row("study", results.get(model, ratio, MASKED_RUNTIME)))
    if verdict.fastest:
        candidates.append(_choice_row(role, results, verdict.fastest, f"p50@{LATENCY_BATCH}"))
    if verdict.smallest:
        candidates.append(_choice_row(role, results, verdict.smallest, FILE))
    for batch in results.batches(model):
        best = fastest_at(results, model, batch, verdict) if batch != LATENCY_BATCH else None
        if best:
            candidates.append(_record_row("best", best, frozenset({f"p50@{batch}"})))
    rows: dict[tuple, SummaryRow] = {}
    for row in candidates:
        known = rows.get(row.key)
        if known is None:
            rows[row.key] = row
        else:
            role = known.role if row.role in ("best", known.role) else f"{known.role}, {row.role}"
            rows[row.key] = replace(known, role=role, chosen=known.chosen | row.chosen)
    return list(rows.values())


def _is_reference(row: SummaryRow) -> bool:
    return row.record is not None and row.runtime == BASELINE_RUNTIME and row.variant == STUDY and row.ratio == 0


def _cell(text: str, chosen: bool) -> Text:
    return Text(text + BEST_MARK, style="bold green") if chosen else Text(text + " ")


def _figures(row: SummaryRow, batches: list[int]) -> list[Text]:
    """File, parameter bytes and p50 per batch: absolute in the dense reference row, x it in every other."""
    r = row.record
    names = [FILE, "param_bytes", *(f"p50@{b}" for b in batches)]
    if _is_reference(row):
        texts = [fmt_bytes(r.file_bytes), fmt_bytes(r.param_bytes),
                 *(marked(fmt_ms(r.p50_ms(b)), is_unstable(r, b)) for b in batches)]
    else:
        ratios = r.to_dense if r and not r.failed else {}
        texts = [fmt_x(row.file_to_dense), fmt_x(ratios.get("param_bytes")),
                 *(marked(fmt_x(ratios.get(f"p50_ms@{b}")), is_unstable(r, b)) for b in batches)]
    return [_cell(text, name in row.chosen) for text, name in zip(texts, names)]


def summary_notes(results: RunResults, model: str, tolerance: float) -> str:
    """What the accuracy was computed on or why it is missing, and the verdict's notes (unstable figures
    skipped, no accuracy claim), each reason once."""
    verdict = [note.replace(f" ({UNSTABLE_MEANING})", f" ({UNSTABLE_MARK})")
               for note in ship_this(results, model, tolerance).notes]
    notes = [accuracy_images_text(results, model), *verdict]
    missing = [f"n/a: {n}" for n in accuracy_notes(results, model) if not any(n in note for note in notes)]
    return "; ".join([*notes[:1], *missing, *notes[1:]])


def summary_table(results: RunResults, model: str, tolerance: float) -> Table:
    """One model's summary as a rich Table headed by its name: role, variant, runtime (or file), accuracy and the
    figures."""
    batches = results.batches(model)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1), pad_edge=False, collapse_padding=True)
    table.add_column(model, style="bold")
    table.add_column("variant", overflow="fold")
    table.add_column("runtime/file", overflow="fold")
    table.add_column("acc %", justify="right", no_wrap=True)
    for header in (FILE, "params", *(f"p50 b{b}" for b in batches)):
        table.add_column(header, justify="right", no_wrap=True)
    for row in summary_rows(results, model, tolerance):
        variant = "dense" if row.variant == STUDY and row.ratio == 0 else f"{row.variant.tag} {ratio_tag(row.ratio)}"
        accuracy = MISSING if row.accuracy is None else f"{row.accuracy:.2f}"
        table.add_row(row.role, variant, row.runtime or row.artifact, accuracy, *_figures(row, batches))
    return table
