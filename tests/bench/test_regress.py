"""`python -m bench regress`: what counts as a regression, where runs are stored, and a planted one caught."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_benchmark.utils import get_machine_id

from bench.cli import main
from bench.regress import command
from bench.regress.compare import TIME, Thresholds, compare_runs
from bench.regress.confirm import confirm_times
from bench.regress.storage import load_run, newest_saved_run, save_run

LIMITS = Thresholds(latency=25.0, io=50.0, p_value=0.002, size=0.1, memory=10.0, accuracy=0.0)
NAME = "test_inference_latency[smoke-lenet5-r90-torch-dense-b1]"
EXPORT = "test_export_time[smoke-lenet5-r90-packed]"
ROOT = Path(__file__).resolve().parents[2]


def tight(center: float, n: int = 20) -> list[float]:
    """`n` paired ratios within +-1% of `center`, as a quiet block-paired timing gives them."""
    return [center * (0.99 + 0.02 * i / (n - 1)) for i in range(n)]


def entry(name: str = NAME, ratios: list[float] | None = None, median: float = 1e-3, **extra_info) -> dict:
    """One benchmark as the suite's pytest-benchmark JSON holds it: stats with raw data, figures, ratios."""
    latency = name.startswith("test_inference_latency")
    figures = {"runtime": "torch-dense" if latency else None, "file_bytes": 1000, "gzip_bytes": 500,
               "param_bytes": 4000 if latency else None, "peak_rss_bytes": 10**8 if latency else None,
               "accuracy": 98.0, "reference": "smoke-lenet5-r0-torch-dense-b1",
               "paired_ratios": tight(1.0) if ratios is None else ratios, **extra_info}
    return {"name": name, "fullname": f"tests/benchmarks/test_bench.py::{name}",
            "stats": {"median": median, "data": [median] * 5}, "extra_info": figures}


def run(*entries: dict) -> dict[str, dict]:
    """Benchmarks by full name, as load_run returns them."""
    return {bench["fullname"]: bench for bench in entries}


def regressed(baseline: dict, current: dict) -> list[tuple[str, str]]:
    return [(c.benchmark, c.figure) for c in compare_runs(run(baseline), run(current), LIMITS).regressions]


def test_ratio_1_3x_higher_with_tight_samples_is_a_time_regression():
    assert regressed(entry(ratios=tight(1.0)), entry(ratios=tight(1.3))) == [(NAME, TIME)]


def test_time_regression_reports_the_factor_the_p_value_and_both_paired_ratios():
    [change] = compare_runs(run(entry(ratios=tight(1.0))), run(entry(ratios=tight(1.3))), LIMITS).regressions
    assert (round(change.baseline, 3), round(change.current, 3)) == (1.0, 1.3)
    assert change.p_value < 1e-6
    assert change.change == f"x1.30, p={change.p_value:.1g}"


def test_significant_change_within_the_factor_is_not_a_regression():
    assert regressed(entry(ratios=tight(1.0)), entry(ratios=tight(1.2))) == []


def test_change_beyond_the_factor_within_the_noise_is_not_a_regression():
    noisy = [0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.2]
    assert regressed(entry(ratios=noisy), entry(ratios=[r * 1.3 for r in noisy])) == []


def test_three_ratios_a_side_can_never_reach_the_p_value():
    assert regressed(entry(ratios=[1.0, 1.0, 1.0]), entry(ratios=[3.0, 3.0, 3.0])) == []


def test_uniformly_slower_machine_flags_nothing():
    names = [NAME, NAME.replace("torch-dense", "torch-sparse"), EXPORT]
    baseline = run(*(entry(name, tight(0.8 + i / 10)) for i, name in enumerate(names)))
    slower = run(*(entry(name, tight(0.8 + i / 10)[::-1], median=1.4e-3) for i, name in enumerate(names)))
    assert compare_runs(baseline, slower, LIMITS).regressions == []


