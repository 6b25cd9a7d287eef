"""Measuring and reporting more than the study's variant: a structured model beside the dense one."""

from __future__ import annotations

import io
import shutil
from dataclasses import replace

import pytest
import torch
from rich.console import Console

import bench.harness.measure
from bench.config import MeasureConfig
from bench.harness.measure import COMPARE_RUNTIMES, run_measure
from bench.report.methods import methods_table
from bench.report.stage import run_report
from bench.report.data import load_results
from report_fixtures import make_record
from export.exporter import artifact_dir, export_one
from export.verify import EvalData
from prune.config import STUDY, RunConfig, Variant, pruned_path
from prune.io import save_checkpoint
from prune.methods import get_method
from prune.models import build_model

MODEL = "lenet300_100"
STRUCTURED = Variant("l1-structured", "none")


@pytest.fixture(scope="module")
def measured(exported, tmp_path_factory, images):
    """The dense LeNet-300-100 and its 50% l1-structured model, exported and measured on every CPU runtime."""
    out = tmp_path_factory.mktemp("variants")
    shutil.copytree(artifact_dir(exported, MODEL, 0), artifact_dir(out, MODEL, 0))
    torch.manual_seed(0)
    model = get_method(STRUCTURED.method).prune(build_model(MODEL).eval(), 50, 0, MODEL)
    save_checkpoint(pruned_path(out, MODEL, 50, STRUCTURED), model.state_dict(), {"model": MODEL, "ratio": 50})
    export_one(out, MODEL, 50, images(MODEL), STRUCTURED)
    cfg = RunConfig(models=(MODEL,), ratios=(0,), out=out, preset="smoke", methods=(STRUCTURED.method,),
                    recoveries=(STRUCTURED.recovery,), compare_ratios=(50,))

    def load(model, data_dir, download, seed, limit):
        data = images(model)
        return EvalData(data.x[:limit], data.y[:limit], data.source, data.note)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bench.harness.measure, "load_eval_data", load)
        records = run_measure(cfg, MeasureConfig(), Console(file=io.StringIO()))
    return out, records


def test_a_structured_model_is_measured_on_the_dense_runtimes_only(measured):
    _, records = measured
    structured = [r for r in records if (r.method, r.recovery) == (STRUCTURED.method, STRUCTURED.recovery)]
    dense_runtimes = ("torch-dense", "ort-dense", "ort-int8")
    assert [r.runtime for r in structured] == [r for r in dense_runtimes if r in COMPARE_RUNTIMES]
    assert all(r.ratio == 50 and not r.failed for r in structured)
    assert {r.runtime for r in records if (r.method, r.recovery) == (STUDY.method, STUDY.recovery)} >= {
        "torch-masked", "torch-sparse", "torch-auto", "ort-sparse"}


def test_records_carry_their_variant_and_macs_and_ratios_to_the_study_dense_model(measured):
    _, records = measured
    dense = next(r for r in records if r.runtime == "torch-dense" and r.ratio == 0)
    structured = next(r for r in records if r.runtime == "torch-dense" and r.method == STRUCTURED.method)
    assert dense.macs == 266_200 and structured.macs < 0.55 * dense.macs
    assert structured.to_dense["file_bytes"] < 0.55
    assert structured.to_dense["param_bytes"] == pytest.approx(structured.param_bytes / dense.param_bytes)
    assert structured.accuracy is not None and structured.max_abs_diff is not None


def test_the_methods_table_lists_the_dense_model_first_then_each_variant(measured):
    out, _ = measured
    table = methods_table(load_results(out), MODEL)
    assert table.rows == ["l1-unstructured+none 0", "l1-structured+none 50"]
    macs = next(c for c in table.columns if c.header == "MACs")
    assert macs.cells[0].text == "1.0x" and macs.cells[1].value < 0.55


def test_the_report_shows_the_study_tables_the_methods_and_a_ship_this_line(measured, tmp_path):
    out, _ = measured
    run = tmp_path / "run"
    shutil.copytree(out, run)
    console = Console(file=io.StringIO(), width=120)
    run_report(run, console)
    text = (run / "report.md").read_text()
    assert "## Ship this" in text and f"**{MODEL}**:" in text
    assert "## Methods and recovery" in text and "l1-structured+none 50" in text
    assert "Ship this" in console.file.getvalue()
    study_table = text[text.index(f"## {MODEL}"):]
    assert "l1-structured" not in study_table  # the study's own tables hold its variant only


def test_the_reproducing_config_keeps_per_model_preset_recoveries_and_compare_ratios():
    """Left to the preset, they differ per model (the LeNets' none,bn,finetune at 50,90,95, the ResNets' none,bn
    at 50): the report's command must not freeze one model's lists onto the others."""
    records = [make_record("lenet5", 0.0, "torch-dense"),
               replace(make_record("lenet5", 50.0, "torch-dense"), method="global-l1", recovery="finetune")]
    preset = bench.harness.measure.covered_config({"recoveries": None, "compare_ratios": None}, records, [])
    given = bench.harness.measure.covered_config({"recoveries": ["none", "finetune"], "compare_ratios": [50, 90]},
                                                 records, [])
    assert (preset["recoveries"], preset["compare_ratios"]) == (None, None)
    assert (given["recoveries"], given["compare_ratios"]) == (["none", "finetune"], [50.0])
