"""The methods-and-recovery table and the BatchNorm test, on hand-made records and sweep files."""

from __future__ import annotations

from pathlib import Path

from test_verdict import DENSE_ACCURACY, MODEL, file, record

from rich.console import Console

from bench.report.console import print_report
from bench.report.markdown import comparison_section
from bench.report.methods import batchnorm_lines, method_notes, methods_table
from bench.records import attach_file_ratios, attach_ratios_to_dense
from bench.report.data import RunResults
from prune.config import STUDY, Variant, sweep_path
from prune.io import write_json


def results(records, files=()) -> RunResults:
    attach_ratios_to_dense(records)
    attach_file_ratios(list(files))
    return RunResults(Path("results.json"), {}, {"tolerance": 1.0}, records, list(files))


def with_macs(r, macs: int):
    r.macs = macs
    return r


def comparison() -> RunResults:
    return results([
        with_macs(record("l1-unstructured", "none", 0, "torch-dense", "dense.pt", DENSE_ACCURACY, 1.0, 1000), 400),
        record("l1-unstructured", "none", 0, "ort-dense", "model.onnx", DENSE_ACCURACY, 0.5, 1000),
        with_macs(record("l1-structured", "bn", 50, "torch-dense", "dense.pt", 90.0, 0.6, 250, paired_ms=1.2), 100),
        record("l1-structured", "bn", 50, "ort-dense", "model.onnx", 90.0, 0.2, 250),
        with_macs(record("l1-structured", "none", 50, "torch-dense", "dense.pt", 60.0, 0.5, 250, paired_ms=1.0),
                  100),
    ], [file("l1-unstructured", "none", 0, "dense.pt", 1000), file("l1-structured", "bn", 50, "dense.pt", 250),
        file("l1-structured", "none", 50, "dense.pt", 250)])


def test_rows_are_the_dense_model_then_the_variants_in_registry_order():
    assert methods_table(comparison(), MODEL).rows == [
        "l1-unstructured+none 0", "l1-structured+none 50", "l1-structured+bn 50"]


def test_columns_give_accuracy_and_ratios_to_the_dense_model():
    table = methods_table(comparison(), MODEL)
    cells = {column.header: [c.text for c in column.cells] for column in table.columns}
    assert cells["accuracy"] == ["97.00", "60.00", "90.00"]
    assert cells["MACs"] == ["1.0x", "0.25x", "0.25x"]
    assert cells["dense.pt"] == ["1.0x", "0.25x", "0.25x"]
    assert cells["torch-dense p50@1"] == ["1.0x", "0.5x", "0.5x"]  # paired: 0.5 / 1.0 and 0.6 / 1.2
    assert cells["ort-dense p50@1"] == ["1.0x", "-", "0.4x"]  # 0.2 ms against ORT's dense 0.5 ms


def test_batchnorm_line_compares_none_with_bn_at_each_ratio(tmp_path):
    write_json(sweep_path(tmp_path, MODEL, Variant("l1-structured", "bn")),
               {"records": [{"ratio": 50, "recovery_note": None}]})
    assert batchnorm_lines(comparison(), tmp_path) == [
        f"{MODEL} l1-structured, accuracy % none -> bn: 50%: 60.00 -> 90.00"]


def test_batchnorm_line_says_why_the_run_skipped_bn(tmp_path):
    note = f"skipped: {MODEL} has no BatchNorm layers"
    write_json(sweep_path(tmp_path, MODEL, STUDY), {"skipped_recoveries": {"bn": note}, "records": []})
    assert batchnorm_lines(comparison(), tmp_path) == [f"{MODEL}: bn {note}"]


def test_no_batchnorm_line_without_a_bn_sweep(tmp_path):
    assert batchnorm_lines(comparison(), tmp_path) == []


GROUPED_NOTE = "grouped convolutions block.0 and every layer tied to their channels keep all channels"


def _grouped_sweeps(out: Path) -> None:
    """l1-structured's sweep files, as the prune stage writes them for a model with a grouped convolution."""
    for recovery in ("none", "bn"):
        write_json(sweep_path(out, MODEL, Variant("l1-structured", recovery)),
                   {"method_note": GROUPED_NOTE, "records": [{"ratio": 50, "recovery_note": None}]})


def test_a_structured_method_note_is_one_line_per_method(tmp_path):
    _grouped_sweeps(tmp_path)
    assert method_notes(comparison(), tmp_path, MODEL) == [f"l1-structured: {GROUPED_NOTE}"]


def test_no_method_note_without_one_in_the_sweep_files(tmp_path):
    assert method_notes(comparison(), tmp_path, MODEL) == []


def test_the_markdown_comparison_prints_the_method_note_under_the_model_table(tmp_path):
    _grouped_sweeps(tmp_path)
    lines = comparison_section(comparison(), tmp_path, [])
    assert f"- {MODEL}, l1-structured: {GROUPED_NOTE}" in lines


def test_the_console_prints_the_method_note_under_the_model_summary(tmp_path):
    _grouped_sweeps(tmp_path)
    console = Console(record=True, width=400)
    print_report(comparison(), [], console, {MODEL: method_notes(comparison(), tmp_path, MODEL)})
    assert f"; l1-structured: {GROUPED_NOTE}" in console.export_text()
