"""A Comparison drawn twice from the same cell texts: rich tables for the console, and markdown for --markdown."""

from __future__ import annotations

from dataclasses import dataclass

from rich import box
from rich.console import Console
from rich.table import Table

from bench.compare.load import Run, RunRecord
from bench.compare.match import Change, Comparison, Delta, Threshold, is_changed
from bench.report.tables import MISSING, UNSTABLE_MARK, UNSTABLE_MEANING, fmt_ratio
from prune.config import Variant

SAME = "="  # a figure identical in both runs
LEGEND = (f"Cells: run B / run A ({SAME} identical; new, gone: in one run only); acc: B - A in points. p50: each "
          "run's p50 over the dense p50 timed alongside it, where both runs timed that pair; ~: absolute p50s. "
          f"{UNSTABLE_MARK}a, {UNSTABLE_MARK}b: unstable in run A, in run B ({UNSTABLE_MEANING}).")
ROW_HEADERS = ("variant", "ratio %", "runtime")


@dataclass(frozen=True)
class ModelRows:
    """One model's table as text: headers, one row of cells per record shown, and how many rows were hidden."""

    model: str
    headers: list[str]
    rows: list[list[str]]
    matched: int  # records found in both runs
    hidden: int  # of them, within the threshold and left out by --only-changed


def change_text(change: Change) -> str:
    """x1.08 (B / A), +0.30pt (accuracy), = (identical), new / gone; ~ before an unpaired latency, †a/†b after a
    figure flagged unstable in run A/B."""
    if change.old is None and change.new is None:
        return MISSING
    if change.old is None or change.new is None:
        text = "new" if change.old is None else "gone"
    elif change.old == change.new:
        text = SAME
    elif change.points:
        text = f"{change.difference:+.2f}pt"
    else:
        text = MISSING if change.ratio is None else f"x{change.ratio:.3g}"
    flags = "a" * change.unstable_old + "b" * change.unstable_new
    unpaired = change.unpaired and text != SAME
    return ("~" if unpaired else "") + text + (f"{UNSTABLE_MARK}{flags}" if flags else "")


def _runtime_label(item: Delta) -> str:
    failed = [label for label, record in (("A", item.old), ("B", item.new)) if record.error is not None]
    return item.new.runtime + (f" (failed in {' and '.join(failed)})" if failed else "")


def model_rows(comparison: Comparison, threshold: Threshold | None) -> list[ModelRows]:
    """Each model's rows; with a threshold, only the records that changed beyond it."""
    tables = []
    for model, deltas in comparison.deltas.items():
        shown = [d for d in deltas if threshold is None or is_changed(d, threshold)]
        headers = [*ROW_HEADERS, *(c.header for c in deltas[0].changes)] if deltas else list(ROW_HEADERS)
        rows = [[Variant(d.new.method, d.new.recovery).tag, fmt_ratio(d.new.ratio), _runtime_label(d),
                 *map(change_text, d.changes)] for d in shown]
        tables.append(ModelRows(model, headers, rows, len(deltas), len(deltas) - len(shown)))
    return tables


def unmatched_lines(records: list[RunRecord]) -> list[str]:
    """Records of one run only, one line per model and variant with the same runtimes: its ratios, then them."""
    groups: dict[tuple, list[float]] = {}
    for model, method, recovery, ratio in dict.fromkeys((r.model, r.method, r.recovery, r.ratio) for r in records):
        runtimes = tuple(r.runtime for r in records if (r.model, r.method, r.recovery, r.ratio)
                         == (model, method, recovery, ratio))
        groups.setdefault((model, Variant(method, recovery).tag, runtimes), []).append(ratio)
    return [f"{model} {tag} at {', '.join(fmt_ratio(r) for r in ratios)}%: {', '.join(runtimes)}"
            for (model, tag, runtimes), ratios in groups.items()]


def unmatched_title(label: str, records: list[RunRecord]) -> str:
    """only in run A (3 records)."""
    return f"only in run {label} ({len(records)} record{'' if len(records) == 1 else 's'})"


def run_line(label: str, run: Run) -> str:
    """Which file a run is, its schema version and how many records it holds."""
    return f"run {label}: {run.path} (schema {run.schema_version}, {len(run.records)} records)"


def title(rows: ModelRows) -> str:
    """The model, how many of its records both runs hold, and how many of them the threshold hid."""
    hidden = f", {rows.hidden} within the threshold hidden" if rows.hidden else ""
    return f"{rows.model}: {rows.matched} records in both runs{hidden}"


def _text(value: object) -> str:
    return MISSING if value is None else str(value)


def print_comparison(comparison: Comparison, console: Console, threshold: Threshold | None) -> None:
    """The comparison on the console: runs, environment differences, skipped fields, a table per model, then the
    records found in one run only."""
    console.rule("prunebench compare")
    for label, run in (("A", comparison.old), ("B", comparison.new)):
        console.print(run_line(label, run), highlight=False, soft_wrap=True)
    env = Table("environment", "run A", "run B", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for key, old, new in comparison.environment:
        env.add_row(key, _text(old), _text(new))
    if comparison.environment:
        console.print(env)
    console.print(f"same in both: {', '.join(comparison.same_environment) or 'nothing'}", highlight=False)
    for line in comparison.skipped:
        console.print(f"skipped: {line}", highlight=False)
    console.print(LEGEND, highlight=False)
    for rows in model_rows(comparison, threshold):
        console.print(title(rows), style="bold", highlight=False)
        if rows.rows:
            table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
            for header in rows.headers:
                table.add_column(header, overflow="fold")
            for row in rows.rows:
                table.add_row(*row)
            console.print(table)
    for label, records in (("A", comparison.only_old), ("B", comparison.only_new)):
        if records:
            console.print(f"[bold]{unmatched_title(label, records)}[/]:")
            for line in unmatched_lines(records):
                console.print(f"  {line}", highlight=False)


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def render_markdown(comparison: Comparison, threshold: Threshold | None) -> str:
    """The same comparison as a markdown document."""
    lines = ["# prunebench compare", "", *(f"- {run_line(label, run)}" for label, run
                                          in (("A", comparison.old), ("B", comparison.new))), "",
             "## Environment", ""]
    if comparison.environment:
        lines += [_md_row(["key", "run A", "run B"]), "|---|---|---|"]
        lines += [_md_row([key, _text(old), _text(new)]) for key, old, new in comparison.environment] + [""]
    lines += [f"Same in both: {', '.join(comparison.same_environment) or 'nothing'}.", ""]
    if comparison.skipped:
        lines += ["## Skipped fields", "", *(f"- {line}" for line in comparison.skipped), ""]
    lines += [f"_{LEGEND}_", ""]
    for rows in model_rows(comparison, threshold):
        lines += [f"## {rows.model}", "", f"{title(rows)}.", ""]
        if rows.rows:
            lines += [_md_row(rows.headers), "|" + "---|" * len(ROW_HEADERS) + "---:|" * (len(rows.headers) - 3)]
            lines += [_md_row(row) for row in rows.rows] + [""]
    for label, records in (("A", comparison.only_old), ("B", comparison.only_new)):
        if records:
            lines += [f"## {unmatched_title(label, records).capitalize()}", ""]
            lines += [f"- {line}" for line in unmatched_lines(records)] + [""]
    return "\n".join(lines).rstrip() + "\n"