def test_one_benchmark_slower_among_unchanged_ones_is_the_one_flagged():
    other = NAME.replace("torch-dense", "torch-sparse")
    baseline = run(entry(NAME, tight(1.0)), entry(other, tight(0.7)))
    current = run(entry(NAME, tight(1.0)), entry(other, tight(0.7 * 1.3)))
    regressions = compare_runs(baseline, current, LIMITS).regressions
    assert [(c.benchmark, c.figure) for c in regressions] == [(other, TIME)]


def test_lower_ratio_beyond_the_factor_is_reported_better_not_a_regression():
    comparison = compare_runs(run(entry(ratios=tight(1.0))), run(entry(ratios=tight(0.5))), LIMITS)
    assert comparison.regressions == []
    assert [(c.benchmark, c.figure) for c in comparison.improvements] == [(NAME, TIME)]


def test_export_and_load_times_are_held_to_the_io_threshold():
    assert regressed(entry(EXPORT, tight(1.0)), entry(EXPORT, tight(1.4))) == []
    assert regressed(entry(EXPORT, tight(1.0)), entry(EXPORT, tight(1.6))) == [(EXPORT, TIME)]


def test_baseline_without_paired_ratios_is_not_compared_on_time():
    old = entry()
    del old["extra_info"]["paired_ratios"]
    comparison = compare_runs(run(old), run(entry(ratios=tight(5.0))), LIMITS)
    assert TIME not in {c.figure for c in comparison.changes}


def test_torch_auto_picking_other_layers_is_listed_and_not_compared_on_time_or_parameter_bytes():
    auto = NAME.replace("torch-dense", "torch-auto")
    baseline = entry(auto, tight(0.5), runtime="torch-auto", param_bytes=300_000)
    current = entry(auto, tight(1.0), runtime="torch-auto", param_bytes=1_000_000)
    comparison = compare_runs(run(baseline), run(current), LIMITS)
    assert comparison.rechosen == [auto]
    assert comparison.regressions == []
    assert {c.figure for c in comparison.changes} == {"file_bytes", "gzip_bytes", "peak_rss_bytes",
                                                      "accuracy"}


def test_torch_auto_with_the_same_pick_is_compared_on_time():
    auto = NAME.replace("torch-dense", "torch-auto")
    baseline, current = (entry(auto, tight(ratio), runtime="torch-auto") for ratio in (0.5, 1.0))
    assert regressed(baseline, current) == [(auto, TIME)]


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
    comparison = compare_runs(run(entry(accuracy=None)), run(entry(accuracy=None)), LIMITS)
    assert {c.figure for c in comparison.changes} == {TIME, "file_bytes", "gzip_bytes", "param_bytes",
                                                      "peak_rss_bytes"}


def test_benchmark_missing_from_the_baseline_is_reported_new_not_a_failure():
    other = "test_inference_latency[smoke-lenet5-r90-torch-sparse-b1]"
    comparison = compare_runs(run(entry()), run(entry(), entry(other, tight(9.0))), LIMITS)
    assert comparison.new == [other]
    assert comparison.regressions == []


def test_benchmark_gone_from_the_current_run_is_reported_missing():
    other = "test_inference_latency[smoke-lenet5-r90-torch-sparse-b1]"
    comparison = compare_runs(run(entry(), entry(other)), run(entry()), LIMITS)
    assert comparison.missing == [other]


def test_saved_runs_are_numbered_per_machine_and_the_newest_is_the_baseline(tmp_path):
    source = tmp_path / "run.json"
    source.write_text(json.dumps({"benchmarks": [entry()]}))
    first, second = save_run(tmp_path / "storage", source), save_run(tmp_path / "storage", source)
    assert first == tmp_path / "storage" / get_machine_id() / "0001_regress.json"
    assert second.name == "0002_regress.json"
    assert newest_saved_run(tmp_path / "storage") == second


