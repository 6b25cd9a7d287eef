"""Ship-this verdict: the fastest and the smallest artifact within tolerance of dense, and the Pareto front."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bench.records import ArtifactFile, LatencyStats, Record, attach_file_ratios, attach_ratios_to_dense
from bench.report.data import RunResults
from bench.report.verdict import ORT_UNPAIRED, Candidate, pareto_front, ship_lines, ship_this

MODEL = "lenet300_100"
TOLERANCE = 1.0
DENSE_ACCURACY = 97.0
CIFAR_NOTE = "CIFAR-10 not on disk; pass --download"


def stats(p50_ms: float, unstable: bool = False) -> LatencyStats:
    """Batch-1 latency figures around `p50_ms`."""
    return LatencyStats(p50_ms=p50_ms, p90_ms=p50_ms, p99_ms=p50_ms, mean_ms=p50_ms, std_ms=0.0, reps=20,
                        warmup=3, p95_ms=p50_ms, iqr_ms=0.3 * p50_ms if unstable else 0.01 * p50_ms,
                        throughput_ips=1000 / p50_ms, unstable=unstable)


def record(method: str, recovery: str, ratio: float, runtime: str, artifact: str, accuracy: float | None,
           p50_ms: float, file_bytes: int, unstable: bool = False, paired_ms: float | None = None,
           error: str | None = None) -> Record:
    """One measurement of MODEL on MNIST, timed at batch 1 only."""
    return Record(model=MODEL, dataset="mnist", ratio=ratio, sparsity=ratio, runtime=runtime, artifact=artifact,
                  device="cpu", threads=2, accuracy=accuracy,
                  accuracy_note=None if accuracy is not None else CIFAR_NOTE, file_bytes=file_bytes,
                  gzip_bytes=None, fp32_ref_bytes=file_bytes, param_bytes=file_bytes, peak_rss_bytes=None,
                  baseline_rss_bytes=None, cuda_peak_bytes=None,
                  latency_ms={} if error else {"1": stats(p50_ms, unstable)},
                  max_abs_diff=0.0, paired_dense_ms={"1": paired_ms} if paired_ms else {}, error=error,
                  test_images=1000, method=method, recovery=recovery)


def file(method: str, recovery: str, ratio: float, artifact: str, file_bytes: int) -> ArtifactFile:
    """One exported file of MODEL."""
    return ArtifactFile(model=MODEL, ratio=ratio, sparsity=ratio, format=artifact.split(".")[0],
                        artifact=artifact, file_bytes=file_bytes, gzip_bytes=None, fp32_ref_bytes=file_bytes,
                        method=method, recovery=recovery)


def scenario_records() -> list[Record]:
    """Dense on torch (1.0 ms) and ORT (0.5 ms); structured+finetune r50 on ORT within tolerance (0.3 ms, paired
    dense 1.2 ms); l1-unstructured r90 faster (0.1 ms) but 17 points down; global-l1+finetune r70 faster and
    within tolerance but unstable (0.2 ms); a failed record."""
    return [
        record("l1-unstructured", "none", 0, "torch-dense", "dense.pt", DENSE_ACCURACY, 1.0, 1000),
        record("l1-unstructured", "none", 0, "ort-dense", "model.onnx", DENSE_ACCURACY, 0.5, 1010),
        record("l1-structured", "finetune", 50, "ort-dense", "model.onnx", 96.5, 0.3, 500, paired_ms=1.2),
        record("l1-unstructured", "none", 90, "torch-sparse", "sparse_csr.pt", 80.0, 0.1, 300),
        record("global-l1", "finetune", 70, "torch-auto", "sparse_csr.pt", 96.8, 0.2, 250, unstable=True),
        record("l1-unstructured", "none", 90, "ort-sparse", "model.sparse.onnx", None, 0.0, 0, error="crashed"),
    ]


def scenario_files() -> list[ArtifactFile]:
    """Every format of the scenario's variants, packed.pt among them; the smallest one loses 17 points."""
    return [
        file("l1-unstructured", "none", 0, "dense.pt", 1000),
        file("l1-unstructured", "none", 0, "model.onnx", 1010),
        file("l1-structured", "finetune", 50, "model.onnx", 500),
        file("l1-structured", "finetune", 50, "packed.pt", 200),
        file("global-l1", "finetune", 70, "packed.pt", 150),
        file("l1-unstructured", "none", 90, "packed.pt", 50),
    ]


