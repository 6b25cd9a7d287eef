"""The report stage: console tables, `<out>/report.md` and `<out>/plots/*.png`, from the records only."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from bench.console_report import print_report
from bench.findings import findings
from bench.markdown_report import render_markdown
from bench.plots import write_plots
from bench.report_data import load_results, load_sweeps
from prune.io import write_bytes

REPORT_FILE = "report.md"
PLOTS_DIR = "plots"


def run_report(out: Path, console: Console) -> None:
    """Read `<out>/results.json` (ArtifactError when absent); print the report, write report.md and plots."""
    out = Path(out)
    results = load_results(out)
    items = findings(results.records, results.files)
    sweeps = load_sweeps(out, results.models())
    with console.status("drawing plots"):
        plots = write_plots(results, out / PLOTS_DIR)
    write_bytes(out / REPORT_FILE, render_markdown(results, items, sweeps, plots, out).encode())
    print_report(results, items, console)
    console.print(f"wrote {out / REPORT_FILE} and {len(plots)} plots under {out / PLOTS_DIR}",
                  highlight=False)