def test_saved_run_keeps_the_raw_timings_and_the_paired_ratios(tmp_path):
    source = tmp_path / "run.json"
    source.write_text(json.dumps({"benchmarks": [entry()]}))
    saved = json.loads(save_run(tmp_path / "storage", source).read_text())
    assert saved["benchmarks"][0]["stats"]["data"] == [1e-3] * 5
    assert saved["benchmarks"][0]["extra_info"]["paired_ratios"] == tight(1.0)


@pytest.mark.parametrize("module", ["pytest_benchmark", "scipy"])
def test_regress_without_the_dev_extra_is_one_line_naming_the_install(module, monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, module, None)  # what an import finds when the package is not installed
    assert main(["regress", "--storage", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert module.replace("_", "-") in err and 'pip install -e ".[dev]"' in err


def test_cli_parser_builds_without_the_dev_extra():
    blocked = "; ".join(f"sys.modules[{name!r}] = None" for name in ("pytest", "pytest_benchmark", "scipy"))
    code = f"import sys; {blocked}; import bench.cli; bench.cli.build_parser().parse_args(['regress'])"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr


class FakeSuite:
    """Stands in for run_suite: each call writes the next run's benchmarks (only those asked for by node id)."""

    def __init__(self, *runs: list[dict], statuses: tuple[int, ...] = ()) -> None:
        self.runs, self.statuses = list(runs), list(statuses)
        self.calls: list[tuple[list[str], list[str] | None]] = []  # (pytest args, node ids) per call

    def __call__(self, pytest_args: list[str], json_path: Path, node_ids: list[str] | None = None) -> int:
        self.calls.append((pytest_args, node_ids))
        benchmarks = [bench for bench in self.runs.pop(0) if node_ids is None or bench["fullname"] in node_ids]
        json_path.write_text(json.dumps({"benchmarks": benchmarks}))
        return self.statuses.pop(0) if self.statuses else 0


OTHER = NAME.replace("torch-dense", "torch-sparse")


def fullname(name: str) -> str:
    return entry(name)["fullname"]


def regress_with_fake_suite(tmp_path: Path, monkeypatch, suite: FakeSuite, *options: str) -> int:
    """`python -m bench regress` against a saved baseline of NAME and OTHER at ratio 1.0, the suite faked."""
    storage, baseline = tmp_path / "storage", tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"benchmarks": [entry(NAME, tight(1.0)), entry(OTHER, tight(1.0))]}))
    save_run(storage, baseline)
    monkeypatch.setattr(command, "run_suite", suite)
    return main(["regress", "--storage", str(storage), *options, "--", "--bench-out", "built"])


def slower(factor: float, *names: str) -> list[dict]:
    """A run in which `names` have their ratio multiplied by `factor` and the others are unchanged."""
    return [entry(name, tight(factor if name in names else 1.0)) for name in (NAME, OTHER)]


def printed(capsys, prefix: str) -> list[str]:
    return [line for line in capsys.readouterr().out.splitlines() if line.startswith(prefix)]


def test_time_flag_reproduced_in_every_confirmation_is_a_regression(tmp_path, monkeypatch, capsys):
    suite = FakeSuite(slower(1.5, NAME), slower(1.6, NAME), slower(1.4, NAME))
    assert regress_with_fake_suite(tmp_path, monkeypatch, suite) == 1
    [line] = printed(capsys, "REGRESSION: ")
    assert line.startswith(f"REGRESSION: {NAME} time: ratio to reference 1 -> 1.5 (x1.50, p=")
    assert "; confirmations: 1.6 (x1.60, p=" in line and ", 1.4 (x1.40, p=" in line
    assert newest_saved_run(tmp_path / "storage").name == "0001_regress.json"  # a failing run is not saved