def run_results(records: list[Record], files: list[ArtifactFile] | None = None) -> RunResults:
    """Records and files with their ratios to dense attached, as the measure stage writes them."""
    files = scenario_files() if files is None else files
    attach_ratios_to_dense(records)
    attach_file_ratios(files)
    return RunResults(Path("results.json"), {}, {"tolerance": TOLERANCE}, records, files)


def without_accuracy(records: list[Record]) -> list[Record]:
    """The same measurements with accuracy not measurable."""
    return [replace(r, accuracy=None, accuracy_note=CIFAR_NOTE, test_images=None) for r in records]


def candidate(accuracy: float | None, cost: float, ratio: float = 50) -> Candidate:
    return Candidate(MODEL, "l1-unstructured", "none", ratio, "torch-dense", "dense.pt", accuracy, cost, None)


def test_pareto_front_drops_dominated_points_and_keeps_ties():
    cheap, good, tied = candidate(90.0, 1.0, 90), candidate(97.0, 3.0, 50), candidate(97.0, 3.0, 60)
    dominated = [candidate(89.0, 2.0), candidate(97.0, 4.0), candidate(90.0, 1.5)]
    front = pareto_front([good, *dominated, cheap, tied])
    assert front == [cheap, good, tied]


def test_pareto_front_leaves_out_points_without_accuracy():
    assert pareto_front([candidate(None, 0.1), candidate(95.0, 1.0)]) == [candidate(95.0, 1.0)]


def test_ship_this_picks_the_fastest_within_tolerance_not_a_faster_one_outside_it():
    verdict = ship_this(run_results(scenario_records()), MODEL, TOLERANCE)
    chosen = verdict.fastest.candidate
    assert (chosen.method, chosen.recovery, chosen.ratio, chosen.runtime) == ("l1-structured", "finetune", 50,
                                                                              "ort-dense")
    assert verdict.fastest.accuracy_claim and verdict.dense_accuracy == DENSE_ACCURACY


def test_ship_this_takes_the_faster_candidate_once_tolerance_admits_it():
    verdict = ship_this(run_results(scenario_records()), MODEL, tolerance=20.0)
    assert (verdict.fastest.candidate.ratio, verdict.fastest.candidate.runtime) == (90, "torch-sparse")


def counted(macs: int, *args, **kwargs) -> Record:
    """A record of `macs` multiply-accumulates per image."""
    return replace(record(*args, **kwargs), macs=macs)


def test_a_pruned_model_on_a_runtime_that_multiplies_its_zeros_is_never_the_speed_choice():
    records = [counted(100, "l1-unstructured", "none", 0, "torch-dense", "dense.pt", DENSE_ACCURACY, 1.0, 1000),
               counted(100, "l1-unstructured", "none", 0, "ort-dense", "model.onnx", DENSE_ACCURACY, 0.5, 1010),
               counted(100, "global-l1", "bn", 50, "ort-dense", "model.onnx", 96.8, 0.4, 1010)]
    verdict = ship_this(run_results(records, []), MODEL, TOLERANCE)
    assert (verdict.fastest.candidate.ratio, verdict.fastest.candidate.runtime) == (0, "ort-dense")
    assert any(note.startswith("1 figure(s) not chosen: the dense computation under another name")
               for note in verdict.notes)


def test_a_file_that_onnxruntime_densifies_is_never_the_speed_choice_over_ort_dense():
    records = [counted(100, "l1-unstructured", "none", 0, "torch-dense", "dense.pt", DENSE_ACCURACY, 1.0, 1000),
               counted(100, "l1-unstructured", "none", 0, "ort-dense", "model.onnx", DENSE_ACCURACY, 0.5, 1010),
               counted(100, "l1-unstructured", "none", 0, "ort-sparse", "model.sparse.onnx", DENSE_ACCURACY, 0.45,
                       2000)]
    verdict = ship_this(run_results(records, []), MODEL, TOLERANCE)
    assert verdict.fastest.candidate.runtime == "ort-dense"


def test_fewer_macs_or_a_runtime_that_skips_zeros_can_be_the_speed_choice():
    dense = [counted(100, "l1-unstructured", "none", 0, "torch-dense", "dense.pt", DENSE_ACCURACY, 1.0, 1000),
             counted(100, "l1-unstructured", "none", 0, "ort-dense", "model.onnx", DENSE_ACCURACY, 0.5, 1010)]
    structured = counted(25, "l1-structured", "bn", 50, "ort-dense", "model.onnx", 96.5, 0.3, 500)
    sparse = counted(100, "l1-unstructured", "none", 90, "torch-sparse", "sparse_csr.pt", 96.5, 0.2, 300,
                     paired_ms=1.0)
    by_macs = ship_this(run_results([*dense, structured], []), MODEL, TOLERANCE).fastest.candidate
    by_zeros = ship_this(run_results([*dense, sparse], []), MODEL, TOLERANCE).fastest.candidate
    assert (by_macs.method, by_macs.runtime) == ("l1-structured", "ort-dense")
    assert (by_zeros.method, by_zeros.runtime) == ("l1-unstructured", "torch-sparse")


