"""`python -m bench train|prune` on bad input: exit status 2, one line on stderr naming the value and fix."""

from pathlib import Path

import pytest

from bench.cli import build_parser, main, run_config
from prune.config import checkpoint_path, sweep_path
from prune.io import save_checkpoint
from prune.models import build_model


@pytest.fixture
def run(tmp_path, capsys):
    """run(*args) -> (exit status, stderr) of `python -m bench`; --out and an empty --data-dir in tmp_path."""

    def call(*args: str) -> tuple[int, str]:
        status = main([*args, "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data")])
        return status, capsys.readouterr().err

    return call


def _one_line(err: str) -> str:
    assert err.count("\n") == 1, err
    return err


def test_unknown_model_exits_two_listing_the_models(run):
    status, err = run("prune", "--models", "vgg16", "--preset", "smoke")
    assert status == 2
    assert "unknown model 'vgg16'; choose from lenet300_100" in _one_line(err)


@pytest.mark.parametrize("ratio", ["100", "-5"])
def test_ratio_outside_zero_to_hundred_exits_two(run, ratio):
    status, err = run("prune", "--models", "lenet5", "--ratios", f"0,{ratio}", "--preset", "smoke")
    assert status == 2
    assert "outside [0, 100)" in _one_line(err)


def test_unknown_preset_exits_two_listing_the_presets(run):
    status, err = run("train", "--models", "lenet5", "--preset", "huge")
    assert status == 2
    assert "choose from smoke, quick, paper" in _one_line(err)


def test_unreadable_checkpoint_exits_two_naming_the_file(run, tmp_path):
    path = checkpoint_path(tmp_path / "out", "lenet5")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x00truncated")
    status, err = run("prune", "--models", "lenet5", "--ratios", "50", "--preset", "smoke")
    assert status == 2
    assert "lenet5.pt: not a readable torch file" in _one_line(err)


def test_checkpoint_of_another_model_exits_two_naming_both(run, tmp_path):
    save_checkpoint(checkpoint_path(tmp_path / "out", "lenet5"), build_model("lenet300_100").state_dict(),
                    {"model": "lenet300_100"})
    status, err = run("train", "--models", "lenet5", "--preset", "smoke")
    assert status == 2
    assert "holds a lenet300_100 checkpoint, not lenet5" in _one_line(err)


def test_train_resnet_on_a_broken_cifar10_folder_exits_two_naming_the_directory_and_fix(run, tmp_path):
    (tmp_path / "data" / "cifar-10-batches-py").mkdir(parents=True)
    status, err = run("train", "--models", "resnet18", "--preset", "smoke")
    assert status == 2
    line = _one_line(err)
    assert str(Path(tmp_path / "data" / "cifar-10-batches-py")) in line and "--download" in line


def test_prune_with_the_smoke_preset_exits_zero_and_writes_the_sweep(run, tmp_path):
    status, err = run("prune", "--models", "lenet300_100", "--ratios", "0,90", "--preset", "smoke")
    assert status == 0, err
    assert sweep_path(tmp_path / "out", "lenet300_100").is_file()


def test_duplicate_ratios_and_models_are_merged():
    args = build_parser().parse_args(["prune", "--ratios", "0,50,50.0,90,50", "--models", "lenet5,lenet5"])
    assert args.ratios == (0.0, 50.0, 90.0) and args.models == ("lenet5",)


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--methods", "l1-unstructured,magic", "unknown method 'magic'; choose from l1-unstructured, global-l1, "
                                           "l1-structured"),
    ("--recovery", "retrain", "unknown recovery 'retrain'; choose from none, bn, finetune"),
    ("--finetune-epochs", "0", "--finetune-epochs 0 is below 1"),
    ("--compare-ratios", "50,100", "ratio 100 outside [0, 100)"),
])
def test_bad_method_recovery_or_finetune_value_exits_two_in_one_line(run, option, value, message):
    status, err = run("prune", "--models", "lenet5", "--preset", "smoke", option, value)
    assert status == 2
    assert message in _one_line(err)


def test_finetune_epochs_that_are_no_number_exit_two(run):
    with pytest.raises(SystemExit) as exit_:
        run("all", "--models", "lenet5", "--finetune-epochs", "two")
    assert exit_.value.code == 2


def test_the_presets_methods_and_recoveries_are_the_command_line_defaults():
    args = build_parser().parse_args(["prune"])
    assert args.methods is None and args.recoveries is None and args.latency_ratios is None
    assert args.finetune_epochs is None and args.compare_ratios is None


def test_quick_compares_every_method_but_global_l1_on_resnet50_unless_methods_are_given():
    cfg = run_config(build_parser().parse_args(["all"]))
    methods = {model: {v.method for v in cfg.variants(model)} for model in cfg.models}
    assert methods["resnet18"] == methods["lenet5"] == {"l1-unstructured", "global-l1", "l1-structured"}
    assert methods["resnet50"] == {"l1-unstructured", "l1-structured"}
    given = run_config(build_parser().parse_args(["all", "--methods", "global-l1"]))
    assert {v.method for v in given.variants("resnet50") if not v.is_study} == {"global-l1"}


def test_measured_files_are_removed_unless_keep_artifacts_is_given():
    assert run_config(build_parser().parse_args(["all"])).keep_artifacts is False
    assert run_config(build_parser().parse_args(["all", "--keep-artifacts"])).keep_artifacts is True


def test_latency_ratios_outside_0_to_100_exit_two_in_one_line(run):
    status, err = run("all", "--models", "lenet5", "--latency-ratios", "100")
    assert status == 2 and "ratio 100 outside [0, 100)" in _one_line(err)
