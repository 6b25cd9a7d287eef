"""The model registry: the study's four architectures, their sizes, shapes and prunable layers."""

import pytest
import torch
from torch import nn

from prune.errors import UsageError
from prune.models import MODELS, build_model, example_input, get_model_spec, parameter_count, prunable_layers

PARAMETERS = {"lenet300_100": 266_610, "lenet5": 431_080, "resnet18": 11_173_962, "resnet50": 23_520_842}


def test_the_registry_holds_the_four_study_models():
    assert set(MODELS) == set(PARAMETERS)


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_parameter_count_matches_the_architecture(name):
    assert parameter_count(build_model(name)) == PARAMETERS[name]


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_forward_maps_a_batch_to_ten_logits(name):
    model = build_model(name).eval()
    with torch.inference_mode():
        logits = model(example_input(name, batch_size=2))
    assert logits.shape == (2, 10)


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_prunable_layers_are_every_conv_and_linear_except_the_classifier(name):
    model = build_model(name)
    weighted = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    prunable = [m for _, m in prunable_layers(model)]
    classifier = [m for m in weighted if isinstance(m, nn.Linear)][-1]
    assert classifier not in prunable
    assert len(prunable) == len(weighted) - 1


def test_lenet_prunable_layers_are_named_by_module_path():
    assert [n for n, _ in prunable_layers(build_model("lenet300_100"))] == ["1", "3"]
    assert [n for n, _ in prunable_layers(build_model("lenet5"))] == ["0", "2", "5"]


def test_example_input_is_deterministic_for_a_seed_and_shaped_for_the_dataset():
    assert torch.equal(example_input("lenet5", 3, seed=1), example_input("lenet5", 3, seed=1))
    assert example_input("resnet18", 3).shape == (3, 3, 32, 32)
    assert get_model_spec("resnet50").dataset == "cifar10"


def test_unknown_model_is_a_usage_error_listing_the_valid_names():
    expected = "unknown model 'vgg16'; choose from lenet300_100, lenet5, resnet18, resnet50"
    with pytest.raises(UsageError, match=expected):
        get_model_spec("vgg16")
