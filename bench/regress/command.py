"""The regress subcommand: its options, running the suite, confirming time flags, one line per changed figure."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from bench.regress.compare import TIME, Change, Comparison, Thresholds, compare_runs
from bench.regress.confirm import Confirmation, confirm_times
from bench.regress.storage import check_dev_extra, load_run, machine_id, newest_saved_run, save_run
from prune.errors import UsageError

EXIT_REGRESSION = 1
ROOT = Path(__file__).resolve().parents[2]  # the source checkout: pytest's rootdir, which node ids are relative to
SUITE = ROOT / "tests" / "benchmarks"


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
    parser.add_argument("--confirm", type=int, default=2, metavar="N",
                        help="re-run the benchmarks flagged on time N times in fresh processes; a time "
                             "regression stands only when every run flags it again (default 2; 0: no "
                             "re-runs, a first-run flag fails)")
    parser.add_argument("--no-save", action="store_true",
                        help="do not store a passing run as the new baseline")
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER,
                        help="after --: extra pytest arguments for the suite (e.g. --bench-preset quick)")


class SuiteFailed(Exception):
    """The benchmark suite exited non-zero or wrote no JSON: `bench regress` exits with pytest's status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"pytest exit status {status}")
        self.status = status


def describe(change: Change) -> str:
    """One line of a changed figure, the benchmark's full name first (never cut: grep it, paste it to -k)."""
    if change.figure == TIME:
        values = f"ratio to reference {change.baseline:.3g} -> {change.current:.3g}"
    else:
        values = f"{change.baseline:.6g} -> {change.current:.6g}"
    return f"{escape(change.benchmark)} {change.figure}: {values} ({change.change})"


def describe_confirmation(confirmation: Confirmation) -> str:
    """A time regression's line followed by its ratio, factor and p-value in each confirmation run."""
    line = describe(confirmation.first)
    if not confirmation.wanted:
        return line
    reruns = [f"{c.current:.3g} ({c.change})" if c else "not compared" for c in confirmation.reruns]
    return f"{line}; confirmations: {', '.join(reruns)}"


def render(comparison: Comparison, confirmations: list[Confirmation], baseline: Path, console: Console) -> None:
    """What was compared, new and vanished benchmarks, then a line per figure that got worse or better."""
    lines = [f"compared with {escape(str(baseline))}: {len(comparison.changes)} figures"]
    lines += [f"[cyan]new:[/] {escape(name)} (not in the baseline; nothing to compare)"
              for name in comparison.new]
    if comparison.missing:
        lines.append(f"[yellow]missing now:[/] {len(comparison.missing)} benchmarks of the baseline, e.g. "
                     f"{escape(comparison.missing[0])} (a run of part of the suite?)")
    lines += [f"[yellow]layers re-chosen:[/] {escape(name)} (its dense-or-CSR pick is timed; time and "
              "param_bytes not compared)" for name in comparison.rechosen]
    lines += [f"[green]better:[/] {describe(change)}" for change in comparison.improvements]
    lines += [f"[yellow]not reproduced:[/] {describe_confirmation(c)}" for c in confirmations if not c.confirmed]
    lines += [f"[red]REGRESSION:[/] {describe(change)}" for change in comparison.exact_regressions]
    lines += [f"[red]REGRESSION:[/] {describe_confirmation(c)}" for c in confirmations if c.confirmed]
    if not regressions(comparison, confirmations):
        lines.append("[green]no regression[/]")
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)


def regressions(comparison: Comparison, confirmations: list[Confirmation]) -> list[Change]:
    """What fails the run: every exact-figure regression and the time regressions that every re-run confirmed."""
    return comparison.exact_regressions + [c.first for c in confirmations if c.confirmed]


def run_suite(pytest_args: list[str], json_path: Path, node_ids: list[str] | None = None) -> int:
    """Run the timed suite (or only `node_ids`) in a fresh process, writing pytest-benchmark's JSON."""
    if not SUITE.is_dir():
        raise UsageError(f"{SUITE}: no benchmark suite; run `python -m bench regress` from a source checkout")
    targets = [str(SUITE)] if node_ids is None else [f"{ROOT}/{node_id}" for node_id in node_ids]
    command = [sys.executable, "-m", "pytest", *targets, "-q", "--benchmark-enable",
               f"--benchmark-json={json_path}", *pytest_args]
    return subprocess.call(command)


def timed_run(pytest_args: list[str], workdir: Path, node_ids: list[str] | None = None) -> Path:
    """A suite run's JSON file in a fresh folder of `workdir`; SuiteFailed when pytest failed."""
    json_path = Path(tempfile.mkdtemp(dir=workdir)) / "run.json"
    status = run_suite(pytest_args, json_path, node_ids)
    if status != 0 or not json_path.is_file():
        raise SuiteFailed(status)
    return json_path


def compare_confirmed(args: argparse.Namespace, extra: list[str], baseline_path: Path, current_path: Path,
                      workdir: Path, console: Console) -> bool:
    """Compare the run with the baseline, re-run its time flags --confirm times; True on a regression."""
    limits, baseline = Thresholds.from_args(args), load_run(baseline_path)
    comparison = compare_runs(baseline, load_run(current_path), limits)
    flags = comparison.time_regressions
    if flags and args.confirm:
        console.print(f"{len(flags)} time regressions flagged: re-running them {args.confirm} times in fresh "
                      "processes to confirm", soft_wrap=True)

    def rerun(node_ids: list[str]) -> dict[str, dict]:
        return load_run(timed_run(extra, workdir, node_ids))

    confirmations = confirm_times(flags, baseline, rerun, args.confirm, limits)
    render(comparison, confirmations, baseline_path, console)
    return bool(regressions(comparison, confirmations))


def run_regress(args: argparse.Namespace, console: Console) -> int:
    """Run the suite, compare it with the newest saved run: 1 on regression, else save the run as baseline.

    The first run is saved, not a confirmation run: it alone holds every benchmark, as pytest-benchmark wrote it.
    """
    check_dev_extra()
    if args.confirm < 0:
        raise UsageError(f"--confirm {args.confirm}: give the number of confirmation runs, 0 or more")
    extra = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args
    baseline_path = newest_saved_run(args.storage)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            current_path = timed_run(extra, Path(tmp))
            regressed = baseline_path is not None and compare_confirmed(args, extra, baseline_path,
                                                                        current_path, Path(tmp), console)
        except SuiteFailed as failed:
            console.print(f"[red]benchmark suite failed[/] ({failed})")
            return failed.status or EXIT_REGRESSION
        if baseline_path is None:
            console.print(f"no saved run for {machine_id()} under {args.storage}: this run is the first "
                          "baseline", soft_wrap=True)
        if not regressed and not args.no_save:
            console.print(f"saved as {save_run(args.storage, current_path)}")
    return EXIT_REGRESSION if regressed else 0
