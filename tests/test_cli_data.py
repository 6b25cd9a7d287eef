"""`python -m bench` on a user file with --data npz:FILE: accuracy in every stage, training and recoveries on
the file's images, records naming the data; each bad file is one line on stderr and exit status 2."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from bench.cli import main
from export.exporter import artifact_dir
from prune import models
from prune.config import STUDY, Variant, checkpoint_path, sweep_path
from prune.io import file_sha256, load_checkpoint
from prune.presets import DEFAULT_RECOVERIES, get_preset
from prune.sources import ModelSource, build_source, register_source
from prune.user_data import data_spec

USER_FILE = '''
from torch import nn


def build():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, 3))
'''


@pytest.fixture
def model(tmp_path) -> str:
    (tmp_path / "net.py").write_text(USER_FILE)
    return f"{tmp_path / 'net.py'}:build"


def _write_npz(path, labels: np.ndarray, shape=(3, 6, 6)) -> str:
    """uint8 images whose brightness follows the label (a learnable task); returns `npz:path`."""
    noise = np.random.default_rng(0).integers(0, 60, (len(labels), *shape))
    np.savez(path, x=(noise + 80 * labels[:, None, None, None]).astype(np.uint8), y=labels)
    return f"npz:{path}"


@pytest.fixture
def data(tmp_path) -> str:
    return _write_npz(tmp_path / "digits.npz", np.arange(60) % 3)


@pytest.fixture
def run(tmp_path, capsys):
    """run(*args) -> (exit status, stderr) of `python -m bench` at the smoke preset, --out in tmp_path."""

    def call(*args: str) -> tuple[int, str]:
        status = main([*args, "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data"),
                       "--preset", "smoke", "--device", "cpu", "--input-shape", "3,6,6"])
        return status, capsys.readouterr().err

    return call


def test_all_stages_train_measure_and_report_accuracy_on_the_users_data(run, tmp_path, model, data):
    status, err = run("all", "--models", model, "--data", data, "--ratios", "0,50", "--methods",
                      "l1-unstructured", "--runtimes", "torch-dense,ort-dense,ort-int8")
    assert status == 0, err
    out = tmp_path / "out"
    sweep = json.loads(sweep_path(out, model).read_text())
    assert sweep["trained"] and sweep["dense_accuracy"] is not None and sweep["accuracy_note"] is None
    assert sweep["dataset"] == {"source": "npz:digits.npz", "train_size": 48, "test_size": 12}
    assert sweep["source"]["data"] == "npz:digits.npz" and len(sweep["source"]["data_sha256"]) == 64
    for recovery in ("bn", "finetune"):
        recovered = json.loads(sweep_path(out, model, Variant("l1-unstructured", recovery)).read_text())
        assert all(r["accuracy"] is not None for r in recovered["records"])
    manifest = json.loads((artifact_dir(out, model, 50) / "manifest.json").read_text())
    assert manifest["dataset"] == "npz:digits.npz" and manifest["accuracy"] is not None
    records = [r for r in json.loads((out / "results.json").read_text())["records"] if not r["error"]]
    assert {r["runtime"] for r in records} == {"torch-dense", "ort-dense", "ort-int8"}
    assert all(r["dataset"] == "npz:digits.npz" and r["accuracy"] is not None for r in records)
    assert "training images of npz:digits.npz" in json.dumps(manifest)


def test_a_checkpoint_with_data_is_evaluated_not_retrained(run, tmp_path, model, data):
    torch.save(build_source(ModelSource(model, (3, 6, 6))).state_dict(), tmp_path / "weights.pt")
    status, err = run("prune", "--models", model, "--data", data, "--ratios", "0", "--methods",
                      "l1-unstructured", "--recovery", "none", "--checkpoint", str(tmp_path / "weights.pt"))
    assert status == 0, err
    sweep = json.loads(sweep_path(tmp_path / "out", model, STUDY).read_text())
    assert sweep["dense_accuracy"] is not None and sweep["records"][0]["accuracy"] == sweep["dense_accuracy"]
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_data_enables_the_bn_and_finetune_recoveries_of_a_source(model, data):
    with_data = register_source(ModelSource(model, (3, 6, 6), data=data_spec(data, (3, 6, 6))))
    assert get_preset("quick").settings(with_data.name).compare_recoveries == DEFAULT_RECOVERIES
    models.RESOLVED.clear()
    without = register_source(ModelSource(model, (3, 6, 6)))
    assert get_preset("quick").settings(without.name).compare_recoveries == ("none",)


@pytest.mark.parametrize(("arrays", "expected"), [
    (None, "no such file or folder"),
    ({"x": np.zeros((4, 3, 6, 6), dtype=np.uint8)}, "no array 'y'"),
    ({"x": np.zeros((4, 3, 5, 6), dtype=np.uint8), "y": np.zeros(4)}, "samples are 3,5,6, model"),
    ({"x": np.zeros((4, 3, 6, 6), dtype=np.uint8), "y": np.array([0, 1, 2, 3])}, "labels 0-3 outside model"),
])
def test_a_bad_data_file_exits_two_with_one_line_and_writes_nothing(run, tmp_path, model, arrays, expected):
    if arrays is not None:
        np.savez(tmp_path / "bad.npz", **arrays)
    status, err = run("prune", "--models", model, "--data", f"npz:{tmp_path / 'bad.npz'}")
    assert status == 2
    assert expected in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_data_without_a_model_source_exits_two(run, data):
    status, err = run("prune", "--models", "lenet5", "--data", data)
    assert status == 2 and "apply to model sources only" in err


def test_export_in_spawned_worker_processes_reads_the_users_data(run, tmp_path, model, data, force_parallel_export):
    options = ("--models", model, "--data", data, "--ratios", "50", "--methods", "l1-unstructured",
               "--recovery", "none")
    assert run("prune", *options)[0] == 0
    force_parallel_export()
    status, err = run("export", *options)
    assert status == 0, err
    manifest = json.loads((artifact_dir(tmp_path / "out", model, 50) / "manifest.json").read_text())
    assert manifest["dataset"] == "npz:digits.npz" and manifest["accuracy"] is not None


def _pets(root, classes: int) -> str:
    """`classes` class folders of four 9x7 RGB PNGs each, brighter by class; returns its --data."""
    for label in range(classes):
        folder = root / f"class{label}"
        folder.mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (9, 7), (60 * label + i, 60 * label, 0)).save(folder / f"{i}.png")
    return f"imagefolder:{root}"


def test_prune_reads_an_image_folder_at_the_input_shape(run, tmp_path, model):
    status, err = run("prune", "--models", model, "--data", _pets(tmp_path / "pets", 3), "--ratios", "0",
                      "--methods", "l1-unstructured", "--recovery", "none")
    assert status == 0, err
    sweep = json.loads(sweep_path(tmp_path / "out", model).read_text())
    assert sweep["dataset"] == {"source": "imagefolder:pets", "train_size": 10, "test_size": 2}
    assert sweep["dense_accuracy"] is not None and sweep["source"]["data_sha256"] is None


def test_all_stages_run_on_an_image_folder_and_the_report_shows_its_accuracy(run, tmp_path, model):
    _pets(tmp_path / "pets" / "train", 3)
    data = _pets(tmp_path / "pets" / "test", 3).removesuffix("/test")
    status, err = run("all", "--models", model, "--data", data, "--ratios", "0,50", "--methods",
                      "l1-unstructured", "--recovery", "none", "--runtimes", "torch-dense,ort-dense")
    assert status == 0, err
    out = tmp_path / "out"
    records = json.loads((out / "results.json").read_text())["records"]
    assert {(r["ratio"], r["runtime"]) for r in records} == {(0, "torch-dense"), (0, "ort-dense"),
                                                            (50, "torch-dense"), (50, "ort-dense")}
    assert all(r["dataset"] == "imagefolder:pets" and r["test_images"] == 12 for r in records)
    dense = next(r["accuracy"] for r in records if (r["ratio"], r["runtime"]) == (0, "torch-dense"))
    report = (out / "report.md").read_text()
    assert "Accuracy on 12 test images" in report
    assert f"| imagefolder:pets | 12 / 12 | True | {dense:.2f} |" in report  # the datasets table


def test_an_image_folder_with_more_classes_than_outputs_exits_two(run, tmp_path, model):
    status, err = run("prune", "--models", model, "--data", _pets(tmp_path / "pets", 4))
    assert status == 2
    assert "labels 0-3 outside model" in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_another_data_file_of_the_same_name_retrains_the_source(run, tmp_path, model):
    options = ("prune", "--models", model, "--ratios", "0", "--methods", "l1-unstructured", "--recovery",
               "none")
    data = _write_npz(tmp_path / "digits.npz", np.arange(60) % 3)
    assert run(*options, "--data", data)[0] == 0
    _write_npz(tmp_path / "digits.npz", np.arange(60)[::-1] % 3)
    status, err = run(*options, "--data", data)
    assert status == 0, err
    _, config = load_checkpoint(checkpoint_path(tmp_path / "out", model))
    assert config["source"]["data_sha256"] == file_sha256(tmp_path / "digits.npz")
