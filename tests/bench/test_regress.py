"""`python -m bench regress`: what counts as a regression, where runs are stored, and a planted one caught."""

import json
import os
import subprocess
import sys
from pathlib import Path

from pytest_benchmark.utils import get_machine_id

from bench.regress import compare_runs, newest_saved_run, save_run

THRESHOLDS = {"latency_threshold": 20.0, "size_threshold": 0.1, "memory_threshold": 10.0,
              "accuracy_threshold": 0.0}
NAME = "test_inference_latency[smoke-lenet5-r90-torch-dense-b1]"
ROOT = Path(__file__).resolve().parents[2]


def entry(name: str = NAME, median: float = 1e-3, **extra_info) -> dict:
    """One benchmark as pytest-benchmark's JSON holds it."""
    figures = {"file_bytes": 1000, "gzip_bytes": 500, "param_bytes": 4000, "peak_rss_bytes": 10**8,
               "accuracy": 98.0, **extra_info}
    return {"name": name, "fullname": f"tests/benchmarks/test_bench_latency.py::{name}",
            "stats": {"median": median}, "extra_info": figures}


def run(*entries: dict) -> dict[str, dict]:
    """Benchmarks by full name, as load_run returns them."""
    return {bench["fullname"]: bench for bench in entries}


def regressed(baseline: dict, current: dict) -> list[tuple[str, str]]:
    return [(c.benchmark, c.figure) for c in compare_runs(run(baseline), run(current), THRESHOLDS).regressions]


def test_median_slower_beyond_the_threshold_is_a_regression():
    assert regressed(entry(median=1.0e-3), entry(median=1.3e-3)) == [(NAME, "median_s")]


def test_median_slower_within_the_threshold_is_not_a_regression():
    assert regressed(entry(median=1.0e-3), entry(median=1.15e-3)) == []


def test_faster_median_is_not_a_regression():
    assert regressed(entry(median=1.0e-3), entry(median=0.5e-3)) == []


def test_bigger_file_is_a_regression():
    assert regressed(entry(file_bytes=1000), entry(file_bytes=1010)) == [(NAME, "file_bytes")]


def test_a_few_gzip_bytes_more_are_within_the_size_threshold():
    assert regressed(entry(gzip_bytes=258003), entry(gzip_bytes=258005)) == []


def test_doubled_parameter_bytes_are_a_regression():
    assert regressed(entry(param_bytes=4000), entry(param_bytes=8000)) == [(NAME, "param_bytes")]


def test_lower_accuracy_is_a_regression():
    assert regressed(entry(accuracy=98.0), entry(accuracy=97.5)) == [(NAME, "accuracy")]


def test_higher_accuracy_is_not_a_regression():
    assert regressed(entry(accuracy=98.0), entry(accuracy=98.5)) == []


def test_figures_unknown_in_either_run_are_not_compared():
    comparison = compare_runs(run(entry(accuracy=None)), run(entry(accuracy=None)), THRESHOLDS)
    assert "accuracy" not in {c.figure for c in comparison.changes}
    assert {c.figure for c in comparison.changes} == {"median_s", "file_bytes", "gzip_bytes", "param_bytes",
                                                      "peak_rss_bytes"}


def test_benchmark_missing_from_the_baseline_is_reported_new_not_a_failure():
    other = "test_inference_latency[smoke-lenet5-r90-torch-sparse-b1]"
    comparison = compare_runs(run(entry()), run(entry(), entry(other, median=9.0)), THRESHOLDS)
    assert comparison.new == [other]
    assert comparison.regressions == []


def test_benchmark_gone_from_the_current_run_is_reported_missing():
    other = "test_inference_latency[smoke-lenet5-r90-torch-sparse-b1]"
    comparison = compare_runs(run(entry(), entry(other)), run(entry()), THRESHOLDS)
    assert comparison.missing == [other]


def test_saved_runs_are_numbered_per_machine_and_the_newest_is_the_baseline(tmp_path):
    source = tmp_path / "run.json"
    source.write_text(json.dumps({"benchmarks": [entry()]}))
    first, second = save_run(tmp_path / "storage", source), save_run(tmp_path / "storage", source)
    assert first == tmp_path / "storage" / get_machine_id() / "0001_regress.json"
    assert second.name == "0002_regress.json"
    assert newest_saved_run(tmp_path / "storage") == second


def test_saved_run_keeps_the_statistics_but_not_the_raw_timings(tmp_path):
    source = tmp_path / "run.json"
    source.write_text(json.dumps({"benchmarks": [{**entry(), "stats": {"median": 1e-3, "data": [1e-3] * 5}}]}))
    saved = json.loads(save_run(tmp_path / "storage", source).read_text())
    assert saved["benchmarks"][0]["stats"] == {"median": 1e-3}


def regress(storage: Path, *suite_args: str) -> subprocess.CompletedProcess:
    """`python -m bench regress` on lenet300_100's latency benchmarks, with a table wide enough for one line a row."""
    command = [sys.executable, "-m", "bench", "regress", "--storage", str(storage), "--latency-threshold", "30",
               "--", "--bench-models", "lenet300_100", "-k", "test_inference_latency",
               "--benchmark-max-time", "0.1", *suite_args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False,
                          timeout=300, env={**os.environ, "COLUMNS": "250"})


def regression_rows(output: str, figure: str) -> list[str]:
    return [line for line in output.splitlines() if "test_inference_latency[" in line and f" {figure} " in line]


def test_planted_masked_path_makes_regress_fail_naming_the_torch_dense_benchmarks(tmp_path):
    storage, out = tmp_path / "storage", tmp_path / "out"
    first = regress(storage, "--bench-out", str(out))
    assert first.returncode == 0, first.stdout + first.stderr
    assert newest_saved_run(storage) is not None

    planted = regress(storage, "--bench-out", str(out), "--bench-plant-masked")

    assert planted.returncode == 1, planted.stdout + planted.stderr
    exact = regression_rows(planted.stdout, "param_bytes")  # masked holds weight_orig and weight_mask: 2x
    assert exact and all("-torch-dense-" in row for row in exact)
    assert newest_saved_run(storage).name == "0001_regress.json"  # a failing run is not saved
