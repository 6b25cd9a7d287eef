"""`python -m bench regress`: run the benchmark suite and compare it with the newest saved run of this machine.

Latency is compared on pytest-benchmark's own median; sizes and accuracy, which are exact, on `extra_info` with
tight thresholds. A run without regressions becomes the new baseline (pytest-benchmark's numbered file storage).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pytest_benchmark.utils import get_machine_id
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from prune.errors import ArtifactError, UsageError
from prune.io import write_json

EXIT_REGRESSION = 1
SUITE = Path(__file__).resolve().parent.parent / "tests" / "benchmarks"  # the source checkout's suite


@dataclass(frozen=True)
class Figure:
    """A compared figure: where it lives in a benchmark entry and which direction is worse."""

    name: str
    worse: str  # "higher" or "lower"
    threshold_option: str  # the argparse dest holding its allowed change
    relative: bool  # threshold in percent of the baseline (True) or absolute units (False)


FIGURES = (
    Figure("median_s", "higher", "latency_threshold", relative=True),
    Figure("file_bytes", "higher", "size_threshold", relative=True),
    Figure("gzip_bytes", "higher", "size_threshold", relative=True),
    Figure("param_bytes", "higher", "size_threshold", relative=True),
    Figure("peak_rss_bytes", "higher", "memory_threshold", relative=True),
    Figure("accuracy", "lower", "accuracy_threshold", relative=False),
)


@dataclass(frozen=True)
class Change:
    """One figure of one benchmark compared with the baseline run."""

    benchmark: str  # pytest-benchmark's name, e.g. test_inference_latency[smoke-lenet5-r90-torch-dense-b1]
    figure: str
    baseline: float
    current: float
    regressed: bool

    @property
    def change(self) -> str:
        """Point change for accuracy, relative change for the rest (from a zero baseline: the difference)."""
        if self.figure == "accuracy":
            return f"{self.current - self.baseline:+.2f} pts"
        if not self.baseline:
            return f"{self.current - self.baseline:+.6g}"
        return f"{(self.current / self.baseline - 1) * 100:+.1f}%"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the regress subcommand."""
    parser.add_argument("--storage", type=Path, default=Path(".benchmarks"),
                        help="pytest-benchmark file storage (default .benchmarks)")
    parser.add_argument("--latency-threshold", type=float, default=50.0,
                        help="allowed median latency increase, percent (default 50: sub-millisecond medians "
                             "differ by 20-60%% between unchanged runs on a shared machine; tighten it on a "
                             "quiet one)")
    parser.add_argument("--size-threshold", type=float, default=0.1,
                        help="allowed file, gzip and parameter bytes increase, percent (default 0.1: sizes are "
                             "exact; gzip output varies by a few bytes between runs)")
    parser.add_argument("--memory-threshold", type=float, default=10.0,
                        help="allowed peak RSS increase, percent (default 10)")
    parser.add_argument("--accuracy-threshold", type=float, default=0.0,
                        help="allowed accuracy drop, points (default 0: accuracy is deterministic)")
    parser.add_argument("--no-save", action="store_true", help="do not store a passing run as the new baseline")
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER,
                        help="after --: extra pytest arguments for the suite (e.g. --bench-preset quick)")


def newest_saved_run(storage: Path) -> Path | None:
    """The highest-numbered saved run of this machine in pytest-benchmark's storage layout, if any."""
    runs = sorted((storage / get_machine_id()).glob("[0-9][0-9][0-9][0-9]_*.json"))
    return runs[-1] if runs else None


def save_run(storage: Path, run: Path) -> Path:
    """Store `run` as the next numbered file of this machine, as `--benchmark-save=regress` would name it.

    The raw timings of `--benchmark-json` are dropped, as `--benchmark-save` drops them unless
    `--benchmark-save-data` is given; the statistics that compare runs stay.
    """
    latest = newest_saved_run(storage)
    number = int(latest.name[:4]) + 1 if latest else 1
    target = storage / get_machine_id() / f"{number:04d}_regress.json"
    data = json.loads(run.read_text())
    for bench in data["benchmarks"]:
        bench["stats"].pop("data", None)
    write_json(target, data)
    return target


