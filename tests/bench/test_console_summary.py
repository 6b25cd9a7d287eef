"""The console summary: one compact table per model (dense, the study's masked model, the best artifacts), its
line budget at 100 columns, the full tables on request, and report.md's verdict and contents first."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from report_fixtures import make_record, set_latency, study_files, study_records, write_results
from rich.console import Console

from bench.cli import main
from bench.report.console import print_detail, print_report
from bench.report.summary import FILE, summary_rows
from bench.report.findings import findings
from bench.report.markdown import render_markdown
from bench.records import ArtifactFile, Record, attach_file_ratios, attach_ratios_to_dense
from bench.report.data import RunResults
from prune.config import STUDY, Variant

TOLERANCE = 1.0
WIDTH = 100
STRUCTURED = Variant("l1-structured", "finetune")
VARIANTS = (STRUCTURED, Variant("global-l1", "finetune"), Variant("l1-unstructured", "bn"),
            Variant("global-l1", "none"))


def run(records: list[Record], files: list[ArtifactFile] | None = None) -> RunResults:
    """Records (ratios to dense attached, as the measure stage does) with their files, as the report reads them."""
    attach_ratios_to_dense(records)
    files = study_files([r for r in records if Variant(r.method, r.recovery) == STUDY]) if files is None else files
    attach_file_ratios(files)
    environment = {"cpu": "test cpu", "logical_cores": 2, "threads": 2, "torch": "2.14.1", "onnxruntime": "1.32.0",
                   "preset": "quick"}
    return RunResults(Path("results.json"), environment, {"tolerance": TOLERANCE}, records, files)


def one_model(model: str = "lenet5") -> RunResults:
    return run([r for r in study_records() if r.model == model])


def with_methods() -> RunResults:
    """lenet5's study records plus four more variants at 50% on the dense runtimes; l1-structured+finetune on
    onnxruntime is the fastest within tolerance at both batch sizes."""
    records = [r for r in study_records() if r.model == "lenet5"]
    for n, variant in enumerate(VARIANTS):
        for runtime in ("torch-dense", "ort-dense"):
            records.append(replace(make_record("lenet5", 50.0, runtime), method=variant.method,
                                   recovery=variant.recovery, accuracy=98.5 - n))
    fast = next(r for r in records if (r.method, r.recovery, r.runtime) == (STRUCTURED.method, STRUCTURED.recovery,
                                                                          "ort-dense"))
    set_latency(fast, "1", 0.05)
    set_latency(fast, "64", 1.0)
    files = study_files([r for r in records if Variant(r.method, r.recovery) == STUDY])
    files += [ArtifactFile(r.model, r.ratio, r.sparsity, r.artifact.split(".")[0], r.artifact, r.file_bytes // 2,
                           None, r.fp32_ref_bytes, method=r.method, recovery=r.recovery)
              for r in records if Variant(r.method, r.recovery) != STUDY]
    return run(records, files)


def rendered(results: RunResults, width: int = WIDTH) -> list[str]:
    """The console report's lines at a fixed width."""
    console = Console(record=True, width=width)
    study = results.study()
    print_report(results, findings(study.records, study.files), console)
    return console.export_text().splitlines()


def row_of(lines: list[str], runtime: str) -> list[str]:
    """The cells of the table line of `runtime`."""
    return next(line for line in lines if f" {runtime} " in line and "x:" not in line).split()


def test_summary_rows_are_dense_on_torch_and_ort_then_the_masked_model_then_the_best_artifacts():
    rows = summary_rows(one_model(), "lenet5", TOLERANCE)
    assert [(r.role, r.variant, r.ratio, r.runtime or r.artifact) for r in rows] == [
        ("dense", STUDY, 0.0, "torch-dense"),
        ("dense, ship this", STUDY, 0.0, "ort-dense"),
        ("study", STUDY, 50.0, "torch-masked"),
        ("ship this", STUDY, 50.0, "packed.pt"),
    ]


def test_a_choice_that_is_already_a_row_shares_it_with_every_figure_it_was_chosen_for_marked():
    rows = summary_rows(one_model(), "lenet5", TOLERANCE)
    assert rows[1].chosen == {"p50@1", "p50@64"} and rows[3].chosen == {FILE}
    assert row_of(rendered(one_model()), "ort-dense")[-2:] == ["0.5x*", "0.5x*"]


def test_the_masked_row_is_the_highest_ratio_within_tolerance():
    assert summary_rows(one_model(), "lenet5", 2.0)[2].ratio == 90.0  # 97.1% is within 2 points of 98.9%


