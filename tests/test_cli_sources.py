"""`python -m bench` on model sources: torchvision builders and the user's file run through the stages, their
outputs under safe names; each bad input is one line on stderr and exit status 2."""

import json

import pytest
import torch

from bench.cli import main
from export.exporter import artifact_dir
from prune.config import STUDY, base_path, pruned_path, sweep_path
from prune.io import file_sha256
from prune.pruned_io import load_pruned_state
from prune.sources import ModelSource, build_source

USER_FILE = '''
from torch import nn


def build():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 3))


def broken():
    raise ValueError("no such layer size")
'''


@pytest.fixture
def user_file(tmp_path) -> str:
    path = tmp_path / "user_net.py"
    path.write_text(USER_FILE)
    return str(path)


@pytest.fixture
def run(tmp_path, capsys):
    """run(*args) -> (exit status, stderr) of `python -m bench` at the smoke preset on the CPU, --out in
    tmp_path."""

    def call(*args: str) -> tuple[int, str]:
        status = main([*args, "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data"),
                       "--preset", "smoke", "--device", "cpu"])
        return status, capsys.readouterr().err

    return call


def _sweep(tmp_path, model: str) -> dict:
    return json.loads(sweep_path(tmp_path / "out", model).read_text())


def test_prune_a_torchvision_source_writes_its_sweep_under_a_safe_name(run, tmp_path):
    status, err = run("prune", "--models", "torchvision:mobilenet_v3_small", "--input-shape", "3,32,32",
                      "--num-classes", "10", "--ratios", "0,50", "--methods", "l1-unstructured")
    assert status == 0, err
    path = tmp_path / "out" / "sweep" / "torchvision-mobilenet_v3_small.json"
    sweep = json.loads(path.read_text())
    assert sweep["source"] == {"source": "torchvision:mobilenet_v3_small", "kind": "torchvision",
                               "source_sha256": None, "checkpoint": None, "checkpoint_sha256": None,
                               "input_shape": [3, 32, 32], "data": None, "data_sha256": None}
    assert [r["ratio"] for r in sweep["records"]] == [0, 50] and sweep["records"][1]["sparsity"] == 50
    assert "classifier.3" not in sweep["records"][1]["layer_sparsity"]


def test_a_one_by_one_conv_head_stays_dense_and_exclude_keeps_more_layers_dense(run, tmp_path):
    status, err = run("prune", "--models", "torchvision:squeezenet1_1", "--input-shape", "3,32,32",
                      "--ratios", "50", "--methods", "l1-unstructured", "--exclude", r"^features\.0$")
    assert status == 0, err
    pruned = _sweep(tmp_path, "torchvision:squeezenet1_1")["records"][0]["layer_sparsity"]
    assert "classifier.1" not in pruned and "features.0" not in pruned
    assert set(pruned.values()) == {50.0}


def test_prune_a_user_file_with_its_checkpoint_starts_from_those_weights(run, tmp_path, user_file):
    torch.manual_seed(7)
    weights = build_source(ModelSource(f"{user_file}:build", (3, 8, 8))).state_dict()
    torch.save({"model": weights, "epoch": 3}, tmp_path / "weights.pt")
    model = f"{user_file}:build"
    status, err = run("prune", "--models", model, "--input-shape", "3,8,8", "--ratios", "0",
                      "--methods", "l1-unstructured", "--checkpoint", str(tmp_path / "weights.pt"))
    assert status == 0, err
    sweep = _sweep(tmp_path, model)
    assert sweep["trained"] and sweep["dense_sha256"] == file_sha256(tmp_path / "weights.pt")
    assert sweep["source"]["source_sha256"] == file_sha256(user_file)
    state, _ = load_pruned_state(pruned_path(tmp_path / "out", model, 0, STUDY), base_path(tmp_path / "out", model))
    assert torch.equal(state["7.weight"], weights["7.weight"])  # the classifier: never masked


def test_all_stages_run_on_a_user_file_and_measure_it_in_child_processes(run, tmp_path, user_file):
    model = f"{user_file}:build"
    status, err = run("all", "--models", model, "--input-shape", "3,8,8", "--ratios", "0,50",
                      "--methods", "l1-unstructured", "--runtimes", "torch-dense,ort-dense")
    assert status == 0, err
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    records = [r for r in results["records"] if r["model"] == model and not r["error"]]
    measured = {(r["ratio"], r["runtime"]) for r in records}
    assert measured == {(0, "torch-dense"), (0, "ort-dense"), (50, "torch-dense"), (50, "ort-dense")}
    assert (tmp_path / "out" / "report.md").is_file()


