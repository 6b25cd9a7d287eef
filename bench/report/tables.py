"""The report's tables as data: one per model and figure group, rows = ratios, best cell per column marked.

The console and markdown renderers draw these; neither computes anything of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from bench.records import DENSE_ARTIFACT, UNSTABLE_IQR, Record
from bench.report.data import RunResults

LOWER = "lower"  # smaller is better: sizes, memory, latency
HIGHER = "higher"  # larger is better: accuracy
MISSING = "-"  # a figure the measurement did not produce
NOT_AVAILABLE = "n/a"  # a figure that could not be measured, with a stated reason
UNSTABLE_MARK = "†"  # after a latency whose record flags it unstable
UNSTABLE_MEANING = f"IQR > {UNSTABLE_IQR:.0%} of median: noisy, not a finding"
UNSTABLE_LEGEND = f"{UNSTABLE_MARK} {UNSTABLE_MEANING}"


@dataclass(frozen=True)
class Cell:
    """One table cell: the value it is ranked by, its text, and whether it is the best of its column."""

    value: float | None
    text: str
    best: bool = False


@dataclass(frozen=True)
class Column:
    """A column of cells, one per row; `better` says which direction wins, None for unranked columns."""

    header: str
    cells: list[Cell]
    better: str | None = None


@dataclass(frozen=True)
class FigureTable:
    """One figure group of one model: rows are ratios, columns are runtimes or artifacts."""

    title: str
    rows: list[str]
    columns: list[Column]
    caption: str | None = None
    row_header: str = "ratio %"


def fmt_bytes(n: float | None) -> str:
    """Decimal, compact: 950, 12.3k, 1.07M, 2.31G."""
    if n is None:
        return MISSING
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            value = n / scale
            return f"{value:.3g}{unit}" if value < 100 else f"{value:.0f}{unit}"
    return f"{n:.0f}"


def fmt_ms(ms: float | None) -> str:
    """Milliseconds with three significant figures (trailing zeros kept) and no exponent."""
    if ms is None:
        return MISSING
    if ms >= 99.95:
        return f"{ms:.0f}"
    return f"{ms:#.3g}" if ms >= 0.001 else f"{ms:.4f}"


def fmt_x(ratio: float | None) -> str:
    """A ratio to a reference: 2.0x, 48x, 0.45x."""
    if ratio is None:
        return MISSING
    if ratio >= 10:
        return f"{ratio:.0f}x"
    if ratio >= 0.995:  # 0.999 reads as 1.0x, not 1x
        return f"{ratio:.1f}x"
    return f"{ratio:.2g}x"


def fmt_ratio(ratio: float) -> str:
    """A pruning ratio or sparsity in percent: 90, 99.5."""
    return f"{ratio:g}"


def best_flags(values: list[float | None], better: str | None) -> list[bool]:
    """Which values are the best of the column; none when unranked, fewer than two values, or all equal."""
    present = [v for v in values if v is not None]
    if better is None or len(present) < 2:
        return [False] * len(values)
    best = min(present) if better == LOWER else max(present)
    if all(math.isclose(v, best, rel_tol=1e-9) for v in present):
        return [False] * len(values)
    return [v is not None and math.isclose(v, best, rel_tol=1e-9) for v in values]


def ranked(header: str, values: list[float | None], texts: list[str], better: str | None) -> Column:
    """A column whose best cells are marked."""
    flags = best_flags(values, better)
    return Column(header, [Cell(v, t, f) for v, t, f in zip(values, texts, flags)], better)


def with_x(text: str, ratio: float | None) -> str:
    """`text` followed by its ratio to dense when there is one."""
    return text if ratio is None or text == MISSING else f"{text} {fmt_x(ratio)}"


def accuracy_cell(record: Record | None) -> tuple[float | None, str]:
    """Accuracy of a row: a number, n/a when a reason is recorded, '-' when the measurement failed."""
    if record is None or record.failed:
        return None, MISSING
    if record.accuracy is None:
        return None, NOT_AVAILABLE if record.accuracy_note else MISSING
    return record.accuracy, f"{record.accuracy:.2f}"


def accuracy_notes(results: RunResults, model: str) -> list[str]:
    """The distinct reasons recorded for missing accuracy of `model`."""
    return list(dict.fromkeys(r.accuracy_note for r in results.records if r.model == model
                              and r.accuracy is None and r.accuracy_note and not r.failed))


def accuracy_images_text(results: RunResults, model: str) -> str:
    """How many test images the accuracy of `model` was computed on, or that it was not measured."""
    measured = [r for r in results.records if r.model == model and r.accuracy is not None and not r.failed]
    counts = sorted({r.test_images for r in measured if r.test_images})
    if counts:
        return f"accuracy on {' / '.join(f'{n:,}' for n in counts)} test images"
    return "accuracy on an unrecorded number of test images" if measured else "accuracy not measured"


def is_unstable(record: Record | None, batch: int | str) -> bool:
    """Whether the record's latency at `batch` is flagged unstable (IQR over UNSTABLE_IQR of its median)."""
    stats = record.latency_ms.get(str(batch)) if record else None
    return bool(stats and stats.unstable)


