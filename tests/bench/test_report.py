"""`run_report`: console report, report.md and plots from results.json alone."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from report_fixtures import CIFAR_NOTE, make_record, study_records, write_results
from rich.console import Console

from bench.report.console import print_detail
from bench.report.markdown import commands
from bench.report.plots import accuracy_figure, latency_figure
from bench.records import attach_ratios_to_dense
from bench.report.stage import run_report
from bench.report.data import RunResults, load_results
from bench.report.detail import GZIP_NOTE
from bench.report.tables import UNSTABLE_LEGEND
from bench.report.study_reference import StudyCurve
from prune.errors import ArtifactError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """One report over the study records: (out dir, console text)."""
    out = tmp_path_factory.mktemp("run")
    write_results(out, study_records())
    console = Console(record=True, width=120)
    run_report(out, console)
    return out, console.export_text()


@pytest.fixture(scope="module")
def detail(rendered):
    """The full tables of the same run as `--detail` prints them: console text."""
    out, _ = rendered
    console = Console(record=True, width=120)
    print_detail(load_results(out), console)
    return console.export_text()


def test_console_report_has_every_model_and_the_findings(rendered):
    _, text = rendered
    assert "lenet5" in text and "resnet18" in text
    assert "Findings" in text and "is 2.0x the file size" in text


def test_console_detail_has_every_full_table(detail):
    assert "lenet5 - file size" in detail and "resnet18 - p50 latency at batch 64" in detail


def test_console_report_fits_120_columns(rendered):
    _, text = rendered
    assert max(len(line) for line in text.splitlines()) <= 120


def test_console_detail_marks_best_cell(detail):
    row_90 = next(line for line in detail.splitlines() if "lenet5" not in line and line.strip().startswith("90")
                  and "49.2k" in line)
    assert "49.2k 0.2x*" in row_90


def test_markdown_report_has_models_findings_reason_and_plot_links(rendered):
    out, _ = rendered
    text = (out / "report.md").read_text()
    assert "## lenet5" in text and "## resnet18" in text
    assert f"Accuracy n/a: {CIFAR_NOTE}" in text
    assert "**File size.**" in text and "holds 2.0x the parameter bytes" in text
    assert "**97.10**" not in text and "**98.90**" in text
    for name in ("accuracy_vs_ratio.png", "bytes_vs_ratio.png", "latency_vs_ratio.png"):
        assert f"(plots/{name})" in text


def test_markdown_report_states_preset_environment_and_commands(rendered):
    out, _ = rendered
    text = (out / "report.md").read_text()
    assert "Preset: **quick**" in text and "| torch | 2.14.1 |" in text
    assert "python -m bench report --out ." in text  # the run directory is where report.md is


def test_plots_are_valid_pngs(rendered):
    out, _ = rendered
    for name in ("accuracy_vs_ratio.png", "bytes_vs_ratio.png", "latency_vs_ratio.png"):
        data = (out / "plots" / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000


def test_commands_rebuild_the_run_options(tmp_path):
    config = {"models": ["lenet5"], "ratios": [0.0, 90.0], "preset": "quick", "seed": 0,
              "measure": {"runtimes": None, "batch_size": 64, "threads": 2}}
    expected = ("python -m bench all --models lenet5 --ratios 0,90 --preset quick --seed 0 --batch-size 64 "
                f"--threads 2 --out {tmp_path}")
    assert commands(config, tmp_path)[0] == expected


def test_missing_results_is_an_artifact_error(tmp_path):
    with pytest.raises(ArtifactError, match="run python -m bench measure first"):
        run_report(tmp_path, Console(record=True, width=120))


def test_drifted_schema_is_an_artifact_error(tmp_path):
    path = write_results(tmp_path, study_records())
    data = json.loads(path.read_text())
    data["records"][0]["surprise"] = 1
    path.write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="does not match the schema"):
        load_results(tmp_path)


def failed_run(tmp_path):
    """The study records with lenet5 at 90% through ort-dense failed, as the measure stage records it."""
    records = study_records()
    broken = make_record("lenet5", 90.0, "ort-dense")
    broken.param_bytes = broken.peak_rss_bytes = broken.accuracy = None
    broken.latency_ms = {}
    broken.accuracy_note = "measurement failed"
    broken.error = "child timed out after 300 s"
    records = [broken if r.key == broken.key else r for r in records]
    attach_ratios_to_dense(records)
    write_results(tmp_path, records)
    console = Console(record=True, width=120)
    run_report(tmp_path, console)
    return (tmp_path / "report.md").read_text(), console.export_text()


def test_failed_measurement_renders_as_dash(tmp_path):
    text, _ = failed_run(tmp_path)
    assert "| 90 | 0.250 1.2x | 0.200 1.0x | **0.140 0.7x** | - |" in text  # batch-1 latency
    assert "| 90 | 482k 2.0x | 241k 1.0x | **60.3k 0.25x** | - |" in text  # parameter bytes


def test_failed_measurement_is_listed_with_its_error(tmp_path):
    text, console_text = failed_run(tmp_path)
    assert "- lenet5 at 90% ort-dense: child timed out after 300 s" in text
    assert "lenet5 90% ort-dense: child timed out after 300 s" in console_text
    assert "accuracy n/a: measurement failed" not in text


def test_wide_tables_split_into_column_groups_on_a_narrow_console(tmp_path):
    write_results(tmp_path, study_records())
    console = Console(record=True, width=70)
    print_detail(load_results(tmp_path), console)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 70
    assert "(%), cont." in text  # the file-size table went on in a second column group


def test_console_legend_explains_the_unstable_mark(rendered):
    _, text = rendered
    assert "IQR > 10% of median: noisy, not a finding" in " ".join(text.split())


def test_markdown_states_the_unstable_mark_gzip_level_and_test_images(rendered):
    out, _ = rendered
    text = (out / "report.md").read_text()
    assert UNSTABLE_LEGEND in text and GZIP_NOTE in text
    assert "**lenet5 - gzip size" in text
    assert "Accuracy on 1,000 test images." in text and "Accuracy not measured." in text


def test_markdown_latency_detail_lists_p95_iqr_and_throughput(rendered):
    out, _ = rendered
    text = (out / "report.md").read_text()
    assert "| batch | runtime | ratio % | p50 ms | x dense | p95 ms | IQR ms | images/s | reps |" in text
    assert "| 64 | torch-dense | 0 | 4.00 | 1.0x | 4.80 | 0.200 (5%) | 16,000 | 20 |" in text


def test_markdown_shows_no_absolute_machine_path(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    data_dir = home / ".cache" / "prunebench" / "data"
    records = study_records()
    for r in records:
        if r.accuracy_note:
            r.accuracy_note = f"CIFAR-10 not found: no {data_dir}/cifar-10-batches-py"
    out = tmp_path / "run"
    out.mkdir()
    write_results(out, records, {"out": "/tmp/ref3", "data_dir": str(data_dir)})
    run_report(out, Console(record=True, width=120))
    text = (out / "report.md").read_text()
    assert "| out | . |" in text and "| data_dir | ~/.cache/prunebench/data |" in text
    assert "Accuracy n/a: CIFAR-10 not found: no ~/.cache/prunebench/data/cifar-10-batches-py" in text
    assert str(tmp_path) not in text and "/tmp/" not in text


def figure_results(records) -> RunResults:
    return RunResults(Path("results.json"), {}, {}, records, [])


def test_latency_plot_draws_only_the_batch_sizes_each_model_was_timed_at():
    records = study_records()
    for r in records:
        if r.model == "resnet18":
            r.latency_ms = {"1": r.latency_ms["1"], "8": r.latency_ms["64"]}
    fig = latency_figure(figure_results(records))
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    plt.close(fig)
    assert titles == ["lenet5, batch 1", "lenet5, batch 64", "resnet18, batch 1", "resnet18, batch 8"]


def test_accuracy_plot_overlays_the_study_curve_dashed():
    curve = StudyCurve("lenet5", "Table 1", {0.0: 99.1, 50.0: 99.0, 90.0: 95.5})
    fig = accuracy_figure(figure_results(study_records()), {"lenet5": curve})
    study = next(line for line in fig.axes[0].lines if line.get_label() == "lenet5, study Table 1")
    plt.close(fig)
    assert study.get_linestyle() == "--" and list(study.get_ydata()) == [99.1, 99.0, 95.5]


def test_accuracy_plot_without_study_numbers_says_so_under_the_axes():
    fig = accuracy_figure(figure_results(study_records()), {})
    caption = " ".join(t.get_text().replace("\n", " ") for t in fig.texts)
    in_axes = fig.axes[0].texts
    plt.close(fig)
    assert "study's curves (Table 1: MNIST, Table 2: CIFAR-10) are not drawn" in caption
    assert "No measured accuracy for resnet18" in caption and not in_axes
