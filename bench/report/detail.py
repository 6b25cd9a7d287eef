"""The markdown report's detail tables: gzip sizes, and every latency figure of every record.

The console stays compact and leaves these out; like the other tables they are data, drawn by the renderer.
"""

from __future__ import annotations

from bench.records import DENSE_ARTIFACT, ArtifactFile, LatencyStats
from bench.report.data import RunResults
from bench.report.tables import (LOWER, MISSING, NOT_AVAILABLE, UNSTABLE_LEGEND, Cell, Column, FigureTable,
                                 fmt_bytes, fmt_ms, fmt_ratio, fmt_x, marked, ranked, with_x)
from export.digest import GZIP_LEVEL

GZIP_NOTE = f"gzip: zlib level {GZIP_LEVEL}"
DETAIL_HEADERS = ("runtime", "ratio %", "p50 ms", "x dense", "p95 ms", "IQR ms", "images/s", "reps")


def _gzip_text(item: ArtifactFile | None, base: int | None) -> str:
    if item is None:
        return MISSING
    if item.gzip_bytes is None:
        return NOT_AVAILABLE
    return with_x(fmt_bytes(item.gzip_bytes), item.gzip_bytes / base if base else None)


def gzip_table(results: RunResults, model: str) -> FigureTable:
    """gzip bytes of every artifact with their ratio to dense.pt's at ratio 0; n/a where none was computed."""
    ratios = results.ratios(model)
    dense = results.file(model, 0, DENSE_ARTIFACT)
    base = dense.gzip_bytes if dense else None
    columns = []
    for artifact in results.artifacts(model):
        files = [results.file(model, ratio, artifact) for ratio in ratios]
        values = [f.gzip_bytes if f else None for f in files]
        columns.append(ranked(artifact, values, [_gzip_text(f, base) for f in files], LOWER))
    notes = dict.fromkeys(f.gzip_note for f in results.files if f.model == model and f.gzip_bytes is None
                          and f.gzip_note)
    caption = "; ".join([GZIP_NOTE, *(f"n/a: {note}" for note in notes)])
    title = f"{model} - gzip size (bytes, x dense.pt's gzip at ratio 0)"
    return FigureTable(title, [fmt_ratio(r) for r in ratios], columns, caption)


def fmt_rate(per_second: float) -> str:
    """Images per second: 12,345 or 8.51."""
    return f"{per_second:,.0f}" if per_second >= 100 else f"{per_second:.3g}"


def _iqr_text(stats: LatencyStats) -> str:
    """The interquartile range with its share of the median, the figure the unstable flag is read from."""
    share = f" ({stats.iqr_ms / stats.p50_ms:.0%})" if stats.p50_ms else ""
    return fmt_ms(stats.iqr_ms) + share


def latency_detail_table(results: RunResults, model: str) -> FigureTable:
    """A row per batch size, runtime and ratio: p50, its ratio to dense, p95, IQR, throughput, repetitions."""
    rows: list[str] = []
    cells: dict[str, list[str]] = {h: [] for h in DETAIL_HEADERS}
    for batch in results.batches(model):
        for runtime in results.runtimes(model):
            for ratio in results.ratios(model):
                record = results.get(model, ratio, runtime)
                stats = record.latency_ms.get(str(batch)) if record else None
                if stats is None:
                    continue
                rows.append(str(batch))
                row = (runtime, fmt_ratio(ratio), marked(fmt_ms(stats.p50_ms), stats.unstable),
                       fmt_x(record.to_dense.get(f"p50_ms@{batch}")), fmt_ms(stats.p95_ms), _iqr_text(stats),
                       fmt_rate(stats.throughput_ips), str(stats.reps))
                for header, text in zip(cells, row):
                    cells[header].append(text)
    columns = [Column(header, [Cell(None, text) for text in texts]) for header, texts in cells.items()]
    title = f"{model} - latency detail (x dense: p50 / torch-dense's at ratio 0, paired where timed in pairs)"
    return FigureTable(title, rows, columns, UNSTABLE_LEGEND, row_header="batch")
