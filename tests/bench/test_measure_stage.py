"""The measure stage end to end on LeNet-300-100 at two ratios: results.json and results.csv, resume, bad inputs."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest
import torch
from rich.console import Console

import bench.harness.measure
from bench.cli import main
from bench.config import MeasureConfig
from bench.harness.measure import run_measure
from bench.records import SCHEMA_VERSION, Record
from bench.results import RESULTS_CSV, read_results, results_path
from bench.runtimes import get_runtime
from export.exporter import artifact_dir
from export.manifest import read_manifest, removed_after_measuring
from export.verify import EvalData
from prune.config import RunConfig, base_path, pruned_path
from prune.errors import ArtifactError, UsageError
from prune.models import example_input
from prune.presets import eval_limit

MODEL = "lenet300_100"
RATIOS = (0, 90)
CPU_RUNTIMES = ["torch-masked", "torch-dense", "torch-sparse", "torch-auto", "ort-dense", "ort-sparse", "ort-int8"]


@pytest.fixture(scope="module")
def fixture_images(images):
    """The stage sees the fixture's test images instead of a dataset (module-wide); yields the limits asked for."""
    limits = []

    def load(model, data_dir, download, seed, limit):
        limits.append(limit)
        data = images(model)
        return EvalData(data.x[:limit], data.y[:limit], data.source, data.note)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bench.harness.measure, "load_eval_data", load)
        yield limits


@pytest.fixture
def out(exported, tmp_path, fixture_images):
    """A private copy of the exported LeNet-300-100 artifacts."""
    for ratio in RATIOS:
        shutil.copytree(artifact_dir(exported, MODEL, ratio), artifact_dir(tmp_path, MODEL, ratio))
    return tmp_path


def config(out, **kwargs) -> RunConfig:
    """The run measured here; it keeps every file (tests of removal pass keep_artifacts=False)."""
    return RunConfig(**{"models": (MODEL,), "ratios": RATIOS, "out": out, "preset": "smoke", "keep_artifacts": True,
                        **kwargs})


def measure(out, mcfg: MeasureConfig = MeasureConfig(), **kwargs) -> tuple[list[Record], str]:
    console = Console(file=io.StringIO(), width=200)
    records = run_measure(config(out, **kwargs), mcfg, console)
    return records, console.file.getvalue()


@pytest.fixture(scope="module")
def measured_once(exported, tmp_path_factory, fixture_images):
    """The stage run once over every CPU runtime (shared: tests copy it before changing anything)."""
    out = tmp_path_factory.mktemp("measured")
    for ratio in RATIOS:
        shutil.copytree(artifact_dir(exported, MODEL, ratio), artifact_dir(out, MODEL, ratio))
    records, printed = measure(out)
    return out, records, printed


@pytest.fixture
def measured(measured_once, tmp_path):
    """A private copy of the measured run directory, with the records and console text of the run."""
    source, records, printed = measured_once
    shutil.copytree(source, tmp_path, dirs_exist_ok=True)
    return tmp_path, records, printed


def count_children(monkeypatch) -> list[str]:
    """Record the runtime of every job sent to a child process."""
    launched: list[str] = []
    real = bench.harness.measure.run_in_child

    def counting(fn, job, timeout):
        launched.append(job.runtime)
        return real(fn, job, timeout=timeout)

    monkeypatch.setattr(bench.harness.measure, "run_in_child", counting)
    return launched


def test_results_json_holds_one_complete_record_per_ratio_and_runtime(measured):
    out, records, _ = measured
    data = read_results(out)
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["config"] == {**config(out).to_dict(), "out": data["config"]["out"], "runtimes": CPU_RUNTIMES}
    assert [(r.model, r.ratio, r.runtime) for r in data["records"]] == [(MODEL, ratio, rt) for ratio in RATIOS for rt in CPU_RUNTIMES]
    assert [r.to_dict() for r in data["records"]] == [r.to_dict() for r in records]
    for record in records:
        assert record.error is None
        assert record.dataset == "random-test" and record.accuracy is not None
        assert set(record.latency_ms) == {"1", "8"}
        assert record.max_abs_diff <= (5e-2 if record.runtime == "ort-int8" else 1e-5)  # int8 is lossy
        assert record.peak_rss_bytes > record.baseline_rss_bytes > 0
        assert record.param_bytes > 0 and record.file_bytes > 0 and record.fp32_ref_bytes > 0
        assert record.threads == 1 and record.device == "cpu" and record.cuda_peak_bytes is None


