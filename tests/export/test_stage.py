"""The export stage end to end: every model x ratio, resume, and user errors through the CLI (exit 2)."""

import pytest
from rich.console import Console

import export.exporter

from bench.cli import main as cli
from export.formats import FORMATS
from export.stage import artifact_dir, run_export, worker_count
from prune.config import RunConfig, pruned_path
from prune.errors import ArtifactError
from prune.presets import eval_limit

pytestmark = pytest.mark.usefixtures("eval_data_from_fixture")


def config(out, models=("lenet300_100", "lenet5"), ratios=(50, 90)) -> RunConfig:
    return RunConfig(models=models, ratios=ratios, out=out)


def test_run_export_writes_every_format_and_a_manifest_per_model_and_ratio(tmp_path, write_pruned):
    cfg = config(tmp_path)
    for model in cfg.models:
        for ratio in cfg.ratios:
            write_pruned(tmp_path, model, ratio)
    manifests = run_export(cfg, Console(record=True, width=200))
    assert [(m["model"], m["ratio"]) for m in manifests] == [(m, r) for m in cfg.models for r in cfg.ratios]
    for model in cfg.models:
        for ratio in cfg.ratios:
            names = {p.name for p in artifact_dir(tmp_path, model, ratio).iterdir()}
            assert names == {fmt.filename for fmt in FORMATS.values()} | {"manifest.json"}


def test_run_export_prints_a_size_summary_and_reports_skipped_directories_on_rerun(tmp_path, write_pruned):
    cfg = config(tmp_path, models=("lenet300_100",), ratios=(90,))
    write_pruned(tmp_path, "lenet300_100", 90)
    run_export(cfg, Console(record=True, width=200))
    console = Console(record=True, width=200)
    run_export(cfg, console)
    text = console.export_text()
    assert "fp32 reference" in text and "packed" in text
    assert "1 of 1 directories were up to date and skipped" in text


def test_missing_pruned_input_fails_before_any_export_telling_to_run_prune(tmp_path, write_pruned):
    write_pruned(tmp_path, "lenet300_100", 50)
    with pytest.raises(ArtifactError, match=r"r90.pt: no pruned lenet300_100 \(l1-unstructured\+none\) at ratio 90; "
                                             r"run `python -m bench prune`"):
        run_export(config(tmp_path, models=("lenet300_100",)), Console(record=True))
    assert not (tmp_path / "artifacts").exists()


def test_the_lenets_export_in_process(tmp_path):
    assert worker_count(config(tmp_path)) == 1


STUDY_ONLY = ("--methods", "l1-unstructured", "--recovery", "none")  # the study's variant: what the fixture wrote


def test_cli_export_exits_zero_and_writes_manifests(tmp_path, write_pruned):
    write_pruned(tmp_path, "lenet5", 90)
    assert cli(["export", "--models", "lenet5", "--ratios", "90", *STUDY_ONLY, "--out", str(tmp_path)]) == 0
    assert (artifact_dir(tmp_path, "lenet5", 90) / "manifest.json").is_file()


def test_cli_export_without_pruned_input_exits_two_naming_the_file(tmp_path, capsys):
    assert cli(["export", "--models", "lenet5", "--ratios", "90", *STUDY_ONLY, "--out", str(tmp_path)]) == 2
    assert "lenet5/r90.pt: no pruned lenet5" in capsys.readouterr().err


def test_cli_export_of_a_truncated_pruned_input_exits_two_naming_the_file(tmp_path, write_pruned, capsys):
    path = write_pruned(tmp_path, "lenet5", 90)
    path.write_bytes(path.read_bytes()[:1000])
    assert cli(["export", "--models", "lenet5", "--ratios", "90", *STUDY_ONLY, "--out", str(tmp_path)]) == 2
    assert "r90.pt: not a readable torch file" in capsys.readouterr().err


def test_cli_export_of_a_pruned_input_for_another_architecture_exits_two(tmp_path, write_pruned, capsys):
    source = write_pruned(tmp_path / "other", "lenet300_100", 90)
    target = pruned_path(tmp_path, "lenet5", 90)
    target.parent.mkdir(parents=True)
    source.replace(target)
    assert cli(["export", "--models", "lenet5", "--ratios", "90", *STUDY_ONLY, "--out", str(tmp_path)]) == 2
    assert "r90.pt: checkpoint of model 'lenet300_100', expected lenet5" in capsys.readouterr().err


def test_export_verifies_on_the_presets_test_images_and_records_how_many(tmp_path, write_pruned, images,
                                                                           monkeypatch):
    asked, served = [], []

    def load(model, data_dir, download, seed, limit):
        asked.append(limit)
        served.append(images(model))
        return served[-1]

    monkeypatch.setattr(export.exporter, "load_eval_data", load)
    write_pruned(tmp_path, "lenet5", 90)
    [manifest] = run_export(RunConfig(models=("lenet5",), ratios=(90,), out=tmp_path, preset="smoke"),
                            Console(record=True, width=200))
    assert asked == [eval_limit("smoke", "lenet5")]
    assert manifest["test_images"] == len(served[0].y)