def load_run(path: Path) -> dict[str, dict]:
    """Benchmarks of a pytest-benchmark JSON file by full name."""
    try:
        data = json.loads(path.read_text())
        return {bench["fullname"]: bench for bench in data["benchmarks"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{path}: not a pytest-benchmark JSON run ({exc}); delete it or pick another") from None


def figure_value(bench: dict, figure: str) -> float | None:
    """A figure of one benchmark entry: median from pytest-benchmark's stats, the rest from extra_info."""
    if figure == "median_s":
        return bench["stats"]["median"]
    return bench.get("extra_info", {}).get(figure)


@dataclass(frozen=True)
class Comparison:
    """A run compared with its baseline: every figure of the benchmarks in both, and those only in one."""

    changes: list[Change]
    new: list[str]  # names of benchmarks only in the current run (not regressions)
    missing: list[str]  # names of benchmarks only in the baseline

    @property
    def regressions(self) -> list[Change]:
        """The changes beyond their threshold."""
        return [c for c in self.changes if c.regressed]


def compare_runs(baseline: dict[str, dict], current: dict[str, dict], thresholds: dict[str, float]) -> Comparison:
    """Every figure present in both runs, compared; `thresholds` maps Figure.threshold_option to its limit."""
    changes = []
    for key in sorted(baseline.keys() & current.keys()):
        for fig in FIGURES:
            old, new = figure_value(baseline[key], fig.name), figure_value(current[key], fig.name)
            if old is None or new is None:
                continue
            limit = thresholds[fig.threshold_option]
            allowed = abs(old) * limit / 100 if fig.relative else limit
            delta = new - old if fig.worse == "higher" else old - new
            changes.append(Change(current[key]["name"], fig.name, old, new, regressed=delta > allowed))
    new = [current[key]["name"] for key in sorted(current.keys() - baseline.keys())]
    missing = [baseline[key]["name"] for key in sorted(baseline.keys() - current.keys())]
    return Comparison(changes, new, missing)


def render(comparison: Comparison, baseline: Path, console: Console) -> None:
    """Rich table of the regressions, after a line per new benchmark and one for vanished ones; or "no regression"."""
    console.print(f"compared with {baseline}: {len(comparison.changes)} figures", highlight=False)
    for name in comparison.new:
        console.print(f"[cyan]new:[/] {escape(name)} (not in the baseline; nothing to compare)", highlight=False)
    if comparison.missing:
        console.print(f"[yellow]missing now:[/] {len(comparison.missing)} benchmarks of the baseline, e.g. "
                      f"{escape(comparison.missing[0])} (a run of part of the suite?)", highlight=False)
    bad = comparison.regressions
    if not bad:
        console.print("[green]no regression[/]")
        return
    table = Table(title=f"Regressions against {baseline.name}")
    table.add_column("benchmark", overflow="fold")
    for column in ("figure", "baseline", "now", "change"):
        table.add_column(column, justify="left" if column == "figure" else "right", no_wrap=True)
    for c in bad:
        table.add_row(escape(c.benchmark), c.figure, f"{c.baseline:.6g}", f"{c.current:.6g}", f"[red]{c.change}[/]")
    console.print(table)


def run_suite(pytest_args: list[str], json_path: Path) -> int:
    """Run the timed benchmark suite in a subprocess, writing pytest-benchmark's JSON to `json_path`."""
    if not SUITE.is_dir():
        raise UsageError(f"{SUITE}: no benchmark suite; run `python -m bench regress` from a source checkout")
    command = [sys.executable, "-m", "pytest", str(SUITE), "-q", "--benchmark-enable",
               f"--benchmark-json={json_path}", *pytest_args]
    return subprocess.call(command)


def run_regress(args: argparse.Namespace, console: Console) -> int:
    """Run the suite; compare with the newest saved run; exit 1 on regression, else store it as the baseline."""
    extra = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args
    baseline_path = newest_saved_run(args.storage)
    with tempfile.TemporaryDirectory() as tmp:
        current_path = Path(tmp) / "run.json"
        status = run_suite(extra, current_path)
        if status != 0 or not current_path.is_file():
            console.print(f"[red]benchmark suite failed[/] (pytest exit status {status})")
            return status or EXIT_REGRESSION
        regressed = False
        if baseline_path is None:
            console.print(f"no saved run for {get_machine_id()} under {args.storage}: this run is the first baseline")
        else:
            comparison = compare_runs(load_run(baseline_path), load_run(current_path), vars(args))
            render(comparison, baseline_path, console)
            regressed = bool(comparison.regressions)
        if not regressed and not args.no_save:
            console.print(f"saved as {save_run(args.storage, current_path)}")
    return EXIT_REGRESSION if regressed else 0
