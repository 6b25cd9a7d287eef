"""The markdown's detail tables: gzip sizes with their compression level, and every latency figure."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from report_fixtures import set_latency, study_files, study_records

from bench.records import attach_ratios_to_dense
from bench.report.data import RunResults
from bench.report.detail import GZIP_NOTE, gzip_table, latency_detail_table
from export.digest import GZIP_LEVEL


def results(records, files=None) -> RunResults:
    return RunResults(Path("results.json"), {}, {}, records, study_files(records) if files is None else files)


def column(table, header):
    return next(c for c in table.columns if c.header == header)


def test_gzip_note_names_the_zlib_level():
    assert GZIP_NOTE == f"gzip: zlib level {GZIP_LEVEL}"


def test_gzip_table_shows_gzip_bytes_against_dense_gzip_and_states_the_level():
    table = gzip_table(results(study_records()), "lenet5")
    # dense.pt gzips to 221k (0.9 of 246k); packed.pt at 90% is 36.9k
    assert column(table, "dense.pt").cells[0].text == "221k 1.0x"
    assert column(table, "packed.pt").cells[2].text == "36.9k 0.17x"
    assert table.caption == GZIP_NOTE


def test_gzip_table_shows_a_null_gzip_as_na_with_its_note():
    records = study_records()
    files = [replace(f, gzip_bytes=None, gzip_note="file over the gzip size limit")
             if (f.model, f.ratio, f.artifact) == ("lenet5", 50.0, "masked.pt") else f
             for f in study_files(records)]
    table = gzip_table(results(records, files), "lenet5")
    assert column(table, "masked.pt").cells[1].text == "n/a"
    assert table.caption == f"{GZIP_NOTE}; n/a: file over the gzip size limit"


def test_latency_detail_has_a_row_per_batch_runtime_and_ratio():
    table = latency_detail_table(results(study_records()), "lenet5")
    assert len(table.rows) == 2 * 4 * 3  # batches x runtimes x ratios
    assert table.rows[:12] == ["1"] * 12 and table.rows[12:] == ["64"] * 12


def test_latency_detail_shows_p95_iqr_and_throughput():
    table = latency_detail_table(results(study_records()), "lenet5")
    row = next(i for i, (b, rt, ratio) in enumerate(zip(table.rows, column(table, "runtime").cells,
                                                         column(table, "ratio %").cells))
               if (b, rt.text, ratio.text) == ("64", "torch-dense", "0"))
    figures = {c.header: c.cells[row].text for c in table.columns}
    assert figures == {"runtime": "torch-dense", "ratio %": "0", "p50 ms": "4.00", "x dense": "1.0x",
                       "p95 ms": "4.80", "IQR ms": "0.200 (5%)", "images/s": "16,000", "reps": "20"}


def test_latency_detail_marks_an_unstable_p50():
    records = study_records()
    masked = next(r for r in records if (r.model, r.ratio, r.runtime) == ("lenet5", 0.0, "torch-masked"))
    set_latency(masked, "1", 0.2, unstable=True)
    attach_ratios_to_dense(records)
    table = latency_detail_table(results(records), "lenet5")
    assert column(table, "p50 ms").cells[0].text == "0.200†"