def marked(text: str, unstable: bool) -> str:
    """`text` with the unstable mark when its figure is flagged unstable."""
    return text + UNSTABLE_MARK if unstable and text != MISSING else text


def untimed_caption(results: RunResults, model: str) -> str | None:
    """What a missing latency, memory or parameter figure means at the ratios that were not timed."""
    untimed = results.untimed_ratios(model)
    if not untimed:
        return None
    return (f"{MISSING} at {', '.join(fmt_ratio(r) for r in untimed)}%: not timed (the preset's latency ratios, "
            "--latency-ratios); sizes and accuracy cover every ratio, the lossy files' (codebook, int8) the timed "
            "ones only")


def _leading_columns(results: RunResults, model: str) -> list[Column]:
    ratios = results.ratios(model)
    refs = [results.reference(model, ratio) for ratio in ratios]
    figures = [results.figures(model, ratio) for ratio in ratios]
    sparsity = [f[0] for f in figures]
    accuracy = [accuracy_cell(r) if r else (a, MISSING if a is None else f"{a:.2f}")
                for r, (_, a) in zip(refs, figures)]
    return [ranked("sparsity", sparsity, [MISSING if s is None else f"{s:.1f}" for s in sparsity], None),
            ranked("accuracy", [a[0] for a in accuracy], [a[1] for a in accuracy], HIGHER)]


def size_table(results: RunResults, model: str) -> FigureTable:
    """File bytes of every artifact and the fp32 reference, with their ratio to dense.pt at ratio 0."""
    ratios = results.ratios(model)
    dense = results.file(model, 0, DENSE_ARTIFACT)
    dense_bytes = dense.file_bytes if dense else None
    columns = _leading_columns(results, model)
    for artifact in results.artifacts(model):
        files = [results.file(model, ratio, artifact) for ratio in ratios]
        values = [f.file_bytes if f else None for f in files]
        texts = [with_x(fmt_bytes(v), f.to_dense if f else None) for v, f in zip(values, files)]
        columns.append(ranked(artifact, values, texts, LOWER))
    references = [getattr(results.reference(model, ratio), "fp32_ref_bytes", None) for ratio in ratios]
    texts = [with_x(fmt_bytes(b), b / dense_bytes if b is not None and dense_bytes else None)
             for b in references]
    columns.append(ranked("fp32 ref", references, texts, LOWER))
    notes = [f"n/a: {note}" for note in accuracy_notes(results, model)]
    caption = "; ".join([accuracy_images_text(results, model), *notes])
    title = f"{model} - file size (bytes, x dense.pt at ratio 0) with sparsity and accuracy (%)"
    return FigureTable(title, [fmt_ratio(r) for r in ratios], columns, caption)


Figure = Callable[[Record], float | None]


def _runtime_table(results: RunResults, model: str, title: str, figure: str, value: Figure,
                   fmt: Callable[[float | None], str]) -> FigureTable:
    ratios = results.ratios(model)
    columns = []
    for runtime in results.runtimes(model):
        recs = [results.get(model, ratio, runtime) for ratio in ratios]
        values = [value(r) if r else None for r in recs]
        texts = [with_x(fmt(v), r.to_dense.get(figure) if r else None) for v, r in zip(values, recs)]
        columns.append(ranked(runtime, values, texts, LOWER))
    return FigureTable(f"{model} - {title}", [fmt_ratio(r) for r in ratios], columns,
                       untimed_caption(results, model))


def latency_table(results: RunResults, model: str, batch: int) -> FigureTable:
    """p50 at `batch` of every runtime with its ratio to dense. Best is the lowest ratio to dense (paired: to
    the dense model timed in the same process: p50s of two processes differ by up to 2x), never unstable."""
    ratios = results.ratios(model)
    columns = []
    flagged = False
    for runtime in results.runtimes(model):
        recs = [results.get(model, ratio, runtime) for ratio in ratios]
        paired = [r.to_dense.get(f"p50_ms@{batch}") if r else None for r in recs]
        shaky = [is_unstable(r, batch) for r in recs]
        texts = [marked(with_x(fmt_ms(r.p50_ms(batch) if r else None), x), u)
                 for r, x, u in zip(recs, paired, shaky)]
        columns.append(ranked(runtime, [None if u else x for x, u in zip(paired, shaky)], texts, LOWER))
        flagged = flagged or any(shaky)
    caption = "; ".join(filter(None, [UNSTABLE_LEGEND if flagged else None, untimed_caption(results, model)]))
    title = f"{model} - p50 latency at batch {batch} (ms, x torch-dense at ratio 0)"
    return FigureTable(title, [fmt_ratio(r) for r in ratios], columns, caption or None)


def model_tables(results: RunResults, model: str) -> list[FigureTable]:
    """Every table of one model: size, parameter bytes, peak RSS, and p50 latency per batch size."""
    return [
        size_table(results, model),
        _runtime_table(results, model, "parameter bytes held (x torch-dense at ratio 0)", "param_bytes",
                       lambda r: r.param_bytes, fmt_bytes),
        _runtime_table(results, model, "peak RSS of the measuring process (x torch-dense at ratio 0)",
                       "peak_rss_bytes", lambda r: r.peak_rss_bytes, fmt_bytes),
        *(latency_table(results, model, batch) for batch in results.batches(model)),
    ]