def test_time_flag_not_reproduced_in_one_confirmation_is_not_a_regression(tmp_path, monkeypatch, capsys):
    suite = FakeSuite(slower(1.5, NAME), slower(1.5, NAME), slower(1.0))
    assert regress_with_fake_suite(tmp_path, monkeypatch, suite) == 0
    out = capsys.readouterr().out
    assert "REGRESSION" not in out
    [line] = [line for line in out.splitlines() if line.startswith("not reproduced: ")]
    assert line.startswith(f"not reproduced: {NAME} time: ratio to reference 1 -> 1.5 (x1.50")
    assert "; confirmations: 1.5 (x1.50, p=" in line and ", 1 (x1.00, p=" in line


def test_run_whose_flags_did_not_reproduce_saves_its_first_run_as_the_baseline(tmp_path, monkeypatch):
    suite = FakeSuite(slower(1.5, NAME), slower(1.0), slower(1.0))
    assert regress_with_fake_suite(tmp_path, monkeypatch, suite) == 0
    saved = load_run(newest_saved_run(tmp_path / "storage"))
    assert saved.keys() == {fullname(NAME), fullname(OTHER)}
    assert saved[fullname(NAME)]["extra_info"]["paired_ratios"] == tight(1.5)


def test_confirm_0_fails_on_the_first_runs_time_flag_without_re_running(tmp_path, monkeypatch, capsys):
    suite = FakeSuite(slower(1.5, NAME))
    assert regress_with_fake_suite(tmp_path, monkeypatch, suite, "--confirm", "0") == 1
    assert len(suite.calls) == 1
    [line] = printed(capsys, "REGRESSION: ")
    assert line.startswith(f"REGRESSION: {NAME} time: ") and "confirmations" not in line


def test_confirmations_run_only_the_flagged_node_ids_with_the_same_pytest_args(tmp_path, monkeypatch):
    suite = FakeSuite(slower(1.5, NAME), slower(1.5, NAME), slower(1.5, NAME))
    regress_with_fake_suite(tmp_path, monkeypatch, suite, "--confirm", "2")
    assert suite.calls == [(["--bench-out", "built"], None)] + [(["--bench-out", "built"], [fullname(NAME)])] * 2


def test_a_flag_that_did_not_reproduce_is_not_run_again(tmp_path, monkeypatch):
    suite = FakeSuite(slower(1.5, NAME, OTHER), slower(1.5, NAME, OTHER), slower(1.5, NAME, OTHER))
    suite.runs[1] = slower(1.5, OTHER)
    regress_with_fake_suite(tmp_path, monkeypatch, suite, "--confirm", "2")
    assert [node_ids for _, node_ids in suite.calls[1:]] == [[fullname(NAME), fullname(OTHER)],
                                                             [fullname(OTHER)]]


def test_exact_figure_regression_fails_without_re_running(tmp_path, monkeypatch, capsys):
    suite = FakeSuite([entry(NAME, tight(1.0), file_bytes=2000), entry(OTHER, tight(1.0))])
    assert regress_with_fake_suite(tmp_path, monkeypatch, suite) == 1
    assert len(suite.calls) == 1
    assert [line.split()[1:3] for line in printed(capsys, "REGRESSION: ")] == [[NAME, "file_bytes:"]]


def test_failed_confirmation_run_exits_with_pytests_status(tmp_path, monkeypatch, capsys):
    suite = FakeSuite(slower(1.5, NAME), slower(1.5, NAME), statuses=(0, 3))
    assert regress_with_fake_suite(tmp_path, monkeypatch, suite) == 3
    assert "benchmark suite failed (pytest exit status 3)" in capsys.readouterr().out


def test_negative_confirm_is_a_usage_error(tmp_path, monkeypatch, capsys):
    assert regress_with_fake_suite(tmp_path, monkeypatch, FakeSuite(), "--confirm", "-1") == 2
    assert "--confirm -1" in capsys.readouterr().err


