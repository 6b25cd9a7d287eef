"""L1 magnitude pruning: measured sparsity per ratio, both schedules, and rebuilding a masked model."""

import copy

import pytest
import torch

from prune.config import STUDY_RATIOS
from prune.errors import ArtifactError
from prune.models import build_model, prunable_layers
from prune.pruning import global_sparsity, is_masked, layer_sparsity, make_permanent, masked_model, prune_l1


def _model(name: str, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(name)


@pytest.mark.parametrize("name", ["lenet300_100", "lenet5"])
def test_oneshot_sparsity_is_within_half_a_point_of_every_study_ratio(name):
    dense = _model(name)
    for ratio in STUDY_RATIOS:
        pruned = prune_l1(copy.deepcopy(dense), ratio)
        assert abs(global_sparsity(pruned) - ratio) < 0.5
        assert all(abs(s - ratio) < 0.5 for s in layer_sparsity(pruned).values())


@pytest.mark.parametrize("name", ["lenet300_100", "lenet5"])
def test_iterative_sparsity_is_within_half_a_point_of_every_study_ratio(name):
    model = _model(name)
    for ratio in STUDY_RATIOS:
        prune_l1(model, ratio)
        assert abs(global_sparsity(model) - ratio) < 0.5


def test_resnet18_sparsity_is_within_half_a_point_of_the_ratio():
    dense = _model("resnet18")
    for ratio in (50, 99):
        assert abs(global_sparsity(prune_l1(copy.deepcopy(dense), ratio)) - ratio) < 0.5


def test_iterative_pruning_composes_masks_keeping_earlier_zeros():
    model = prune_l1(_model("lenet300_100"), 50)
    first = {name: m.weight_mask.clone() for name, m in prunable_layers(model)}
    prune_l1(model, 90)
    for name, module in prunable_layers(model):
        assert torch.all(module.weight_mask[first[name] == 0] == 0)
        assert abs(layer_sparsity(model)[name] - 90) < 0.5


def test_iterative_without_retraining_reaches_the_oneshot_masks():
    dense = _model("lenet5")
    iterative = copy.deepcopy(dense)
    for ratio in (50, 80, 95):
        prune_l1(iterative, ratio)
    oneshot = prune_l1(copy.deepcopy(dense), 95)
    for (_, a), (_, b) in zip(prunable_layers(iterative), prunable_layers(oneshot)):
        assert torch.equal(a.weight_mask, b.weight_mask)


def test_the_classifier_is_never_pruned():
    model = prune_l1(_model("lenet300_100"), 90)
    assert torch.count_nonzero(model[5].weight) == model[5].weight.numel()
    assert not hasattr(model[5], "weight_mask")


def test_make_permanent_removes_masks_and_keeps_the_zeros():
    model = prune_l1(_model("lenet300_100"), 90)
    before = global_sparsity(model)
    make_permanent(model)
    assert not is_masked(model)
    assert "1.weight_orig" not in model.state_dict()
    assert global_sparsity(model) == before


def test_masked_model_rebuilds_the_pruned_model_from_its_state_dict():
    pruned = prune_l1(_model("lenet5"), 80)
    rebuilt = masked_model("lenet5", pruned.state_dict())
    x = torch.randn(4, 1, 28, 28)
    assert is_masked(rebuilt)
    assert torch.equal(rebuilt(x), pruned.eval()(x))


def test_masked_model_has_the_masked_effective_weights_before_any_forward():
    pruned = prune_l1(_model("lenet300_100"), 50)
    rebuilt = masked_model("lenet300_100", pruned.state_dict())
    assert torch.equal(rebuilt[1].weight, pruned[1].weight)


def test_masked_model_of_another_architecture_is_an_artifact_error():
    state = prune_l1(_model("lenet300_100"), 50).state_dict()
    with pytest.raises(ArtifactError, match="r50.pt: not a lenet5 state"):
        masked_model("lenet5", state, source="r50.pt")


def test_make_permanent_leaves_every_zero_positive():
    model = make_permanent(prune_l1(_model("lenet300_100"), 90))
    weight = model[1].weight.detach()
    zeros = weight == 0
    assert zeros.any() and not torch.signbit(weight[zeros]).any()
