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
from rich.table import Table

from prune.errors import ArtifactError

EXIT_REGRESSION = 1
SUITE = "tests/benchmarks"


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
    Figure("peak_rss_bytes", "higher", "memory_threshold", relative=True),
    Figure("accuracy", "lower", "accuracy_threshold", relative=False),
)


@dataclass(frozen=True)
class Change:
    """One figure of one benchmark compared with the baseline run."""

    benchmark: str
    figure: str
    baseline: float
    current: float
    regressed: bool

    @property
    def change(self) -> str:
        """Relative change for ratios, point change for accuracy."""
        if self.figure == "accuracy":
            return f"{self.current - self.baseline:+.2f} pts"
        return f"{(self.current / self.baseline - 1) * 100:+.1f}%" if self.baseline else "new"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the regress subcommand."""
    parser.add_argument("--storage", type=Path, default=Path(".benchmarks"),
                        help="pytest-benchmark file storage (default .benchmarks)")
    parser.add_argument("--latency-threshold", type=float, default=20.0,
                        help="allowed median latency increase, percent (default 20)")
    parser.add_argument("--size-threshold", type=float, default=0.1,
                        help="allowed file/gzip size increase, percent (default 0.1: sizes are exact)")
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
    """Store `run` as the next numbered file of this machine, as `--benchmark-autosave` names them."""
    folder = storage / get_machine_id()
    folder.mkdir(parents=True, exist_ok=True)
    latest = newest_saved_run(storage)
    number = int(latest.name[:4]) + 1 if latest else 1
    target = folder / f"{number:04d}_regress.json"
    target.write_bytes(run.read_bytes())
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


def compare_runs(baseline: dict[str, dict], current: dict[str, dict], thresholds: dict[str, float]) -> list[Change]:
    """Every figure present in both runs, compared; `thresholds` maps Figure.threshold_option to its limit."""
    changes = []
    for name in sorted(baseline.keys() & current.keys()):
        for fig in FIGURES:
            old, new = figure_value(baseline[name], fig.name), figure_value(current[name], fig.name)
            if old is None or new is None:
                continue
            limit = thresholds[fig.threshold_option]
            allowed = abs(old) * limit / 100 if fig.relative else limit
            delta = new - old if fig.worse == "higher" else old - new
            changes.append(Change(name, fig.name, old, new, regressed=delta > allowed))
    return changes


def render(changes: list[Change], missing: list[str], baseline: Path, console: Console) -> None:
    """Rich table of the regressions (and benchmarks that disappeared), or one line saying there are none."""
    bad = [c for c in changes if c.regressed]
    for name in missing:
        console.print(f"[yellow]missing now:[/] {name} (in {baseline.name}, not in this run)")
    if not bad:
        console.print(f"[green]no regression[/] against {baseline} ({len(changes)} figures compared)")
        return
    table = Table(title=f"Regressions against {baseline}")
    for column in ("benchmark", "figure", "baseline", "now", "change"):
        table.add_column(column, justify="left" if column in ("benchmark", "figure") else "right")
    for c in bad:
        table.add_row(c.benchmark, c.figure, f"{c.baseline:.6g}", f"{c.current:.6g}", f"[red]{c.change}[/]")
    console.print(table)


def run_suite(pytest_args: list[str], json_path: Path) -> int:
    """Run the timed benchmark suite in a subprocess, writing pytest-benchmark's JSON to `json_path`."""
    command = [sys.executable, "-m", "pytest", SUITE, "-q", "--benchmark-enable", f"--benchmark-json={json_path}",
               *pytest_args]
    return subprocess.call(command)


def run_regress(args: argparse.Namespace, console: Console) -> int:
    """Run the suite; compare with the newest saved run; exit 1 on regression, else store it as the baseline."""
    extra = [a for a in args.pytest_args if a != "--"]
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
            baseline, current = load_run(baseline_path), load_run(current_path)
            changes = compare_runs(baseline, current, vars(args))
            missing = sorted(baseline.keys() - current.keys())
            render(changes, missing, baseline_path, console)
            regressed = any(c.regressed for c in changes)
        if not regressed and not args.no_save:
            console.print(f"saved as {save_run(args.storage, current_path)}")
    return EXIT_REGRESSION if regressed else 0
