"""`run_report`: console report, report.md and plots from results.json alone."""

from __future__ import annotations

import json

import pytest
from report_fixtures import CIFAR_NOTE, make_record, study_records, write_results
from rich.console import Console

from bench.markdown_report import commands
from bench.records import attach_ratios_to_dense
from bench.report import run_report
from bench.report_data import load_results
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


def test_console_report_has_every_model_and_the_findings(rendered):
    _, text = rendered
    assert "lenet5 - file size" in text and "resnet18 - p50 latency at batch 64" in text
    assert "Findings" in text and "is 2.0x the file size" in text


def test_console_report_fits_120_columns(rendered):
    _, text = rendered
    assert max(len(line) for line in text.splitlines()) <= 120


def test_console_marks_best_cell(rendered):
    _, text = rendered
    row_90 = next(line for line in text.splitlines() if "lenet5" not in line and line.strip().startswith("90")
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
    assert f"python -m bench report --out {out}" in text


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
    run_report(tmp_path, console)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 70
    assert "(%), cont." in text  # the file-size table went on in a second column group
