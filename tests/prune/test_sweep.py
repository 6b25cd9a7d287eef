"""The pruning sweep: a record and a pruned file per ratio, resumable, the best ratio picked by accuracy."""

import copy

import pytest
import torch
from rich.console import Console

import prune.sweep
from prune.config import STUDY, Variant, base_path, checkpoint_path, pruned_path, sweep_path
from prune.data import EMBEDDED_SOURCE
from prune.errors import DatasetUnavailable, UsageError
from prune.io import file_sha256, load_checkpoint, read_json
from prune.methods import get_method
from prune.models import build_model, parameter_count
from prune.presets import get_preset
from prune.pruned_io import load_pruned_state
from prune.pruning import global_sparsity, is_masked, layer_sparsity, prune_l1
from prune.recovery import get_recovery
from prune.sweep import Step, best_ratio, load_pruned, oneshot_pruned, run_sweep
from prune.train import evaluate, training_splits

SWEEP_KEYS = {"model", "method", "recovery", "finetune_epochs", "preset", "seed", "schedule", "tolerance", "dataset",
              "accuracy_note", "method_note", "trained", "dense_accuracy", "best_ratio", "dense_sha256", "train",
              "source", "skipped_recoveries", "records"}
FINETUNED = Variant("l1-unstructured", "finetune")
RECORD_KEYS = {"ratio", "sparsity", "layer_sparsity", "parameters", "macs", "accuracy", "eval_seconds",
               "recovery_note", "path", "sha256"}


@pytest.fixture
def console() -> Console:
    return Console(record=True, width=200)


@pytest.fixture
def computed(monkeypatch) -> list[float]:
    """The ratios the sweep prunes (rather than resumes), in order."""
    ratios = []
    real = prune.sweep.record_ratio

    def counting(cfg, sweep, pruned, ratio, *rest):
        ratios.append(ratio)
        return real(cfg, sweep, pruned, ratio, *rest)

    monkeypatch.setattr(prune.sweep, "record_ratio", counting)
    return ratios


def test_sweep_trains_first_and_writes_the_documented_schema(smoke_config, console):
    cfg = smoke_config()
    run_sweep(cfg, console)
    sweep = read_json(sweep_path(cfg.out, "lenet300_100"))
    assert set(sweep) == SWEEP_KEYS
    assert all(set(r) == RECORD_KEYS for r in sweep["records"])
    assert checkpoint_path(cfg.out, "lenet300_100").is_file()
    assert sweep["trained"] is True and sweep["accuracy_note"] is None
    assert sweep["dataset"] == {"source": EMBEDDED_SOURCE, "train_size": 256, "test_size": 256}
    assert [r["ratio"] for r in sweep["records"]] == [0, 50, 90]


def test_each_ratio_is_saved_as_a_masked_model_at_its_measured_sparsity(smoke_config, console):
    cfg = smoke_config()
    records = run_sweep(cfg, console)["lenet300_100"][STUDY]["records"]
    for record in records:
        path = pruned_path(cfg.out, "lenet300_100", record["ratio"])
        assert record["path"] == path.relative_to(cfg.out).as_posix()
        assert record["sha256"] == file_sha256(path)
        model = load_pruned(path, "lenet300_100", base_path(cfg.out, "lenet300_100"))
        _, config = load_checkpoint(path)
        assert is_masked(model)
        assert abs(global_sparsity(model) - record["ratio"]) < 0.5
        assert record["sparsity"] == pytest.approx(global_sparsity(model))
        assert set(record["layer_sparsity"]) == {"1", "3"}
        expected = {"model": "lenet300_100", "ratio": record["ratio"], "schedule": "oneshot", "seed": 0,
                    "preset": "smoke"}
        assert {k: config[k] for k in expected} == expected


def test_dense_ratio_keeps_the_checkpoint_accuracy(smoke_config, console):
    sweep = run_sweep(smoke_config(), console)["lenet300_100"][STUDY]
    assert sweep["records"][0]["accuracy"] == pytest.approx(sweep["dense_accuracy"])


