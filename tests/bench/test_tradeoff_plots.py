"""Trade-off plots: accuracy against batch-1 latency and file size, Pareto front, and what was left out."""

from __future__ import annotations

from test_verdict import MODEL, run_results, scenario_files, scenario_records, stats, without_accuracy

from bench.report.tradeoff_plots import plot_tradeoffs

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_writes_two_pngs_accuracy_vs_latency_then_size(tmp_path):
    latency, size = plot_tradeoffs(run_results(scenario_records()), MODEL, tmp_path)
    assert (latency.kind, size.kind) == ("latency", "size")
    assert latency.path == tmp_path / f"{MODEL}_accuracy_vs_latency.png"
    assert size.path == tmp_path / f"{MODEL}_accuracy_vs_size.png"
    assert all(p.path.read_bytes().startswith(PNG_SIGNATURE) for p in (latency, size))


def test_latency_plot_draws_stable_measured_points_and_counts_the_rest(tmp_path):
    latency, _ = plot_tradeoffs(run_results(scenario_records()), MODEL, tmp_path)
    assert latency.points == 4  # torch and ORT dense, structured r50, unstructured r90
    assert latency.front == 3  # torch dense is as accurate as ORT dense but slower
    assert latency.left_out == {"failed": 1, "unstable": 1}
    assert "Left out: 1 failed, 1 unstable (unstable: IQR > 10% of median" in latency.caption


def test_size_plot_draws_every_file_format_including_packed_pt(tmp_path):
    _, size = plot_tradeoffs(run_results(scenario_records()), MODEL, tmp_path)
    assert size.points == len(scenario_files()) and size.left_out == {}
    assert size.front == 3  # packed.pt at r90, r70 and dense.pt: the rest are larger at no better accuracy
    assert "Left out: none." in size.caption


def test_caption_says_when_the_dense_model_is_not_drawn(tmp_path):
    records = scenario_records()
    records[0].latency_ms["1"] = stats(1.0, unstable=True)
    latency, size = plot_tradeoffs(run_results(records), MODEL, tmp_path)
    assert "No star: the dense model (torch-dense at ratio 0) is among the points left out." in latency.caption
    assert "Star: the dense model (dense.pt at ratio 0)." in size.caption


def test_caption_says_what_accuracy_was_measured_on(tmp_path):
    latency, size = plot_tradeoffs(run_results(scenario_records()), MODEL, tmp_path)
    assert latency.caption.endswith("Accuracy on 1,000 test images of mnist.")
    assert size.caption.endswith("Accuracy on 1,000 test images of mnist.")


def test_without_accuracy_no_file_is_written_and_the_reason_is_given(tmp_path):
    plots = plot_tradeoffs(run_results(without_accuracy(scenario_records())), MODEL, tmp_path)
    assert [p.path for p in plots] == [None, None] and list(tmp_path.iterdir()) == []
    assert plots[0].left_out == {"failed": 1, "unstable": 1, "no accuracy": 4}
    assert all("nothing to draw" in p.reason and "CIFAR-10 not on disk" in p.reason for p in plots)
