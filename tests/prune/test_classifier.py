"""Classifier detection by tracing (a Linear head, a 1x1-convolution head), and the layers left to prune."""

import pytest
import torch
from torch import nn
from torchvision.models import mobilenet_v3_small, squeezenet1_1

from prune.classifier import find_classifier
from prune.errors import UsageError
from prune.models import MODELS, build_model, example_input, prunable_layers
from user_models import MODEL_FILE


def _example(shape: tuple[int, ...] = (3, 8, 8)) -> torch.Tensor:
    return torch.randn((1, *shape), generator=torch.Generator().manual_seed(0))


def late_probe() -> nn.Module:
    """The user file's late_probe (user_models.MODEL_FILE): a Linear head, then a convolution run after it whose
    output is thrown away."""
    namespace: dict = {}
    exec(MODEL_FILE, namespace)  # the tests' own text, as the model-source tests write it to a file
    return namespace["late_probe"]()


def test_linear_head_is_the_classifier():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 5))
    assert find_classifier(model, _example()) == "4"


def test_one_by_one_conv_head_followed_by_relu_and_pooling_is_the_classifier():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 1), nn.ReLU(inplace=True),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten())
    assert find_classifier(model, _example()) == "2"


def test_squeezenet_classifier_is_its_final_conv():
    model = squeezenet1_1(num_classes=10)
    assert find_classifier(model, _example((3, 64, 64))) == "classifier.1"
    assert "classifier.1" not in dict(prunable_layers(model, "classifier.1"))


def test_mobilenet_classifier_is_its_last_linear():
    assert find_classifier(mobilenet_v3_small(num_classes=10), _example((3, 32, 32))) == "classifier.3"


def test_a_layer_run_after_the_head_whose_output_is_unused_is_not_the_classifier():
    assert find_classifier(late_probe(), _example()) == "head"


def test_tracing_keeps_the_models_mode():
    model = late_probe().train()
    find_classifier(model, _example())
    assert model.training


def test_a_model_without_weighted_layers_before_the_logits_is_a_usage_error():
    with pytest.raises(UsageError, match="no Conv2d or Linear layer produces the logits"):
        find_classifier(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), _example())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_traced_classifier_leaves_the_registry_models_prunable_layers_unchanged(name):
    model = build_model(name)
    classifier = find_classifier(model, example_input(name, 1))
    assert prunable_layers(model, classifier) == prunable_layers(model)


def test_exclude_keeps_the_matching_layers_dense():
    names = [n for n, _ in prunable_layers(build_model("resnet18"), exclude=r"^layer4\.|downsample")]
    assert names and not any(n.startswith("layer4.") or "downsample" in n for n in names)
    assert "layer3.1.conv2" in names and "fc" not in names