@pytest.mark.parametrize("schedule", ["oneshot", "iterative"])
def test_interrupted_sweep_resumes_without_recomputing_finished_ratios(smoke_config, console, computed,
                                                                       schedule, monkeypatch):
    cfg = smoke_config(ratios=(0, 50, 90, 99), schedule=schedule)
    counting = prune.sweep.record_ratio

    def interrupt_third(cfg, sweep, pruned, ratio, *rest):
        if len(computed) == 2:
            raise KeyboardInterrupt
        return counting(cfg, sweep, pruned, ratio, *rest)

    monkeypatch.setattr(prune.sweep, "record_ratio", interrupt_third)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(cfg, console)
    assert [r["ratio"] for r in read_json(sweep_path(cfg.out, "lenet300_100"))["records"]] == [0, 50]
    monkeypatch.setattr(prune.sweep, "record_ratio", counting)
    sweep = run_sweep(cfg, console)["lenet300_100"][STUDY]
    assert computed == [0, 50, 90, 99]
    assert [r["ratio"] for r in sweep["records"]] == [0, 50, 90, 99]
    assert read_json(sweep_path(cfg.out, "lenet300_100")) == sweep


def test_resumed_iterative_sweep_equals_an_uninterrupted_one(smoke_config, console, tmp_path):
    cfg = smoke_config(ratios=(50, 90), schedule="iterative")
    run_sweep(smoke_config(ratios=(50,), schedule="iterative"), console)
    resumed = run_sweep(cfg, console)["lenet300_100"][STUDY]["records"]
    fresh = run_sweep(smoke_config(ratios=(50, 90), schedule="iterative", out=tmp_path / "fresh"), console)
    assert [r["accuracy"] for r in resumed] == [r["accuracy"] for r in fresh["lenet300_100"][STUDY]["records"]]


def test_a_finished_sweep_reruns_nothing(smoke_config, console, computed):
    run_sweep(smoke_config(), console)
    run_sweep(smoke_config(), console)
    assert computed == [0, 50, 90]


def test_a_changed_config_recomputes_every_ratio(smoke_config, console, computed):
    run_sweep(smoke_config(), console)
    sweep = run_sweep(smoke_config(schedule="iterative"), console)["lenet300_100"][STUDY]
    assert computed == [0, 50, 90, 0, 50, 90]
    assert sweep["schedule"] == "iterative"


def test_a_ratio_whose_pruned_file_vanished_is_recomputed(smoke_config, console, computed):
    cfg = smoke_config()
    run_sweep(cfg, console)
    pruned_path(cfg.out, "lenet300_100", 50).unlink()
    run_sweep(cfg, console)
    assert computed == [0, 50, 90, 50]


@pytest.fixture
def no_dataset(monkeypatch) -> None:
    """Every model's dataset is unavailable, as a broken dataset folder makes it."""

    def unavailable(model, data_dir, download, settings):
        raise DatasetUnavailable(f"{model}'s dataset not found")

    monkeypatch.setattr(prune.sweep, "training_splits", unavailable)


def test_model_without_its_dataset_is_pruned_from_seeded_random_weights(smoke_config, console, no_dataset):
    cfg = smoke_config(models=("resnet18",), ratios=(50,))
    sweep = run_sweep(cfg, console)["resnet18"][STUDY]
    assert sweep["trained"] is False and sweep["dense_accuracy"] is None and sweep["best_ratio"] is None
    assert sweep["dataset"] is None and "resnet18's dataset not found" in sweep["accuracy_note"]
    assert sweep["records"][0]["accuracy"] is None
    assert abs(sweep["records"][0]["sparsity"] - 50) < 0.5
    state, config = load_pruned_state(pruned_path(cfg.out, "resnet18", 50), base_path(cfg.out, "resnet18"))
    assert config["dense_sha256"] == "untrained"
    torch.manual_seed(0)
    reference = prune_l1(build_model("resnet18"), 50).state_dict()
    assert torch.equal(state["conv1.weight_orig"], reference["conv1.weight_orig"])
    assert not checkpoint_path(cfg.out, "resnet18").exists()


def test_a_recovery_that_needs_training_images_without_them_is_a_usage_error(smoke_config, console, no_dataset):
    with pytest.raises(UsageError, match="recovery 'finetune' needs lenet300_100's training images"):
        run_sweep(smoke_config(recoveries=("none", "finetune")), console)


def test_oneshot_pruning_in_background_threads_equals_pruning_each_ratio_in_turn():
    torch.manual_seed(0)
    dense = build_model("lenet5")
    ratios = [0, 50, 90, 95, 99]
    step = Step("lenet5", get_method("l1-unstructured"), get_recovery("none"), None)
    for ratio, (pruned, note) in zip(ratios, oneshot_pruned(dense, ratios, step, workers=2)):
        expected = prune_l1(copy.deepcopy(dense), ratio)
        got, want = pruned.state_dict(), expected.state_dict()
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got)
        assert note is None
    assert not is_masked(dense)