def test_benchmark_absent_from_a_confirmation_run_is_not_confirmed():
    [flag] = compare_runs(run(entry(ratios=tight(1.0))), run(entry(ratios=tight(1.5))), LIMITS).regressions
    [confirmation] = confirm_times([flag], run(entry(ratios=tight(1.0))), lambda node_ids: {}, 2, LIMITS)
    assert confirmation.reruns == [None]
    assert not confirmation.confirmed


def regress(storage: Path, *suite_args: str) -> subprocess.CompletedProcess:
    """`python -m bench regress` on lenet300_100's latency benchmarks, printed at 80 columns."""
    command = [sys.executable, "-m", "bench", "regress", "--storage", str(storage),
               "--", "--bench-models", "lenet300_100", "-k", "test_inference_latency",
               "--benchmark-max-time", "0.1", *suite_args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False,
                          timeout=600, env={**os.environ, "COLUMNS": "80"})


def regression_lines(output: str, figure: str) -> list[str]:
    return [line for line in output.splitlines()
            if line.startswith("REGRESSION: ") and f" {figure}: " in line]


@pytest.mark.slow
def test_planted_masked_path_makes_regress_fail_naming_the_torch_dense_benchmarks(tmp_path):
    storage, out = tmp_path / "storage", tmp_path / "out"
    first = regress(storage, "--bench-out", str(out))
    assert first.returncode == 0, first.stdout + first.stderr
    assert newest_saved_run(storage) is not None

    planted = regress(storage, "--bench-out", str(out), "--bench-plant-masked")

    assert planted.returncode == 1, planted.stdout + planted.stderr
    exact = regression_lines(planted.stdout, "param_bytes")  # masked holds weight_orig, weight_mask and weight: 3x
    names = {line.split()[1] for line in exact}
    assert names == {f"test_inference_latency[smoke-lenet300_100-r{ratio}-torch-dense-b{batch}]"
                     for ratio in (0, 90) for batch in (1, 8)}
    assert newest_saved_run(storage).name == "0001_regress.json"  # a failing run is not saved


TINY_SOURCE = '''from torch import nn


def build():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 16),
                         nn.ReLU(), nn.Linear(16, 3))
'''


@pytest.mark.slow
def test_regress_builds_and_benchmarks_a_model_source_under_its_directory_name(tmp_path):
    (tmp_path / "tiny.py").write_text(TINY_SOURCE)
    storage = tmp_path / "storage"
    command = [sys.executable, "-m", "bench", "regress", "--storage", str(storage), "--",
               "--bench-models", "tiny.py:build", "--bench-input-shape", "1,8,8", "--bench-out", "built",
               "-k", "test_load_time and r90-packed or test_inference_latency and r90-torch-sparse-b1",
               "--benchmark-max-time", "0.01"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False, timeout=600,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stdout + result.stderr
    saved = load_run(newest_saved_run(storage))
    by_name = {bench["name"]: bench["extra_info"] for bench in saved.values()}
    assert set(by_name) == {"test_load_time[smoke-tiny.py-build-r90-packed]",
                            "test_inference_latency[smoke-tiny.py-build-r90-torch-sparse-b1]"}
    assert {info["model"] for info in by_name.values()} == {"tiny.py:build"}
    assert all(info["accuracy"] is None for info in by_name.values())  # no --data: every other figure
    assert (tmp_path / "built" / "artifacts" / "tiny.py-build" / "r90" / "manifest.json").is_file()


def test_a_model_source_without_bench_input_shape_is_one_usage_line(tmp_path):
    (tmp_path / "tiny.py").write_text(TINY_SOURCE)
    command = [sys.executable, "-m", "pytest", str(ROOT / "tests" / "benchmarks"), "--collect-only", "-q",
               "-p", "no:cacheprovider", "--rootdir", str(ROOT), "--bench-models", "tiny.py:build"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 4, result.stdout + result.stderr
    assert ("ERROR: --bench-models tiny.py:build: a model source needs --bench-input-shape C,H,W"
            in result.stderr)