def test_ship_this_never_chooses_an_unstable_latency_and_says_so():
    verdict = ship_this(run_results(scenario_records()), MODEL, TOLERANCE)
    assert verdict.fastest.candidate.runtime != "torch-auto"
    assert any("1 faster batch-1 figure(s) never chosen as unstable" in note for note in verdict.notes)


def test_ship_this_skips_failed_records():
    records = scenario_records()
    records[-1] = replace(records[-1], accuracy=DENSE_ACCURACY, latency_ms={"1": stats(0.01)})  # figures of a crash
    verdict = ship_this(run_results(records), MODEL, TOLERANCE)
    assert verdict.fastest.candidate.runtime == "ort-dense"


def test_ship_this_picks_the_smallest_file_within_tolerance_including_packed_pt():
    smallest = ship_this(run_results(scenario_records()), MODEL, TOLERANCE).smallest
    chosen = smallest.candidate
    assert (chosen.artifact, chosen.method, chosen.ratio, chosen.cost) == ("packed.pt", "global-l1", 70, 150)
    assert chosen.accuracy == 96.8  # from the variant's only record, whose latency is unstable
    assert smallest.bytes_to_dense == 0.15


def test_latency_choice_is_compared_with_torch_dense_paired_and_ort_dense_unpaired():
    fastest = ship_this(run_results(scenario_records()), MODEL, TOLERANCE).fastest
    assert fastest.p50_to_torch_dense == 0.3 / 1.2 and fastest.p50_torch_paired
    assert fastest.p50_to_ort_dense == 0.3 / 0.5 and fastest.ort_pairing == ORT_UNPAIRED
    assert fastest.bytes_to_dense == 0.5


def test_latency_choice_without_a_dense_pair_is_compared_with_the_torch_dense_record():
    records = scenario_records()
    records[2].paired_dense_ms.clear()
    fastest = ship_this(run_results(records), MODEL, TOLERANCE).fastest
    assert fastest.p50_to_torch_dense == 0.3 / 1.0 and not fastest.p50_torch_paired


def test_beats_ort_dense_when_the_choice_is_faster_than_ort_dense_at_ratio_0():
    assert ship_this(run_results(scenario_records()), MODEL, TOLERANCE).beats_ort_dense


def test_does_not_beat_ort_dense_when_ort_dense_itself_is_the_fastest_within_tolerance():
    records = scenario_records()
    records[1].latency_ms["1"] = stats(0.25)
    verdict = ship_this(run_results(records), MODEL, TOLERANCE)
    assert (verdict.fastest.candidate.ratio, verdict.fastest.candidate.runtime) == (0, "ort-dense")
    assert verdict.fastest.p50_to_ort_dense == 1.0 and not verdict.beats_ort_dense


def test_without_accuracy_the_verdict_says_why_and_chooses_on_cost_alone():
    verdict = ship_this(run_results(without_accuracy(scenario_records())), MODEL, TOLERANCE)
    assert verdict.dense_accuracy is None and not verdict.beats_ort_dense
    assert "cannot choose within 1 points of dense accuracy" in verdict.notes[0] and CIFAR_NOTE in verdict.notes[0]
    assert not verdict.fastest.accuracy_claim and verdict.fastest.candidate.cost == 0.1
    assert not verdict.smallest.accuracy_claim and verdict.smallest.candidate.cost == 50


def test_ship_lines_state_the_choice_its_accuracy_and_its_ratios():
    head, notes = ship_lines(ship_this(run_results(scenario_records()), MODEL, TOLERANCE))
    assert head.startswith(f"**{MODEL}**: ship `l1-structured+finetune r50 model.onnx` on ort-dense: "
                           "96.50% (dense 97.00%), batch-1 p50 0.300 ms, 0.25x torch dense, 0.6x ORT dense "
                           "(unpaired)")
    assert head.endswith("smallest file: `packed.pt` of global-l1+finetune r70, 150B (0.15x dense.pt), 96.80%")
    assert "unstable" in notes


def test_ship_lines_mark_choices_made_without_accuracy():
    head, notes = ship_lines(ship_this(run_results(without_accuracy(scenario_records())), MODEL, TOLERANCE))
    assert "fastest, NO accuracy claim: `l1-unstructured+none r90 sparse_csr.pt`" in head
    assert "accuracy not compared" in head and head.endswith("NO accuracy claim")
    assert "cannot choose within" in notes