def test_summary_table_lists_every_variant_and_ratio(smoke_config, console):
    run_sweep(smoke_config(methods=("l1-unstructured", "l1-structured"), compare_ratios=(50,)), console)
    text = console.export_text()
    assert "lenet300_100 (oneshot): dense accuracy" in text and "accuracy % at ratio %" in text
    assert "l1-unstructured+none" in text and "l1-structured+none" in text


def test_every_variant_gets_its_own_sweep_file_and_pruned_files(smoke_config, console):
    cfg = smoke_config(methods=("l1-unstructured", "global-l1"), recoveries=("none", "finetune"),
                       compare_ratios=(50,))
    sweeps = run_sweep(cfg, console)["lenet300_100"]
    assert list(sweeps) == [STUDY, Variant("l1-unstructured", "finetune"), Variant("global-l1", "none"),
                            Variant("global-l1", "finetune")]
    for variant, sweep in sweeps.items():
        assert (sweep["method"], sweep["recovery"]) == (variant.method, variant.recovery)
        assert read_json(sweep_path(cfg.out, "lenet300_100", variant)) == sweep
        for record in sweep["records"]:
            assert pruned_path(cfg.out, "lenet300_100", record["ratio"], variant).is_file()
    assert sweeps[Variant("global-l1", "finetune")]["finetune_epochs"] == 1  # the smoke preset's


def test_a_structured_variant_saves_a_smaller_dense_model_that_reloads_with_its_accuracy(smoke_config, console):
    cfg = smoke_config(methods=("l1-structured",), compare_ratios=(50,))
    sweeps = run_sweep(cfg, console)["lenet300_100"]
    record = sweeps[Variant("l1-structured", "none")]["records"][0]
    dense = sweeps[STUDY]["records"][0]
    model = load_pruned(pruned_path(cfg.out, "lenet300_100", 50, Variant("l1-structured", "none")), "lenet300_100",
                        base_path(cfg.out, "lenet300_100"))
    assert not is_masked(model)
    assert record["parameters"] == parameter_count(model) < 0.55 * dense["parameters"]
    assert record["macs"] < 0.55 * dense["macs"]
    assert record["sparsity"] == 0
    splits = training_splits("lenet300_100", cfg.data_dir, False, get_preset("smoke").settings("lenet300_100"))
    assert evaluate(model, splits.spec.normalise(splits.test.images), splits.test.labels) == record["accuracy"]


def test_finetuned_masked_models_keep_their_pruned_weights_at_zero_on_disk(smoke_config, console):
    cfg = smoke_config(recoveries=("none", "finetune"), compare_ratios=(90,))
    run_sweep(cfg, console)
    base = base_path(cfg.out, "lenet300_100")
    state, config = load_pruned_state(pruned_path(cfg.out, "lenet300_100", 90, FINETUNED), base)
    plain, _ = load_pruned_state(pruned_path(cfg.out, "lenet300_100", 90), base)
    assert config["recovery"] == "finetune"
    assert torch.equal(state["1.weight_mask"], plain["1.weight_mask"])
    assert not torch.equal(state["1.weight_orig"], plain["1.weight_orig"])
    model = load_pruned(pruned_path(cfg.out, "lenet300_100", 90, FINETUNED), "lenet300_100", base)
    assert layer_sparsity(model)["1"] == pytest.approx(90, abs=0.01)


def test_best_ratio_is_the_highest_within_tolerance_of_dense():
    records = [{"ratio": ratio, "accuracy": accuracy}
               for ratio, accuracy in ((0, 97.0), (50, 96.5), (90, 95.9), (95, 80.0))]
    assert best_ratio(records, 97.0, tolerance=1.0) == 50
    assert best_ratio(records, 97.0, tolerance=1.1) == 90
    assert best_ratio(records, 97.0, tolerance=0.0) == 0


def test_best_ratio_is_none_without_accuracy():
    assert best_ratio([{"ratio": 50, "accuracy": None}], None, tolerance=1.0) is None
    assert best_ratio([{"ratio": 50, "accuracy": 10.0}], 97.0, tolerance=1.0) is None
