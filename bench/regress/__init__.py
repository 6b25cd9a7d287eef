"""`python -m bench regress`: run the benchmark suite, compare it with the newest saved run of this machine.

Times are compared as paired ratios to a dense reference timed alongside, by a factor and a Mann-Whitney U
test (compare.py); sizes, memory and accuracy, which are exact, against tight thresholds. A run without
regressions becomes the new baseline in pytest-benchmark's numbered file storage (storage.py). Nothing here
imports the dev extra (pytest, pytest-benchmark, scipy) before the subcommand runs, so `python -m bench` works
without it.
"""

from bench.regress.command import add_arguments, run_regress

__all__ = ["add_arguments", "run_regress"]
