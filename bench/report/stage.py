"""The report stage: console tables, `<out>/report.md` and `<out>/plots/*.png`, from the records only."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from bench.report.console import print_report
from bench.report.findings import findings
from bench.report.markdown import render_markdown
from bench.report.methods import method_notes
from bench.report.plots import write_plots
from bench.report.data import load_results, load_sweeps
from bench.report.tradeoff_plots import plot_tradeoffs
from prune.io import write_bytes

REPORT_FILE = "report.md"
PLOTS_DIR = "plots"


def run_report(out: Path, console: Console) -> None:
    """Read `<out>/results.json` (ArtifactError when absent); print the report, write report.md and plots.

    The study's tables, findings and plots come from its own variant's records; the comparison of methods and
    recoveries, the trade-off plots and the "ship this" verdict from all of them.
    """
    out = Path(out)
    results = load_results(out)
    study = results.study()
    items = findings(study.records, study.files)
    sweeps = load_sweeps(out, results.models())
    with console.status("drawing plots"):
        plots = write_plots(study, out / PLOTS_DIR)
        tradeoffs = [plot for model in results.models() for plot in plot_tradeoffs(results, model, out / PLOTS_DIR)]
    plots += [plot.path for plot in tradeoffs if plot.path]
    missing = [plot.reason for plot in tradeoffs if plot.reason]
    write_bytes(out / REPORT_FILE, render_markdown(results, items, sweeps, plots, out, missing).encode())
    print_report(results, items, console, {model: method_notes(results, out, model) for model in results.models()})
    console.print(f"wrote {out / REPORT_FILE} and {len(plots)} plots under {out / PLOTS_DIR}",
                  highlight=False)
