"""The console report: per model a compact summary table, then the findings; the full tables (best cell of each
column marked) on request, as in report.md."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from rich import box
from rich.console import Console, Group
from rich.measure import Measurement
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bench.report.summary import BEST_MARK, SUMMARY_LEGEND, summary_notes, summary_table
from bench.report.findings import Finding
from bench.report.methods import methods_table
from bench.report.data import RunResults
from bench.report.tables import UNSTABLE_LEGEND, FigureTable, model_tables
from prune.config import RunConfig

LEGEND = (f"{BEST_MARK} best in column: lowest size, memory and latency (ranked by the ratio to dense); "
          f"highest accuracy. {UNSTABLE_LEGEND}")
# environment key -> its label in the one-line summary above the tables
ENVIRONMENT_SUMMARY = {"cpu": "cpu", "logical_cores": "cores", "threads": "threads", "torch": "torch",
                       "onnxruntime": "ort", "gpu": "gpu", "preset": "preset"}


def rich_table(table: FigureTable) -> Table:
    """A FigureTable as a compact rich Table; best cells bold green with a trailing mark."""
    out = Table(caption=table.caption, box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False,
                collapse_padding=True, caption_justify="left")
    out.add_column(table.row_header, justify="right", style="bold")
    for column in table.columns:
        out.add_column(column.header, justify="right", no_wrap=True)
    for i, row in enumerate(table.rows):
        cells = [column.cells[i] for column in table.columns]
        out.add_row(row, *(Text(c.text + BEST_MARK, style="bold green") if c.best else Text(c.text + " ")
                           for c in cells))
    return out


def _split(table: FigureTable, size: int) -> list[tuple[Text, Table]]:
    """The table's columns in groups of `size`, each drawn with the row labels; the caption goes last."""
    groups = [table.columns[i:i + size] for i in range(0, len(table.columns), size)]
    parts = []
    for n, group in enumerate(groups):
        title = table.title if n == 0 else f"{table.title}, cont."
        caption = table.caption if n == len(groups) - 1 else None
        parts.append((Text(title, style="bold"), rich_table(replace(table, columns=group, caption=caption))))
    return parts


def fitted(table: FigureTable, console: Console) -> list[tuple[Text, Table]]:
    """The table as one rich Table, or split into column groups (row labels repeated) that fit the console."""
    unbounded = console.options.update_width(10_000)  # natural widths, not ones clamped to the console
    parts = _split(table, len(table.columns) or 1)
    for count in range(2, len(table.columns) + 1):
        if all(Measurement.get(console, unbounded, t).maximum <= console.width for _, t in parts):
            break
        parts = _split(table, -(-len(table.columns) // count))
    return parts


def findings_panel(items: list[Finding]) -> Panel:
    """The findings as one panel, a paragraph each: the topic in bold, the overhead, then what removes it in cyan."""
    body = Text()
    for n, finding in enumerate(items, 1):
        body.append("\n" if n > 1 else "")
        body.append(f"{n}. {finding.topic.capitalize()}: ", style="bold")
        body.append(finding.overhead + " ")
        body.append(finding.remedy, style="cyan")
    return Panel(body, title="Findings", title_align="left")


def print_detail(results: RunResults, console: Console) -> None:
    """Every full table of every model, as report.md has them: the study's figures per ratio and runtime, best
    cell of each column marked, and the comparison of methods and recoveries."""
    console.print(LEGEND, highlight=False)
    study = results.study()
    for model in results.models():
        for table in [*model_tables(study, model), methods_table(results, model)]:
            for title, part in fitted(table, console):
                console.print(Group(title, part))


def print_report(results: RunResults, items: list[Finding], console: Console,
                 model_notes: Mapping[str, list[str]] | None = None) -> None:
    """Print the environment, one summary table per model (its notes under it, with `model_notes`: what the
    methods' sweeps say of it), the failed measurements and the findings panel."""
    env = results.environment
    summary = ", ".join(f"{label}={env[k]}" for k, label in ENVIRONMENT_SUMMARY.items() if env.get(k) is not None)
    console.rule(f"prunebench report: {results.path}")
    if summary:
        console.print(summary, highlight=False)
    console.print(SUMMARY_LEGEND, highlight=False)
    tolerance = float(results.config.get("tolerance", RunConfig.tolerance))
    for model in results.models():
        console.print(summary_table(results, model, tolerance))
        notes = [summary_notes(results, model, tolerance), *(model_notes or {}).get(model, [])]
        console.print("; ".join(notes), style="dim", highlight=False)
    for record in results.failures():
        console.print(f"[yellow]failed measurement[/] (shown as -): {record.model} {record.ratio:g}% "
                      f"{record.runtime}: {record.error}", highlight=False)
    console.print(findings_panel(items))