def test_results_json_lists_every_exported_file_with_its_ratio_to_dense_pt(measured):
    out, _, _ = measured
    files = read_results(out)["artifacts"]
    for ratio in RATIOS:
        manifest = read_manifest(artifact_dir(out, MODEL, ratio))
        listed = {f.artifact: f for f in files if f.ratio == ratio}
        assert set(listed) == {entry["file"] for entry in manifest["artifacts"]} >= {"packed.pt", "sparse_coo.pt"}
        assert all(listed[e["file"]].file_bytes == e["bytes"] for e in manifest["artifacts"])
    dense = next(f for f in files if f.ratio == 0 and f.artifact == "dense.pt")
    packed = next(f for f in files if f.ratio == 90 and f.artifact == "packed.pt")
    assert dense.to_dense == 1.0 and packed.to_dense == pytest.approx(packed.file_bytes / dense.file_bytes)


def test_environment_names_machine_libraries_and_settings(measured):
    environment = read_results(measured[0])["environment"]
    assert environment["torch"] == torch.__version__ and environment["threads"] == 1
    assert environment["preset"] == "smoke" and environment["batch_sizes"][MODEL] == [1, 8]
    assert environment["reps"]["min_reps"] == 3 and "forkserver" in environment["process_model"]


def test_every_runtime_gets_the_same_accuracy_at_a_ratio(measured):
    _, records, _ = measured
    for ratio in RATIOS:
        assert len({r.accuracy for r in records if r.ratio == ratio}) == 1


def test_ratios_to_dense_are_attached(measured):
    _, records, _ = measured
    by_key = {(r.model, r.ratio, r.runtime): r for r in records}
    dense = by_key[MODEL, 0, "torch-dense"]
    assert dense.to_dense["file_bytes"] == 1.0
    masked = by_key[MODEL, 90, "torch-masked"]
    assert masked.to_dense["param_bytes"] == pytest.approx(masked.param_bytes / dense.param_bytes)


def test_torch_latency_ratios_divide_by_the_dense_model_timed_in_the_same_child(measured):
    _, records, _ = measured
    assert all(r.paired_dense_ms == {} for r in records if r.runtime.startswith("ort-"))
    for record in (r for r in records if r.runtime.startswith("torch-")):
        assert set(record.paired_dense_ms) == {"1", "8"}
        for batch, pair_ms in record.paired_dense_ms.items():
            assert record.to_dense[f"p50_ms@{batch}"] == pytest.approx(record.latency_ms[batch].p50_ms / pair_ms)


def test_torch_auto_records_its_layer_choice_per_batch(measured):
    _, records, _ = measured
    auto = next(r for r in records if r.runtime == "torch-auto" and r.ratio == 90)
    assert set(auto.layer_choice) == {"1", "8"}
    assert all(set(choice) == {"1", "3"} for choice in auto.layer_choice.values())
    assert any(note.startswith("batch 8: ") for note in auto.notes)


def test_results_csv_has_one_row_per_record_and_latency_columns_per_batch(measured):
    out, records, _ = measured
    rows = list(csv.DictReader((out / RESULTS_CSV).open()))
    assert len(rows) == len(records)
    assert {"p50_ms@1", "p99_ms@8", "to_dense:p50_ms@8", "peak_rss_bytes"} <= set(rows[0])
    assert float(rows[0]["p50_ms@8"]) == pytest.approx(records[0].latency_ms["8"].p50_ms)


def test_rerun_keeps_every_record_without_measuring(measured, monkeypatch):
    out, records, _ = measured
    launched = count_children(monkeypatch)
    again, printed = measure(out)
    assert launched == []
    assert [r.to_dict() for r in again] == [r.to_dict() for r in records]
    assert "kept 14 from the previous run" in printed


def test_rerun_with_other_settings_measures_again(measured, monkeypatch):
    out, _, _ = measured
    launched = count_children(monkeypatch)
    measure(out, MeasureConfig(runtimes=("ort-dense",), threads=2))
    assert launched == ["ort-dense", "ort-dense"]
    assert [r.threads for r in read_results(out)["records"]] == [2, 2]


def test_a_run_with_fewer_runtimes_keeps_the_matching_records(measured, monkeypatch):
    out, records, _ = measured
    launched = count_children(monkeypatch)
    subset, _ = measure(out, MeasureConfig(runtimes=("torch-dense",)))
    assert launched == []
    assert [(r.model, r.ratio, r.runtime) for r in subset] == [(MODEL, ratio, "torch-dense") for ratio in RATIOS]


