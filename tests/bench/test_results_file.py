"""results.json / results.csv writing and which earlier records a rerun may keep."""

from __future__ import annotations

import csv

from bench.records import ArtifactFile, LatencyStats, Record
from bench.results import RESULTS_CSV, read_results, records_csv, reusable_records, write_results

ENVIRONMENT = {"cpu": "test cpu", "threads": 2}
FILES = [ArtifactFile("lenet5", 0, 0.0, "packed", "packed.pt", 7, 7, 5, 0.7)]
CONFIG = {"models": ["lenet5"], "ratios": [0], "out": "runs/a", "seed": 0, "runtimes": ["torch-dense"]}


def record(runtime: str, batches: dict[str, float], error: str | None = None) -> Record:
    latency = {b: LatencyStats(p50, p50, p50, p50, 0.0, 5, 1, p50, 0.0, 1000 / p50, False) for b, p50 in batches.items()}
    return Record("lenet5", "none", 0, 0.0, runtime, "dense.pt", "cpu", 2, None, "no data", 10, 9, 5,
                  None if error else 8, None, None, None, latency, None, error=error)


def test_csv_has_latency_columns_for_every_batch_any_record_has():
    rows = list(csv.DictReader(records_csv([record("torch-dense", {"1": 1.0, "64": 2.0}),
                                            record("ort-dense", {"1": 0.5, "8": 0.7})]).splitlines()))
    assert rows[0]["p50_ms@64"] == "2.0" and rows[0]["p50_ms@8"] == ""
    assert rows[1]["p50_ms@8"] == "0.7" and rows[1]["runtime"] == "ort-dense"
    assert list(rows[0]).index("p50_ms@8") < list(rows[0]).index("p50_ms@64")


def test_written_results_read_back_equal(tmp_path):
    records = [record("torch-dense", {"1": 1.0})]
    write_results(tmp_path, ENVIRONMENT, CONFIG, records, FILES)
    data = read_results(tmp_path)
    assert data["records"] == records and data["environment"] == ENVIRONMENT and data["config"] == CONFIG
    assert data["artifacts"] == FILES
    assert (tmp_path / RESULTS_CSV).read_text().startswith("model,dataset,ratio")
    assert not list(tmp_path.glob("*.tmp"))


def test_rerun_keeps_successful_records_of_the_same_environment_and_settings(tmp_path):
    write_results(tmp_path, ENVIRONMENT, CONFIG, [record("torch-dense", {"1": 1.0}),
                                                  record("ort-dense", {}, error="crashed")], FILES)
    moved = {**CONFIG, "out": "runs/b", "models": ["lenet5", "resnet18"], "runtimes": ["ort-dense"]}
    assert list(reusable_records(tmp_path, ENVIRONMENT, moved)) == [("lenet5", "l1-unstructured", "none", 0, "torch-dense")]


def test_rerun_keeps_nothing_when_environment_or_settings_differ(tmp_path):
    write_results(tmp_path, ENVIRONMENT, CONFIG, [record("torch-dense", {"1": 1.0})], FILES)
    assert reusable_records(tmp_path, {**ENVIRONMENT, "threads": 1}, CONFIG) == {}
    assert reusable_records(tmp_path, ENVIRONMENT, {**CONFIG, "seed": 1}) == {}


def test_rerun_after_a_commit_keeps_the_records(tmp_path):
    write_results(tmp_path, {**ENVIRONMENT, "git_commit": "a" * 40, "git_dirty": False}, CONFIG,
                  [record("torch-dense", {"1": 1.0})], FILES)
    later = {**ENVIRONMENT, "git_commit": "b" * 40, "git_dirty": True}
    assert list(reusable_records(tmp_path, later, CONFIG)) == [("lenet5", "l1-unstructured", "none", 0, "torch-dense")]


def test_unreadable_results_are_not_reused(tmp_path):
    (tmp_path / "results.json").write_text("{not json")
    assert reusable_records(tmp_path, ENVIRONMENT, CONFIG) == {}
