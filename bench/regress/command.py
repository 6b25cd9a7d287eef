"""The regress subcommand: its options, running the suite, and one line per changed figure."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from bench.regress.compare import TIME, Change, Comparison, Thresholds, compare_runs
from bench.regress.storage import check_dev_extra, load_run, machine_id, newest_saved_run, save_run
from prune.errors import UsageError

EXIT_REGRESSION = 1
SUITE = Path(__file__).resolve().parents[2] / "tests" / "benchmarks"  # the source checkout's suite


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the regress subcommand."""
    parser.add_argument("--storage", type=Path, default=Path(".benchmarks"),
                        help="pytest-benchmark file storage (default .benchmarks)")
    parser.add_argument("--latency-threshold", type=float, default=25.0,
                        help="allowed growth of a latency's ratio to its dense reference, percent "
                             "(default 25)")
    parser.add_argument("--io-threshold", type=float, default=150.0,
                        help="allowed growth of an export or load time's ratio to its reference, percent "
                             "(default 150: file writes and reads varied up to 2.3x between unchanged runs)")
    parser.add_argument("--p-value", type=float, default=0.002,
                        help="a time changed only when a Mann-Whitney U test on the paired ratios of the two "
                             "runs gives p below this (default 0.002, as asv)")
    parser.add_argument("--size-threshold", type=float, default=0.1,
                        help="allowed file, gzip and parameter bytes increase, percent (default 0.1: sizes "
                             "are exact; gzip output varies by a few bytes between runs)")
    parser.add_argument("--memory-threshold", type=float, default=10.0,
                        help="allowed peak RSS increase, percent (default 10)")
    parser.add_argument("--accuracy-threshold", type=float, default=0.0,
                        help="allowed accuracy drop, points (default 0: accuracy is deterministic)")
    parser.add_argument("--no-save", action="store_true",
                        help="do not store a passing run as the new baseline")
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER,
                        help="after --: extra pytest arguments for the suite (e.g. --bench-preset quick)")


def describe(change: Change) -> str:
    """One line of a changed figure, the benchmark's full name first (never cut: grep it, paste it to -k)."""
    if change.figure == TIME:
        values = f"ratio to reference {change.baseline:.3g} -> {change.current:.3g}"
    else:
        values = f"{change.baseline:.6g} -> {change.current:.6g}"
    return f"{escape(change.benchmark)} {change.figure}: {values} ({change.change})"


def render(comparison: Comparison, baseline: Path, console: Console) -> None:
    """What was compared, the new and vanished benchmarks, then a line per figure that got worse or better."""
    lines = [f"compared with {escape(str(baseline))}: {len(comparison.changes)} figures"]
    lines += [f"[cyan]new:[/] {escape(name)} (not in the baseline; nothing to compare)"
              for name in comparison.new]
    if comparison.missing:
        lines.append(f"[yellow]missing now:[/] {len(comparison.missing)} benchmarks of the baseline, e.g. "
                     f"{escape(comparison.missing[0])} (a run of part of the suite?)")
    lines += [f"[yellow]layers re-chosen:[/] {escape(name)} (its dense-or-CSR pick is timed; time and "
              "param_bytes not compared)" for name in comparison.rechosen]
    lines += [f"[green]better:[/] {describe(change)}" for change in comparison.improvements]
    lines += [f"[red]REGRESSION:[/] {describe(change)}" for change in comparison.regressions]
    if not comparison.regressions:
        lines.append("[green]no regression[/]")
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)


def run_suite(pytest_args: list[str], json_path: Path) -> int:
    """Run the timed benchmark suite in a subprocess, writing pytest-benchmark's JSON to `json_path`."""
    if not SUITE.is_dir():
        raise UsageError(f"{SUITE}: no benchmark suite; run `python -m bench regress` from a source checkout")
    command = [sys.executable, "-m", "pytest", str(SUITE), "-q", "--benchmark-enable",
               f"--benchmark-json={json_path}", *pytest_args]
    return subprocess.call(command)


def run_regress(args: argparse.Namespace, console: Console) -> int:
    """Run the suite and compare it with the newest saved run: 1 on regression, else save it as baseline."""
    check_dev_extra()
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
            console.print(f"no saved run for {machine_id()} under {args.storage}: this run is the first "
                          "baseline", soft_wrap=True)
        else:
            limits = Thresholds.from_args(args)
            comparison = compare_runs(load_run(baseline_path), load_run(current_path), limits)
            render(comparison, baseline_path, console)
            regressed = bool(comparison.regressions)
        if not regressed and not args.no_save:
            console.print(f"saved as {save_run(args.storage, current_path)}")
    return EXIT_REGRESSION if regressed else 0