def flip_a_bit(path) -> None:
    """Corrupt a file in place without changing its size."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_failing_measurement_becomes_a_failed_record(out):
    flip_a_bit(artifact_dir(out, MODEL, 90) / "dense.pt")
    records, _ = measure(out, MeasureConfig(runtimes=("torch-dense", "ort-dense")))
    failed = [r for r in records if r.failed]
    assert [(r.model, r.ratio, r.runtime) for r in failed] == [(MODEL, 90, "torch-dense")]
    assert "sha256" in failed[0].error and failed[0].latency_ms == {} and failed[0].param_bytes is None
    assert len(read_results(out)["records"]) == 4


def test_a_run_with_a_corrupted_artifact_exits_1_and_ends_listing_the_file(out, capsys):
    flip_a_bit(artifact_dir(out, MODEL, 90) / "dense.pt")
    status = main(["measure", "--models", MODEL, "--ratios", "0,90", "--out", str(out), "--preset", "smoke",
                   "--runtimes", "torch-dense,ort-dense", "--methods", "l1-unstructured", "--recovery", "none"])
    printed = capsys.readouterr().out.strip().splitlines()
    assert status == 1
    assert printed[-2].startswith("1 measurement(s) failed")
    assert f"{artifact_dir(out, MODEL, 90) / 'dense.pt'}" in printed[-1] and "sha256" in printed[-1]
    assert len(read_results(out)["records"]) == 4


def test_a_failed_record_is_measured_again_on_the_next_run(out, monkeypatch):
    dense = artifact_dir(out, MODEL, 90) / "dense.pt"
    intact = dense.read_bytes()
    flip_a_bit(dense)
    measure(out, MeasureConfig(runtimes=("torch-dense",)))
    dense.write_bytes(intact)
    records, _ = measure(out, MeasureConfig(runtimes=("torch-dense",)))
    assert not any(r.failed for r in records)


def test_accuracy_uses_the_presets_test_images_and_says_how_many(measured, fixture_images, images):
    _, records, _ = measured
    assert set(fixture_images) == {eval_limit("smoke", MODEL)}
    assert {r.test_images for r in records} == {len(images(MODEL).y[:eval_limit("smoke", MODEL)])}


def test_accuracy_is_none_with_the_reason_when_the_dataset_is_missing(out, monkeypatch):
    note = "no test data (MNIST not on disk; pass --download)"
    monkeypatch.setattr(bench.harness.measure, "load_eval_data",
                        lambda *args: EvalData(example_input(MODEL, 4, 0), None, None, note))
    records, _ = measure(out, MeasureConfig(runtimes=("ort-dense",)))
    assert [(r.accuracy, r.accuracy_note, r.dataset) for r in records] == [(None, note, "none")] * 2
    assert all(r.max_abs_diff <= 1e-5 for r in records)


def test_missing_artifacts_tell_to_run_export_first(tmp_path):
    with pytest.raises(ArtifactError, match="run `python -m bench export` first"):
        measure(tmp_path)
    assert not results_path(tmp_path).exists()


def test_unknown_runtime_is_a_usage_error(out):
    with pytest.raises(UsageError, match="unknown runtime 'tflite'; choose from torch-masked"):
        measure(out, MeasureConfig(runtimes=("tflite",)))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without CUDA")
def test_cuda_runtimes_without_cuda_are_a_usage_error(out):
    with pytest.raises(UsageError, match="needs CUDA"):
        measure(out, MeasureConfig(runtimes=("torch-dense-cuda",)))
    with pytest.raises(UsageError, match="CUDA is not available"):
        measure(out, device="cuda")


def test_a_kept_record_is_measured_again_once_its_artifact_was_re_exported(measured):
    out, records, _ = measured
    run = bench.harness.measure.MeasureRun(config(out), None, [], {}, {})
    manifest = read_manifest(artifact_dir(out, MODEL, 90))
    dense = next(r for r in records if (r.model, r.ratio, r.runtime) == (MODEL, 90, "torch-dense"))
    runtime = get_runtime("torch-dense")
    assert run.is_current(dense, manifest, runtime)
    manifest["artifacts"] = [{**a, "sha256": "0" * 64} for a in manifest["artifacts"]]
    assert not run.is_current(dense, manifest, runtime)
    assert not run.is_current(None, manifest, runtime)


def test_a_run_over_fewer_ratios_adds_to_the_results_instead_of_dropping_the_rest(measured, monkeypatch):
    out, records, _ = measured
    launched = count_children(monkeypatch)
    redone, printed = measure(out, MeasureConfig(runtimes=("torch-sparse",)), ratios=(90,))
    assert launched == []
    assert [(r.model, r.ratio, r.runtime) for r in redone] == [(MODEL, 90, "torch-sparse")]
    data = read_results(out)
    assert [r.to_dict() for r in data["records"]] == [r.to_dict() for r in records]
    assert data["config"]["ratios"] == list(RATIOS) and data["config"]["runtimes"] == CPU_RUNTIMES
    assert {f.ratio for f in data["artifacts"]} == set(RATIOS)
    assert "plus 13 records of other models, ratios or runtimes" in printed


def test_records_of_a_re_exported_artifact_outside_the_run_are_dropped(measured, monkeypatch):
    out, _, _ = measured
    directory = artifact_dir(out, MODEL, 0)
    manifest = read_manifest(directory)
    manifest["artifacts"] = [{**a, "sha256": "0" * 64} if a["file"] == "model.onnx" else a
                             for a in manifest["artifacts"]]
    (directory / "manifest.json").write_text(json.dumps(manifest))
    count_children(monkeypatch)
    measure(out, MeasureConfig(runtimes=("torch-dense",)), ratios=(90,))
    kept = {(r.model, r.ratio, r.runtime) for r in read_results(out)["records"]}
    assert (MODEL, 0, "ort-dense") not in kept and (MODEL, 0, "ort-sparse") in kept
    assert len(kept) == 13


def test_records_whose_artifacts_are_gone_are_dropped(measured, monkeypatch):
    out, _, _ = measured
    shutil.rmtree(artifact_dir(out, MODEL, 0))
    count_children(monkeypatch)
    measure(out, MeasureConfig(runtimes=("torch-dense",)), ratios=(90,))
    data = read_results(out)
    assert [(r.model, r.ratio, r.runtime) for r in data["records"]] == [(MODEL, 90, rt) for rt in CPU_RUNTIMES]
    assert {f.ratio for f in data["artifacts"]} == {90}


@pytest.fixture
def tidied(exported, tmp_path, fixture_images):
    """A copy of the export with its pruned checkpoints, measured through torch-dense without --keep-artifacts;
    yields (out, the manifests before measuring)."""
    shutil.copytree(base_path(exported, MODEL).parent, base_path(tmp_path, MODEL).parent)
    before = {}
    for ratio in RATIOS:
        shutil.copytree(artifact_dir(exported, MODEL, ratio), artifact_dir(tmp_path, MODEL, ratio))
        before[ratio] = read_manifest(artifact_dir(tmp_path, MODEL, ratio))
    measure(tmp_path, MeasureConfig(runtimes=("torch-dense",)), keep_artifacts=False)
    return tmp_path, before


def test_measuring_leaves_only_the_packed_codebook_and_int8_files_and_the_manifests_say_why(tidied):
    out, _ = tidied
    for ratio in RATIOS:
        directory = artifact_dir(out, MODEL, ratio)
        assert {p.name for p in directory.iterdir()} == {"manifest.json", "packed.pt", "codebook.pt",
                                                         "model.int8.onnx"}
        removed = [e for e in read_manifest(directory)["artifacts"] if not e["kept"]]
        assert removed and all(removed_after_measuring(e) for e in removed)


def test_results_list_the_removed_files_with_their_sizes(tidied):
    out, before = tidied
    files = {(f.ratio, f.artifact): f for f in read_results(out)["artifacts"]}
    for ratio, manifest in before.items():
        for entry in manifest["artifacts"]:
            found = files[ratio, entry["file"]]
            assert found.file_bytes == entry["bytes"]
            assert found.kept == (entry["format"] in {"packed", "codebook", "onnx_int8"})


def test_a_rerun_keeps_its_records_without_rebuilding_anything(tidied, monkeypatch):
    out, _ = tidied
    launched = count_children(monkeypatch)
    records, _ = measure(out, MeasureConfig(runtimes=("torch-dense",)), keep_artifacts=False)
    assert launched == [] and len(records) == len(RATIOS)
    assert not (artifact_dir(out, MODEL, 90) / "dense.pt").exists()


def test_a_rerun_that_must_measure_again_rebuilds_the_removed_files_byte_for_byte(tidied, monkeypatch):
    out, before = tidied
    launched = count_children(monkeypatch)
    records, _ = measure(out, MeasureConfig(runtimes=("torch-dense", "ort-dense")))
    assert launched.count("ort-dense") == len(RATIOS) and not any(r.failed for r in records)
    for ratio, manifest in before.items():
        rebuilt = {e["format"]: e for e in read_manifest(artifact_dir(out, MODEL, ratio))["artifacts"]}
        for entry in manifest["artifacts"]:
            if entry["format"] in {"masked", "dense", "sparse_coo", "sparse_csr", "onnx", "onnx_sparse"}:
                assert rebuilt[entry["format"]]["kept"]
                assert rebuilt[entry["format"]]["sha256"] == entry["sha256"], entry["format"]
    assert pruned_path(out, MODEL, 90).is_file()