def test_figures_are_ratios_to_dense_on_torch_and_the_dense_row_is_absolute():
    lines = rendered(one_model())
    assert row_of(lines, "torch-dense")[-5:] == ["98.90", "246k", "241k", "0.200", "4.00"]
    assert row_of(lines, "torch-masked") == ["study", "l1-unstructured+none", "r50", "torch-masked", "98.70",
                                             "2.0x", "2.0x", "1.3x", "1.3x"]


def test_an_unstable_latency_is_marked_and_never_chosen():
    records = [r for r in study_records() if r.model == "lenet5"]
    ort = next(r for r in records if (r.ratio, r.runtime) == (0.0, "ort-dense"))
    set_latency(ort, "1", ort.p50_ms(1), unstable=True)
    results = run(records)
    fastest = next(r for r in summary_rows(results, "lenet5", TOLERANCE) if "p50@1" in r.chosen)
    assert (fastest.ratio, fastest.runtime) == (50.0, "ort-dense")  # as fast as dense, and stable
    assert row_of(rendered(results), "ort-dense")[-2] == "0.5x†"


def test_without_accuracy_the_rows_are_best_not_ship_this_and_the_notes_say_why():
    rows = summary_rows(one_model("resnet18"), "resnet18", TOLERANCE)
    assert {r.role for r in rows} == {"dense", "best", "study"}
    text = " ".join(" ".join(rendered(one_model("resnet18"))).split())
    assert "cannot choose within 1 points of dense accuracy: CIFAR-10 not on disk" in text


def test_choices_come_from_every_method_and_recovery():
    rows = summary_rows(with_methods(), "lenet5", TOLERANCE)
    fastest = next(r for r in rows if "p50@1" in r.chosen)
    assert (fastest.variant, fastest.runtime, fastest.chosen) == (STRUCTURED, "ort-dense", {"p50@1", "p50@64"})


def test_one_method_model_fits_30_lines_of_100_columns_in_one_table():
    lines = rendered(one_model())
    assert len(lines) <= 30 and max(map(len, lines)) <= WIDTH
    assert sum(line.startswith("lenet5 ") for line in lines) == 1  # one header: the table was not split


def test_model_with_five_variants_fits_60_lines_of_100_columns():
    lines = rendered(with_methods())
    assert len(lines) <= 60 and max(map(len, lines)) <= WIDTH
    assert sum(line.startswith("lenet5 ") for line in lines) == 1


def test_two_models_fit_30_lines_each():
    lines = rendered(run(study_records()))
    assert len(lines) <= 60 and max(map(len, lines)) <= WIDTH


def test_the_findings_panel_comes_after_every_summary_table():
    lines = rendered(run(study_records()))
    panel = next(n for n, line in enumerate(lines) if "Findings" in line)
    assert panel > max(n for n, line in enumerate(lines) if line.startswith(("lenet5 ", "resnet18 ")))
    assert "is 2.0x the file size" in " ".join(" ".join(lines[panel:]).split())


def test_detail_prints_every_full_table_with_its_best_cells():
    console = Console(record=True, width=120)
    print_detail(run(study_records()), console)
    text = console.export_text()
    assert "lenet5 - file size" in text and "resnet18 - p50 latency at batch 64" in text
    assert "lenet5 - methods and recovery" in text and "49.2k 0.2x*" in text


def test_detail_splits_a_wide_table_into_column_groups_on_a_narrow_console():
    console = Console(record=True, width=70)
    print_detail(run(study_records()), console)
    lines = console.export_text().splitlines()
    assert max(map(len, lines)) <= 70 and any("(%), cont." in line for line in lines)


def test_report_md_opens_with_the_verdict_and_contents_before_the_environment(tmp_path):
    results = with_methods()
    study = results.study()
    text = render_markdown(results, findings(study.records, study.files), {}, [], tmp_path)
    assert text.startswith("# prunebench report\n\n## Ship this\n")
    assert text.index("## Ship this") < text.index("## Contents") < text.index("## Environment")
    contents = text[text.index("## Contents"):text.index("## Environment")]
    for link in ("- [Environment](#environment)", "- [Methods and recovery](#methods-and-recovery)",
                 "- [lenet5](#lenet5)"):
        assert link in contents
    assert text.count("## Ship this") == 1


def test_report_prints_the_full_tables_only_with_detail(tmp_path, capsys):
    write_results(tmp_path, study_records())
    assert main(["report", "--out", str(tmp_path)]) == 0
    summary = capsys.readouterr().out
    assert main(["report", "--out", str(tmp_path), "--detail"]) == 0
    detail = capsys.readouterr().out
    assert "lenet5 - file size" not in summary and "lenet5 - file size" in detail
    assert detail.startswith(summary.rsplit("wrote", 1)[0])  # the summary first, the same as without --detail