def test_every_record_of_a_source_names_its_file_checkpoint_and_input_shape(run, tmp_path, user_file):
    model = f"{user_file}:build"
    torch.save(build_source(ModelSource(model, (3, 8, 8))).state_dict(), tmp_path / "weights.pt")
    status, err = run("all", "--models", model, "--input-shape", "3,8,8", "--ratios", "0", "--methods",
                      "l1-unstructured", "--runtimes", "torch-dense,ort-dense", "--checkpoint",
                      str(tmp_path / "weights.pt"))
    assert status == 0, err
    records = json.loads((tmp_path / "out" / "results.json").read_text())["records"]
    assert [r["runtime"] for r in records] == ["torch-dense", "ort-dense"]
    for record in records:
        assert record["source"] == _sweep(tmp_path, model)["source"]
        assert record["source"]["source_sha256"] == file_sha256(user_file)
        assert record["source"]["checkpoint_sha256"] == file_sha256(tmp_path / "weights.pt")
        assert record["source"]["input_shape"] == [3, 8, 8]


def _one_line(err: str) -> str:
    assert err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(("args", "expected"), [
    (("--models", "torchvision:mobilenet_v3_small"), "needs --input-shape C,H,W"),
    (("--models", "torchvision:mobilenet_v3_smal", "--input-shape", "3,32,32"),
     "unknown torchvision builder 'mobilenet_v3_smal'; close names: mobilenet_v3_small"),
    (("--models", "lenet5", "--input-shape", "1,28,28"), "apply to model sources only"),
    (("--models", "torchvision:resnet18", "--input-shape", "3,32"), "--input-shape '3,32' is not C,H,W"),
    (("--models", "torchvision:resnet18", "--input-shape", "3,32,32", "--num-classes", "0"),
     "--num-classes 0 is below 1"),
])
def test_bad_source_options_exit_two_with_one_line(run, args, expected):
    status, err = run("prune", *args)
    assert status == 2
    assert expected in _one_line(err)


def test_a_path_with_a_comma_exits_two_with_one_line_naming_it(run, tmp_path):
    (tmp_path / "a,b").mkdir()
    (tmp_path / "a,b" / "net.py").write_text(USER_FILE)
    status, err = run("prune", "--models", f"{tmp_path / 'a,b' / 'net.py'}:build", "--input-shape", "3,8,8")
    assert status == 2
    assert "its path holds a comma or space, which separate the names of --models" in _one_line(err)
    assert not (tmp_path / "out").exists()


def test_a_function_that_raises_exits_two_naming_the_model_and_the_error(run, user_file):
    status, err = run("prune", "--models", f"{user_file}:broken", "--input-shape", "3,8,8")
    assert status == 2
    assert "broken() raised ValueError: no such layer size" in _one_line(err)


def test_an_input_shape_the_model_rejects_exits_two_before_anything_is_written(run, tmp_path, user_file):
    status, err = run("prune", "--models", f"{user_file}:build", "--input-shape", "1,8,8")
    assert status == 2
    assert "rejects input shape 1,8,8: RuntimeError" in _one_line(err)
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_that_does_not_fit_exits_two_naming_the_key(run, tmp_path, user_file):
    torch.save({"0.weight": torch.zeros(4, 3, 3, 3)}, tmp_path / "weights.pt")
    status, err = run("prune", "--models", f"{user_file}:build", "--input-shape", "3,8,8",
                      "--checkpoint", str(tmp_path / "weights.pt"))
    assert status == 2
    assert "does not fit model" in _one_line(err) and "it lacks 0.bias" in err


def test_one_checkpoint_for_two_sources_exits_two(run, tmp_path, user_file):
    torch.save({}, tmp_path / "weights.pt")
    status, err = run("prune", "--models", f"{user_file}:build,torchvision:resnet18",
                      "--input-shape", "3,8,8", "--checkpoint", str(tmp_path / "weights.pt"))
    assert status == 2
    assert "--checkpoint holds one model's weights; --models names 2 sources" in _one_line(err)


def test_export_in_spawned_worker_processes_rebuilds_a_user_source(run, tmp_path, user_file, force_parallel_export):
    model = f"{user_file}:build"
    options = ("--models", model, "--input-shape", "3,8,8", "--ratios", "0,50",
               "--methods", "l1-unstructured")
    assert run("prune", *options)[0] == 0
    force_parallel_export()
    status, err = run("export", *options)
    assert status == 0, err
    for ratio in (0, 50):
        assert (artifact_dir(tmp_path / "out", model, ratio) / "manifest.json").is_file()
