"""The pruning methods registry: what each method zeroes or removes, and the variants a run configures."""

import pytest
import torch
from torch import nn

from prune.config import STUDY, RunConfig, Variant, pruned_path, sweep_path
from prune.errors import UsageError
from prune.methods import classifier_name, get_method
from prune.models import build_model, example_input, parameter_count, prunable_layers
from prune.pruning import is_masked, layer_sparsity


def seeded(name: str) -> nn.Module:
    torch.manual_seed(0)
    return build_model(name).eval()


def test_l1_unstructured_zeroes_the_ratio_of_every_prunable_layer():
    model = get_method("l1-unstructured").prune(seeded("lenet5"), 90, 0, "lenet5")
    assert is_masked(model)
    assert all(abs(s - 90) < 0.1 for s in layer_sparsity(model).values())


def test_global_l1_zeroes_the_ratio_of_all_prunable_weights_together_unevenly_per_layer():
    model = get_method("global-l1").prune(seeded("lenet5"), 90, 0, "lenet5")
    layers = [m for _, m in prunable_layers(model)]
    zeros = sum(int((m.weight == 0).sum()) for m in layers)
    assert zeros == round(sum(m.weight.numel() for m in layers) * 0.9)
    per_layer = layer_sparsity(model).values()
    assert max(per_layer) - min(per_layer) > 5


def test_global_l1_keeps_the_smallest_weights_of_all_layers_out_first():
    model = seeded("lenet300_100")
    weights = torch.cat([m.weight.detach().abs().flatten() for _, m in prunable_layers(model)])
    threshold = weights.sort().values[round(len(weights) * 0.5) - 1]
    pruned = get_method("global-l1").prune(model, 50, 0, "lenet300_100")
    for _, module in prunable_layers(pruned):
        survivors = module.weight_orig.detach().abs()[module.weight_mask.bool()]
        assert bool((survivors >= threshold).all())


def test_global_l1_iterated_reaches_the_ratio_of_the_original_weights():
    model = get_method("global-l1").prune(seeded("lenet300_100"), 50, 0, "lenet300_100")
    model = get_method("global-l1").prune(model, 90, 50, "lenet300_100")
    layers = [m for _, m in prunable_layers(model)]
    assert sum(int((m.weight == 0).sum()) for m in layers) == round(sum(m.weight.numel() for m in layers) * 0.9)


def test_l1_structured_returns_a_smaller_dense_model_with_every_class_kept():
    dense = seeded("lenet300_100")
    pruned = get_method("l1-structured").prune(dense, 50, 0, "lenet300_100")
    assert not is_masked(pruned)
    assert parameter_count(pruned) < 0.55 * parameter_count(dense)
    assert [m.out_features for m in pruned.modules() if isinstance(m, nn.Linear)] == [150, 50, 10]
    assert pruned(example_input("lenet300_100", 2)).shape == (2, 10)
    assert parameter_count(dense) == 266_610  # the input model is left whole


def test_l1_structured_from_an_already_pruned_model_keeps_the_ratio_of_the_original_channels():
    once = get_method("l1-structured").prune(seeded("lenet300_100"), 50, 0, "lenet300_100")
    twice = get_method("l1-structured").prune(once, 75, 50, "lenet300_100")
    assert [m.out_features for m in twice.modules() if isinstance(m, nn.Linear)] == [75, 25, 10]


def test_classifier_is_the_last_linear_layer():
    assert classifier_name(build_model("resnet18")) == "fc"
    assert classifier_name(build_model("lenet300_100")) == "5"


def test_unknown_method_is_a_usage_error_listing_the_methods():
    with pytest.raises(UsageError, match="choose from l1-unstructured, global-l1, l1-structured"):
        get_method("random")


def test_a_run_config_is_the_study_protocol_alone_by_default():
    assert RunConfig(models=("lenet5",), ratios=(0, 50)).variants("lenet5") == {STUDY: (0, 50)}


def test_other_variants_run_at_the_comparison_ratios_without_ratio_zero():
    cfg = RunConfig(models=("lenet5",), ratios=(0, 50, 99), methods=("l1-unstructured", "l1-structured"),
                    recoveries=("none", "finetune"), compare_ratios=(0, 50))
    assert cfg.variants("lenet5") == {STUDY: (0, 50, 99), Variant("l1-unstructured", "finetune"): (50,),
                              Variant("l1-structured", "none"): (50,), Variant("l1-structured", "finetune"): (50,)}


def test_without_the_study_variant_its_dense_model_still_runs_at_ratio_zero():
    cfg = RunConfig(models=("lenet5",), methods=("l1-structured",), recoveries=("finetune",), compare_ratios=(50,))
    assert cfg.variants("lenet5") == {STUDY: (0.0,), Variant("l1-structured", "finetune"): (50,)}


@pytest.mark.parametrize(("field", "value", "message"), [
    ("methods", ("magic",), "unknown method 'magic'"),
    ("recoveries", ("retrain",), "unknown recovery 'retrain'"),
    ("finetune_epochs", 0, "--finetune-epochs 0 is below 1"),
    ("compare_ratios", (100,), "ratio 100 outside [0, 100)"),
])
def test_bad_method_recovery_epochs_or_ratio_is_a_usage_error(field, value, message):
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace(")", r"\)")):
        RunConfig(models=("lenet5",), **{field: value})


def test_the_study_variant_keeps_the_paths_from_before_methods_and_others_get_their_own(tmp_path):
    other = Variant("l1-structured", "finetune")
    assert pruned_path(tmp_path, "lenet5", 50) == tmp_path / "pruned" / "lenet5" / "r50.pt"
    assert pruned_path(tmp_path, "lenet5", 50, other) == tmp_path / "pruned" / "lenet5" / other.tag / "r50.pt"
    assert sweep_path(tmp_path, "lenet5", other) == tmp_path / "sweep" / "lenet5" / "l1-structured+finetune.json"
