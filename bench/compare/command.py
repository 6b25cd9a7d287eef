"""The `compare` subcommand: its arguments, and the run that loads both runs, prints and writes the comparison."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from bench.compare.load import load_run
from bench.compare.match import Threshold, compare
from bench.compare.render import print_comparison, render_markdown
from prune.errors import UsageError
from prune.io import write_bytes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """RUN_A, RUN_B and the options of `python -m bench compare`."""
    parser.add_argument("run_a", type=Path, metavar="RUN_A", help="the old run: a --out directory or a results.json")
    parser.add_argument("run_b", type=Path, metavar="RUN_B", help="the new run: a --out directory or a results.json")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="also write the comparison as markdown")
    parser.add_argument("--only-changed", action="store_true",
                        help="hide the records whose every figure is within the thresholds")
    parser.add_argument("--threshold", type=float, default=Threshold.percent,
                        help="percent a size, memory or latency may move and count as unchanged (default: %(default)s)")
    parser.add_argument("--accuracy-threshold", type=float, default=Threshold.points,
                        help="accuracy points that count as unchanged (default: %(default)s)")


def run_compare(args: argparse.Namespace, console: Console) -> int:
    """Compare RUN_B with RUN_A on the console (and in --markdown FILE); 0, as a difference is no failure."""
    if args.threshold < 0 or args.accuracy_threshold < 0:
        raise UsageError(f"--threshold and --accuracy-threshold must be 0 or more, got {args.threshold:g} and "
                         f"{args.accuracy_threshold:g}")
    comparison = compare(load_run(args.run_a), load_run(args.run_b))
    threshold = Threshold(args.threshold, args.accuracy_threshold) if args.only_changed else None
    print_comparison(comparison, console, threshold)
    if args.markdown:
        write_bytes(args.markdown, render_markdown(comparison, threshold).encode())
        console.print(f"wrote {args.markdown}", highlight=False)
    return 0
