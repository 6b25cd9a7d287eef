"""The int8 table: each int8 record against the fp32 graph of the same pruned model."""

from dataclasses import replace
from pathlib import Path

from report_fixtures import set_latency, study_files, study_records

from bench.report.int8 import int8_table
from bench.records import attach_ratios_to_dense
from bench.report.data import RunResults


def _with_int8() -> RunResults:
    """lenet5's ort-dense records copied as ort-int8 ones: a quarter of the bytes, half the p50, 0.3 points less."""
    records = study_records()
    for fp32 in [r for r in records if r.model == "lenet5" and r.runtime == "ort-dense"]:
        int8 = replace(fp32, runtime="ort-int8", artifact="model.int8.onnx", file_bytes=fp32.file_bytes // 4,
                       accuracy=fp32.accuracy - 0.3, latency_ms={b: replace(s) for b, s in fp32.latency_ms.items()},
                       paired_dense_ms={}, to_dense={})
        set_latency(int8, "1", fp32.p50_ms(1) / 2)
        records.append(int8)
    attach_ratios_to_dense(records)
    return RunResults(Path("results.json"), {}, {}, records, study_files(records))


def column(table, header):
    return next(c for c in table.columns if c.header == header)


def test_int8_rows_show_size_accuracy_and_speed_against_the_same_models_fp32_graph():
    table = int8_table(_with_int8(), "lenet5")
    assert table.rows == ["l1-unstructured+none 0", "l1-unstructured+none 50", "l1-unstructured+none 90"]
    assert [c.text for c in column(table, "file x model.onnx").cells] == ["0.25x"] * 3
    assert [c.text for c in column(table, "vs fp32 (points)").cells] == ["-0.30"] * 3
    assert [c.text for c in column(table, "p50@1 x ort-dense").cells] == ["0.5x"] * 3


def test_a_model_without_int8_records_has_no_table():
    assert int8_table(_with_int8(), "resnet18") is None
