"""The findings state this run's numbers and say so when a runtime is missing."""

from __future__ import annotations

from report_fixtures import set_latency, study_files, study_records

from bench.report.findings import findings, latency_finding, memory_finding, ratios_to, size_finding, span
from bench.records import attach_ratios_to_dense


def test_span_collapses_values_that_round_alike():
    assert span([1.98, 2.0, 2.01]) == "2.0x"
    assert span([1.3, 1.25]) == "1.2x-1.3x"


def test_ratios_to_skips_ratio_zero_and_pairs_same_model_and_ratio():
    values = ratios_to(study_records(), "torch-masked", "torch-dense", lambda r: r.file_bytes)
    assert len(values) == 4  # 2 models x ratios 50 and 90
    assert min(values) == 1.98 and max(values) == 2.0


def test_size_finding_states_masked_file_is_twice_dense():
    finding = size_finding(study_records(), study_files(study_records()))
    assert "is 2.0x the file size" in finding.overhead


def test_size_finding_names_smallest_artifact_against_the_fp32_reference():
    finding = size_finding(study_records(), study_files(study_records()))
    # at 90%: packed.pt is 0.15x dense and the fp32 reference 0.14x dense -> 1.1x the reference; dense.pt 7.1x
    assert "lenet5 at 90%: packed.pt at 1.1x the fp32 reference (dense.pt: 7.1x)" in finding.remedy
    assert "resnet18 at 90%: packed.pt" in finding.remedy


def test_size_finding_says_permanent_pruning_removes_the_copy():
    records = study_records()
    remedy = size_finding(records, study_files(records)).remedy
    assert "torch-dense's file stays at 1.0x the unpruned one" in remedy


def test_memory_finding_states_parameter_copies_and_the_runtime_that_removes_them():
    finding = memory_finding(study_records())
    assert "holds 2.0x the parameter bytes" in finding.overhead
    assert "torch-dense holds 1.0x the unpruned parameter bytes" in finding.remedy
    assert "lenet5 at 90%: torch-auto (0.25x torch-dense)" in finding.remedy


def test_latency_finding_states_masked_slower_and_fastest_runtime_at_top_ratio():
    finding = latency_finding(study_records())
    assert "is slower than torch-dense in 8 of 8 p50 comparisons" in finding.overhead
    assert "lenet5 median 1.3x (1.2x-1.3x); resnet18 median 1.3x (1.2x-1.3x)" in finding.overhead
    assert "lenet5 at 90%: batch 1 ort-dense 0.4x, torch-auto 0.7x" in finding.remedy


def test_latency_finding_counts_comparisons_where_masked_is_faster():
    records = study_records()
    for r in records:
        if r.runtime == "torch-masked" and r.model == "lenet5":
            for stats in r.latency_ms.values():
                stats.p50_ms *= 0.5
    attach_ratios_to_dense(records)
    overhead = latency_finding(records).overhead
    assert "slower than torch-dense in 4 of 8" in overhead and "lenet5 median 0.64x (0.62x-0.65x)" in overhead


def test_findings_without_masked_runtime_claim_nothing():
    records = [r for r in study_records() if r.runtime != "torch-masked"]
    size, memory, latency = findings(records, study_files(records))
    for finding in (size, memory, latency):
        assert "torch-masked or torch-dense was not measured" in finding.overhead
        assert "2.0x" not in finding.overhead


def test_findings_without_any_dense_record_name_no_winner():
    records = [r for r in study_records() if r.runtime != "torch-dense"]
    _, memory, latency = findings(records, study_files(records))
    assert "no runtime is named smallest" in memory.remedy
    assert "no runtime is named fastest" in latency.remedy


def record(records, model, ratio, runtime):
    return next(r for r in records if (r.model, r.ratio, r.runtime) == (model, ratio, runtime))


def test_fastest_runtime_is_chosen_by_paired_ratio_not_absolute_p50():
    records = study_records()
    # ort-dense has the lowest absolute p50 (0.08 ms, 0.4x); torch-auto's 0.15 ms is 0.3x the dense model
    # timed in its own process, which ran slow (0.5 ms)
    set_latency(record(records, "lenet5", 90.0, "torch-auto"), "1", 0.15, paired_dense_ms=0.5)
    attach_ratios_to_dense(records)
    assert "lenet5 at 90%: batch 1 torch-auto 0.3x;" in latency_finding(records).remedy


def test_unstable_runtime_is_never_named_fastest():
    records = study_records()
    set_latency(record(records, "lenet5", 90.0, "ort-dense"), "1", 0.08, unstable=True)
    attach_ratios_to_dense(records)
    assert "lenet5 at 90%: batch 1 torch-auto 0.7x; batch 64" in latency_finding(records).remedy


def test_unstable_comparisons_are_left_out_of_the_masked_count():
    records = study_records()
    set_latency(record(records, "lenet5", 50.0, "torch-masked"), "1", 0.26, unstable=True)
    attach_ratios_to_dense(records)
    overhead = latency_finding(records).overhead
    assert "slower than torch-dense in 7 of 7 p50 comparisons" in overhead
    assert "1 left out as unstable, IQR > 10% of median" in overhead
