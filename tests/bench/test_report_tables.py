"""Report tables: ratios as rows, best cell of each column marked, missing figures shown as '-' or 'n/a'."""

from __future__ import annotations

from pathlib import Path

from report_fixtures import CIFAR_NOTE, make_record, set_latency, study_files, study_records

from bench.records import attach_ratios_to_dense
from bench.report.data import RunResults
from bench.report.tables import (HIGHER, LOWER, MISSING, UNSTABLE_LEGEND, best_flags, fmt_bytes, fmt_ms,
                                 fmt_x, latency_table, model_tables, size_table)


def results(records) -> RunResults:
    return RunResults(Path("results.json"), {}, {}, records, study_files(records))


def column(table, header):
    return next(c for c in table.columns if c.header == header)


def test_best_flags_pick_lowest_or_highest_and_ignore_missing():
    assert best_flags([3.0, None, 1.0, 2.0], LOWER) == [False, False, True, False]
    assert best_flags([3.0, None, 1.0, 2.0], HIGHER) == [True, False, False, False]


def test_best_flags_mark_nothing_when_all_equal_or_unranked():
    assert best_flags([5.0, 5.0, 5.0], LOWER) == [False, False, False]
    assert best_flags([1.0, 2.0], None) == [False, False]
    assert best_flags([1.0, None], LOWER) == [False, False]


def test_formatters_are_compact():
    assert fmt_bytes(246_000) == "246k" and fmt_bytes(44_700_000) == "44.7M" and fmt_bytes(None) == "-"
    assert fmt_ms(0.0123) == "0.0123" and fmt_ms(2000.4) == "2000" and fmt_ms(12.345) == "12.3"
    assert fmt_ms(4.0) == "4.00" and fmt_ms(99.97) == "100"
    assert fmt_x(2.0) == "2.0x" and fmt_x(48.2) == "48x" and fmt_x(0.254) == "0.25x"
    assert fmt_x(0.9997) == "1.0x"


def test_size_table_rows_are_ratios_and_marks_smallest_sparse_file():
    table = size_table(results(study_records()), "lenet5")
    assert table.rows == ["0", "50", "90"]
    sparse = column(table, "sparse_csr.pt")
    assert [c.best for c in sparse.cells] == [False, False, True]
    assert sparse.cells[2].text == "49.2k 0.2x"


def test_size_table_marks_highest_accuracy():
    accuracy = column(size_table(results(study_records()), "lenet5"), "accuracy")
    assert [c.text for c in accuracy.cells] == ["98.90", "98.70", "97.10"]
    assert [c.best for c in accuracy.cells] == [True, False, False]


def test_size_table_leaves_unchanging_dense_file_unmarked():
    dense = column(size_table(results(study_records()), "lenet5"), "dense.pt")
    assert not any(c.best for c in dense.cells)


def test_missing_accuracy_is_na_with_reason_in_caption():
    table = size_table(results(study_records()), "resnet18")
    assert [c.text for c in column(table, "accuracy").cells] == ["n/a"] * 3
    assert CIFAR_NOTE in table.caption


def test_failed_reference_record_takes_accuracy_from_another_runtime():
    records = study_records()
    dense = next(r for r in records if (r.model, r.ratio, r.runtime) == ("lenet5", 50.0, "torch-dense"))
    dense.accuracy, dense.accuracy_note, dense.error = None, "measurement failed", "killed"
    accuracy = column(size_table(results(records), "lenet5"), "accuracy")
    assert accuracy.cells[1].text == "98.70"


def test_failed_measurement_shows_dash_but_keeps_the_file_size_from_the_manifest():
    records = study_records()
    broken = make_record("lenet5", 50.0, "torch-auto")
    broken.param_bytes = None
    broken.latency_ms = {}
    records = [broken if r.key == broken.key else r for r in records]
    attach_ratios_to_dense(records)
    tables = {t.title.split(" - ")[1].split(" (")[0]: t for t in model_tables(results(records), "lenet5")}
    assert column(tables["file size"], "sparse_csr.pt").cells[1].text == "197k 0.8x"
    assert column(tables["parameter bytes held"], "torch-auto").cells[1].text == "-"
    assert column(tables["p50 latency at batch 64"], "torch-auto").cells[1].text == "-"