def test_fastest_is_ranked_by_the_ratio_to_dense_not_by_absolute_p50():
    """A process that ran fast as a whole shows a low p50 but twice its own dense pair; the paired ratio wins."""
    records = [record("l1-unstructured", "none", 0, "torch-dense", "dense.pt", DENSE_ACCURACY, 1.0, 1000),
               record("global-l1", "finetune", 90, "torch-dense", "dense.pt", 96.5, 0.2, 1000, paired_ms=0.1),
               record("l1-structured", "finetune", 50, "torch-dense", "dense.pt", 96.5, 0.3, 500, paired_ms=1.0)]
    attach_ratios_to_dense(records)
    results = RunResults(Path("results.json"), {}, {}, records, [])
    assert ship_this(results, MODEL, TOLERANCE).fastest.candidate.method == "l1-structured"


def test_a_stable_figure_slower_than_torch_dense_is_never_the_fastest_choice():
    """Dense on torch and ORT unstable, torch the faster, the only stable figure 1.7x torch dense: no speed
    choice, and why."""
    records = [record("l1-unstructured", "none", 0, "torch-dense", "dense.pt", DENSE_ACCURACY, 1.0, 1000,
                      unstable=True),
               record("l1-unstructured", "none", 0, "ort-dense", "model.onnx", DENSE_ACCURACY, 1.3, 1010,
                      unstable=True),
               record("l1-unstructured", "none", 50, "torch-masked", "masked.pt", 96.9, 1.7, 2000)]
    verdict = ship_this(run_results(records, []), MODEL, TOLERANCE)
    assert verdict.fastest is None
    assert any("every stable batch-1 figure is slower than the fastest dense figure, torch-dense at ratio 0"
               in n for n in verdict.notes)


def _worked_example_records(ort_unstable: bool) -> list[Record]:
    """As in the README's worked example: torch-dense 0.64 ms, ort-dense 0.09 ms (flagged or not), and a
    stable torch-auto record at ratio 0 as fast as torch-dense, paired."""
    return [record("l1-unstructured", "none", 0, "torch-dense", "dense.pt", DENSE_ACCURACY, 0.64, 1000,
                   unstable=True),
            record("l1-unstructured", "none", 0, "ort-dense", "model.onnx", DENSE_ACCURACY, 0.09, 1010,
                   unstable=ort_unstable),
            record("l1-unstructured", "none", 0, "torch-auto", "sparse_csr.pt", DENSE_ACCURACY, 0.64, 1100,
                   paired_ms=0.64)]


def test_a_choice_slower_than_a_flagged_ort_dense_figure_is_not_the_fastest_choice():
    verdict = ship_this(run_results(_worked_example_records(ort_unstable=True), []), MODEL, TOLERANCE)
    assert verdict.fastest is None
    assert any("every stable batch-1 figure is slower than the fastest dense figure, ort-dense at ratio 0"
               in n for n in verdict.notes)


def test_the_note_says_a_flagged_ort_dense_baseline_still_counts_as_a_measurement():
    verdict = ship_this(run_results(_worked_example_records(ort_unstable=True), []), MODEL, TOLERANCE)
    assert any("ort-dense at ratio 0 (0.0900 ms, flagged unstable (IQR > 10% of median: noisy, not a finding) "
               "but a measurement all the same)" in n for n in verdict.notes)


def test_a_stable_ort_dense_faster_than_torch_dense_is_chosen_over_slower_torch_figures():
    verdict = ship_this(run_results(_worked_example_records(ort_unstable=False), []), MODEL, TOLERANCE)
    assert (verdict.fastest.candidate.runtime, verdict.fastest.candidate.ratio) == ("ort-dense", 0)


def test_a_choice_faster_than_both_dense_figures_stands_against_a_flagged_ort_baseline():
    records = [*_worked_example_records(ort_unstable=True),
               record("l1-structured", "bn", 50, "ort-dense", "model.onnx", 96.5, 0.05, 500, paired_ms=0.6)]
    verdict = ship_this(run_results(records, []), MODEL, TOLERANCE)
    assert (verdict.fastest.candidate.method, verdict.fastest.candidate.runtime) == ("l1-structured", "ort-dense")
    assert verdict.fastest.p50_to_ort_dense == 0.05 / 0.09
    assert any(n.startswith("the speed choice is held to the fastest dense figure, ort-dense at ratio 0 "
                            "(0.0900 ms, flagged unstable") for n in verdict.notes)
