"""`python -m bench compare RUN_A RUN_B`: records matched across runs and schema versions, the changes, the
records of one run only, the environment first, and each bad input as one line with exit status 2."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from report_fixtures import make_record, set_latency, study_records, write_results
from rich.console import Console

from bench.cli import main
from bench.compare.load import load_run
from bench.compare.match import Threshold, compare
from bench.compare.render import change_text, model_rows, print_comparison
from bench.records import Record, attach_ratios_to_dense

STUDY_KEY = ("lenet5", "l1-unstructured", "none", 50.0, "torch-auto")


def write_run(directory: Path, records: list[Record], environment: dict | None = None,
              schema_version: int | None = None) -> Path:
    """A run directory with a results.json of `records`; an older schema drops the fields it did not have."""
    directory.mkdir()
    attach_ratios_to_dense(records)
    path = write_results(directory, records)
    data = json.loads(path.read_text())
    data["environment"].update(environment or {})
    if schema_version is not None and schema_version < 4:
        data["schema_version"] = schema_version
        for item in data["records"] + data["artifacts"]:
            for name in ("method", "recovery", "macs"):
                item.pop(name, None)
    path.write_text(json.dumps(data))
    return directory


def changed_records() -> list[Record]:
    """The study records with lenet5 at 50% on torch-auto 1.5x slower at batch 1 and 0.5 points less accurate."""
    records = study_records()
    record = next(r for r in records if r.key == STUDY_KEY)
    set_latency(record, "1", record.p50_ms(1) * 1.5)
    record.accuracy -= 0.5
    return records


def cells(comparison, key=STUDY_KEY) -> dict[str, str]:
    """Header -> cell text of the row of `key`."""
    item = next(d for d in comparison.deltas[key[0]] if d.new.key == key)
    return {c.header: change_text(c) for c in item.changes}


@pytest.fixture
def runs(tmp_path):
    """Run A (the study records) and run B (one record changed), as run directories."""
    return write_run(tmp_path / "a", study_records()), write_run(tmp_path / "b", changed_records())


def test_records_match_by_model_variant_ratio_and_runtime(runs):
    comparison = compare(load_run(runs[0]), load_run(runs[1]))
    assert [len(deltas) for deltas in comparison.deltas.values()] == [12, 12]
    assert not comparison.only_old and not comparison.only_new
    unchanged = cells(comparison, ("lenet5", "l1-unstructured", "none", 50.0, "torch-dense"))
    assert set(unchanged.values()) == {"="}


def test_each_change_is_the_new_over_old_ratio_and_accuracy_the_difference_in_points(runs):
    changes = cells(compare(load_run(runs[0]), load_run(runs[1])))
    assert changes == {"file": "=", "params": "=", "peak RSS": "=", "p50 b1": "~x1.5", "p50 b64": "=",
                       "acc": "-0.50pt"}


def test_latency_is_the_ratio_of_paired_ratios_where_both_runs_timed_the_dense_pair(tmp_path):
    old, new = study_records(), study_records()
    for records, scale in ((old, 1.0), (new, 2.0)):  # B is a machine twice as slow: the pair moves with it
        record = next(r for r in records if r.key == STUDY_KEY)
        set_latency(record, "1", record.p50_ms(1) * scale, paired_dense_ms=0.2 * scale)
    comparison = compare(load_run(write_run(tmp_path / "a", old)), load_run(write_run(tmp_path / "b", new)))
    change = next(c for c in next(d for d in comparison.deltas["lenet5"] if d.new.key == STUDY_KEY).changes
                  if c.header == "p50 b1")
    assert not change.unpaired and change.ratio == pytest.approx(1.0)


def test_stability_flags_of_both_runs_are_shown(tmp_path):
    old, new = study_records(), changed_records()
    record = next(r for r in new if r.key == STUDY_KEY)
    set_latency(record, "1", record.p50_ms(1), unstable=True)
    comparison = compare(load_run(write_run(tmp_path / "a", old)), load_run(write_run(tmp_path / "b", new)))
    assert cells(comparison)["p50 b1"] == "~x1.5†b"


def test_records_of_one_run_only_are_listed_not_dropped(tmp_path, capsys):
    old = [r for r in study_records() if r.key != STUDY_KEY]
    new = [*study_records(), replace(make_record("lenet5", 50.0, "torch-dense"), method="global-l1",
                                     recovery="finetune")]
    comparison = compare(load_run(write_run(tmp_path / "a", old)), load_run(write_run(tmp_path / "b", new)))
    assert [r.key for r in comparison.only_new] == [STUDY_KEY, ("lenet5", "global-l1", "finetune", 50.0,
                                                                "torch-dense")]
    print_comparison(comparison, Console(width=120), None)
    out = capsys.readouterr().out
    assert "only in run B (2 records):" in out
    assert "lenet5 l1-unstructured+none at 50%: torch-auto" in out
    assert "lenet5 global-l1+finetune at 50%: torch-dense" in out


def test_schema_3_records_read_as_the_study_variant_and_the_skipped_fields_are_named(tmp_path):
    old = load_run(write_run(tmp_path / "a", study_records(), schema_version=3))
    comparison = compare(old, load_run(write_run(tmp_path / "b", study_records())))
    assert sum(map(len, comparison.deltas.values())) == 24 and not comparison.only_new
    assert comparison.skipped == [("only in run B's records (schema 4), not compared: macs, method, recovery; "
                                   "run A's records read as l1-unstructured+none")]


def test_parameter_bytes_are_not_compared_with_a_schema_that_counted_them_otherwise(tmp_path):
    comparison = compare(load_run(write_run(tmp_path / "a", study_records(), schema_version=2)),
                         load_run(write_run(tmp_path / "b", study_records())))
    assert "params" not in model_rows(comparison, None)[0].headers
    assert any(line.startswith("param_bytes: not compared, schema 2 counted parameters and buffers only")
               for line in comparison.skipped)


def test_environment_differences_come_first(tmp_path, capsys):
    a = write_run(tmp_path / "a", study_records(), {"git_commit": "aaaa111", "threads": 2})
    b = write_run(tmp_path / "b", changed_records(), {"git_commit": "bbbb222", "threads": 1})
    comparison = compare(load_run(a), load_run(b))
    assert comparison.environment == [("threads", 2, 1), ("git_commit", "aaaa111", "bbbb222")]
    assert {"cpu", "torch", "onnxruntime", "preset"} <= set(comparison.same_environment)
    print_comparison(comparison, Console(width=120), None)
    out = capsys.readouterr().out
    assert out.index("bbbb222") < out.index("lenet5: 12 records in both runs")


def test_only_changed_hides_the_records_within_the_threshold(runs):
    comparison = compare(load_run(runs[0]), load_run(runs[1]))
    lenet5, resnet18 = model_rows(comparison, Threshold())
    assert [row[:3] for row in lenet5.rows] == [["l1-unstructured+none", "50", "torch-auto"]]
    assert (lenet5.hidden, resnet18.hidden, resnet18.rows) == (11, 12, [])


def test_cli_prints_the_comparison_and_writes_the_same_as_markdown(runs, tmp_path, capsys):
    markdown = tmp_path / "compare.md"
    assert main(["compare", str(runs[0]), str(runs[1] / "results.json"), "--only-changed",
                 "--markdown", str(markdown)]) == 0
    out = capsys.readouterr().out
    text = markdown.read_text()
    assert "~x1.5" in out and "-0.50pt" in out
    assert "| l1-unstructured+none | 50 | torch-auto | = | = | = | ~x1.5 | = | -0.50pt |" in text
    assert "lenet5: 12 records in both runs, 11 within the threshold hidden." in text


def bad_input(tmp_path: Path, capsys, *runs: str) -> str:
    """stderr of a compare that must fail: exit status 2 and one line."""
    assert main(["compare", *runs]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
    return err


def test_a_directory_without_results_json_is_one_line_and_exit_2(runs, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert "empty: no results.json" in bad_input(tmp_path, capsys, str(tmp_path / "empty"), str(runs[1]))


def test_an_unreadable_json_file_is_one_line_and_exit_2(runs, tmp_path, capsys):
    broken = tmp_path / "broken.json"
    broken.write_bytes(b'{"schema_version": 4, "records": [\x00')
    assert "broken.json: unreadable JSON" in bad_input(tmp_path, capsys, str(runs[0]), str(broken))


@pytest.mark.parametrize("content", [[1, 2], {"benchmarks": []}, {"schema_version": 4, "records": [{"x": 1}]},
                                     {"schema_version": 99, "records": []}])
def test_a_foreign_json_file_is_one_line_and_exit_2(runs, tmp_path, capsys, content):
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps(content))
    err = bad_input(tmp_path, capsys, str(foreign), str(runs[1]))
    assert "foreign.json:" in err and ("not a prunebench results file" in err or "schema version 99" in err)


def test_runs_with_no_model_in_common_are_one_line_and_exit_2(tmp_path, capsys):
    lenet5 = write_run(tmp_path / "a", [r for r in study_records() if r.model == "lenet5"])
    resnet18 = write_run(tmp_path / "b", [r for r in study_records() if r.model == "resnet18"])
    assert "no model in common (lenet5 against resnet18)" in bad_input(tmp_path, capsys, str(lenet5), str(resnet18))