def test_latency_tables_exist_per_batch_and_mark_fastest_ratio():
    tables = model_tables(results(study_records()), "lenet5")
    titles = [t.title for t in tables]
    assert any("batch 1 " in t for t in titles) and any("batch 64 " in t for t in titles)
    batch1 = next(t for t in tables if "batch 1 " in t.title)
    ort = column(batch1, "ort-dense")
    assert [c.best for c in ort.cells] == [False, False, True]
    assert ort.cells[2].text == "0.0800 0.4x"


def record(records, model, ratio, runtime):
    return next(r for r in records if (r.model, r.ratio, r.runtime) == (model, ratio, runtime))


def test_fastest_latency_cell_is_the_lowest_paired_ratio_not_the_lowest_absolute_p50():
    records = study_records()
    auto = [record(records, "lenet5", ratio, "torch-auto") for ratio in (0.0, 50.0, 90.0)]
    set_latency(auto[0], "1", 0.20, paired_dense_ms=0.20)  # 1.0x
    set_latency(auto[1], "1", 0.15, paired_dense_ms=0.30)  # 0.5x: its process ran slow, the pair shows it
    set_latency(auto[2], "1", 0.12, paired_dense_ms=0.10)  # the lowest p50, but 1.2x its own pair
    attach_ratios_to_dense(records)
    cells = column(latency_table(results(records), "lenet5", 1), "torch-auto").cells
    assert [c.best for c in cells] == [False, True, False]
    assert cells[1].text == "0.150 0.5x" and cells[2].text == "0.120 1.2x"


def test_unstable_latency_is_marked_and_never_the_best_cell():
    records = study_records()
    set_latency(record(records, "lenet5", 90.0, "torch-auto"), "1", 0.14, unstable=True)  # 0.7x, lowest
    attach_ratios_to_dense(records)
    table = latency_table(results(records), "lenet5", 1)
    cells = column(table, "torch-auto").cells
    assert cells[2].text == "0.140 0.7x†"
    assert [c.best for c in cells] == [True, False, False]
    assert table.caption == UNSTABLE_LEGEND


def test_latency_table_without_unstable_figures_has_no_legend():
    assert latency_table(results(study_records()), "lenet5", 1).caption is None


def test_size_table_caption_states_how_many_test_images_accuracy_used():
    assert size_table(results(study_records()), "lenet5").caption == "accuracy on 1,000 test images"


def test_size_table_caption_says_accuracy_was_not_measured():
    caption = size_table(results(study_records()), "resnet18").caption
    assert caption == f"accuracy not measured; n/a: {CIFAR_NOTE}"


def _untimed_at_50() -> RunResults:
    """lenet5's records without ratio 50 (not timed), its files sized there with export's accuracy."""
    records = study_records()
    files = study_files(records)
    for f in files:
        if (f.model, f.ratio) == ("lenet5", 50.0):
            f.accuracy, f.kept = 98.5, False
    kept = [r for r in records if (r.model, r.ratio) != ("lenet5", 50.0)]
    return RunResults(Path("results.json"), {}, {}, kept, files)


def test_an_untimed_ratio_keeps_its_row_with_the_files_size_and_exports_accuracy():
    table = size_table(_untimed_at_50(), "lenet5")
    assert table.rows == ["0", "50", "90"]
    assert [c.text for c in column(table, "accuracy").cells] == ["98.90", "98.50", "97.10"]
    assert column(table, "dense.pt").cells[1].text != MISSING


def test_latency_tables_say_which_ratios_were_not_timed():
    table = latency_table(_untimed_at_50(), "lenet5", 1)
    assert column(table, "torch-dense").cells[1].text == MISSING
    assert table.caption == f"{MISSING} at 50%: not timed (the preset's latency ratios, --latency-ratios); sizes " \
                            "and accuracy cover every ratio, the lossy files' (codebook, int8) the timed ones only"
