"""L1-structured pruning: channels physically removed with every dependent layer kept consistent, the pruned
model saved as shapes + state and rebuilt from a weights_only load, and its multiply-accumulate count."""

import io
import itertools

import pytest
import torch
from torch import nn

from prune.errors import ArtifactError, UsageError
from prune.models import ModelSpec, build_model, example_input, parameter_count
from prune.structured import (grouped_note, load_structured, macs, prune_structured, rebuild,
                              structured_shapes)

CLASSIFIER = {"lenet300_100": "5", "lenet5": "7", "resnet18": "fc"}  # the last Linear of each model


def _dense(name: str) -> nn.Module:
    torch.manual_seed(0)
    return build_model(name).eval()


@pytest.fixture(scope="module")
def half_pruned() -> dict[str, tuple[nn.Module, nn.Module]]:
    """name -> (dense, structured at 50%) for the two LeNets and ResNet-18; tests only read them."""
    pairs = {}
    for name, classifier in CLASSIFIER.items():
        dense = _dense(name)
        pairs[name] = dense, prune_structured(dense, 50, example_input(name, 2), classifier).eval()
    return pairs


def _tiny_depthwise() -> nn.Module:
    """A MobileNet-like block: conv, depthwise conv (in = out = groups), pointwise conv, BatchNorms, classifier."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )


TINY_DEPTHWISE = ModelSpec("tiny_depthwise", _tiny_depthwise, "cifar10", (3, 8, 8))


def _saved_and_loaded(model: nn.Module) -> dict:
    """The model written as {"shapes", "state"} with torch.save and read back with weights_only=True."""
    buffer = io.BytesIO()
    torch.save({"shapes": structured_shapes(model), "state": model.state_dict()}, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


# Upper bounds on pruned / dense at 50%, measured: params 0.472x, 0.254x, 0.250x; MACs 0.472x, 0.282x, 0.251x.
# Channels halve on both sides of a hidden layer, so its cost falls to a quarter; LeNet-300-100 keeps its 784
# inputs and 10 outputs, so it stays near half.
FRACTION_BELOW = {"lenet300_100": 0.5, "lenet5": 0.3, "resnet18": 0.3}


@pytest.mark.parametrize("name", sorted(CLASSIFIER))
def test_half_pruned_model_has_a_fraction_of_the_parameters_and_macs(half_pruned, name):
    dense, pruned = half_pruned[name]
    x = example_input(name, 2)
    assert parameter_count(pruned) < FRACTION_BELOW[name] * parameter_count(dense)
    assert macs(pruned, x) < FRACTION_BELOW[name] * macs(dense, x)


@pytest.mark.parametrize("name", sorted(CLASSIFIER))
def test_half_pruned_model_still_maps_a_batch_to_ten_logits(half_pruned, name):
    with torch.no_grad():
        logits = half_pruned[name][1](example_input(name, 2))
    assert logits.shape == (2, 10)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", sorted(CLASSIFIER))
def test_classifier_keeps_its_ten_outputs_and_loses_half_its_inputs(half_pruned, name):
    dense, pruned = (m.get_submodule(CLASSIFIER[name]) for m in half_pruned[name])
    assert pruned.out_features == 10
    assert pruned.in_features == dense.in_features // 2


def test_every_prunable_layer_keeps_half_its_outputs(half_pruned):
    for name, (dense, pruned) in half_pruned.items():
        before, after = dict(dense.named_modules()), dict(pruned.named_modules())
        for layer, module in after.items():
            if isinstance(module, nn.Conv2d):
                assert module.out_channels == before[layer].out_channels // 2, (name, layer)
            elif isinstance(module, nn.Linear) and layer != CLASSIFIER[name]:
                assert module.out_features == before[layer].out_features // 2, (name, layer)


@pytest.mark.parametrize(("ratio", "widths"), [
    (30, [14, 35, 350]),
    (70, [6, 15, 150]),
    (90, [2, 5, 50]),  # 20 x 0.1 is 1.999... in floating point; the count is rounded, not truncated
    (99, [1, 1, 5]),  # a layer keeps at least one channel instead of being skipped
])
def test_each_layer_keeps_its_rounded_share_of_channels(ratio, widths):
    pruned = prune_structured(_dense("lenet5"), ratio, example_input("lenet5", 2), "7")
    assert [pruned[0].out_channels, pruned[2].out_channels, pruned[5].out_features] == widths


def test_higher_ratios_never_leave_a_layer_wider():
    dense, x = _dense("lenet5"), example_input("lenet5", 2)
    widths = [structured_shapes(prune_structured(dense, r, x, "7")) for r in (90, 95, 97, 99)]
    for wider, narrower in itertools.pairwise(widths):
        assert all(n <= w for key in wider for w, n in zip(wider[key], narrower[key]))


def test_residual_branches_and_shortcuts_keep_the_same_width(half_pruned):
    pruned = half_pruned["resnet18"][1]
    for layer in (pruned.layer1, pruned.layer2, pruned.layer3, pruned.layer4):
        for block in layer:
            shortcut = block.downsample[0].out_channels if block.downsample else block.conv1.in_channels
            assert block.conv2.out_channels == block.bn2.num_features == shortcut
    assert pruned.fc.in_features == pruned.layer4[-1].conv2.out_channels


def test_batchnorm_keeps_the_statistics_of_the_channels_its_conv_keeps():
    torch.manual_seed(0)
    model = _tiny_depthwise().eval()
    model[1].running_mean.copy_(torch.arange(8.0))
    pruned = prune_structured(model, 50, torch.randn(2, 3, 8, 8), "9")
    kept = [next(i for i in range(8) if torch.equal(model[0].weight[i], w)) for w in pruned[0].weight]
    assert len(kept) == pruned[1].num_features == 4
    assert torch.equal(pruned[1].running_mean, model[1].running_mean[kept])


def test_ratio_zero_returns_an_unchanged_copy():
    dense = _dense("lenet5")
    copied = prune_structured(dense, 0, example_input("lenet5", 2), "7")
    assert copied is not dense
    assert structured_shapes(copied) == structured_shapes(dense)
    assert all(torch.equal(a, b) for a, b in zip(copied.state_dict().values(), dense.state_dict().values()))


@pytest.mark.parametrize("name", sorted(CLASSIFIER))
def test_the_input_model_is_not_modified(half_pruned, name):
    dense, fresh = half_pruned[name][0], _dense(name)  # the same seed: what `dense` was before pruning
    assert structured_shapes(dense) == structured_shapes(fresh)
    assert all(torch.equal(v, fresh.state_dict()[k]) for k, v in dense.state_dict().items())


def test_the_copy_keeps_the_training_mode_of_the_input():
    dense = _dense("lenet5").train()
    pruned = prune_structured(dense, 50, example_input("lenet5", 2), "7")
    assert dense.training and all(m.training for m in pruned.modules())


def test_pruning_the_same_model_twice_gives_the_same_weights():
    dense, x = _dense("lenet5"), example_input("lenet5", 2)
    first, second = (prune_structured(dense, 50, x, "7").state_dict() for _ in range(2))
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_out_of_range_ratio_and_unknown_classifier_are_usage_errors():
    dense, x = _dense("lenet5"), example_input("lenet5", 2)
    with pytest.raises(UsageError, match="100"):
        prune_structured(dense, 100, x, "7")
    with pytest.raises(UsageError, match="'head'"):
        prune_structured(dense, 50, x, "head")


class GroupedResidual(nn.Module):
    """A stem, a grouped conv (2 groups) with BatchNorm added back onto the stem, a plain conv, the head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.grouped = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.BatchNorm2d(8))
        self.tail = nn.Sequential(nn.Conv2d(8, 16, 3), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten())
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        return self.head(self.tail(x + self.grouped(x)))


def test_a_grouped_convolution_and_the_layers_tied_to_it_keep_every_channel_while_others_are_pruned():
    torch.manual_seed(0)
    model = GroupedResidual().eval()
    pruned = prune_structured(model, 50, torch.randn(1, 3, 8, 8), "head")
    assert pruned.grouped[0].weight.shape == model.grouped[0].weight.shape
    assert pruned.stem[0].out_channels == 8 and pruned.tail[0].out_channels == 8
    assert pruned.head.in_features == 8 and pruned(torch.randn(2, 3, 8, 8)).shape == (2, 4)


def test_grouped_note_names_the_grouped_convolutions_but_not_depthwise_ones():
    assert "grouped convolutions grouped.0 and" in grouped_note(GroupedResidual())
    assert grouped_note(nn.Sequential(nn.Conv2d(4, 4, 3, groups=4), nn.Flatten())) is None


@pytest.mark.parametrize("name", ["lenet5", "resnet18"])
def test_saved_shapes_and_state_rebuild_to_identical_logits(half_pruned, name):
    pruned = half_pruned[name][1]
    saved = _saved_and_loaded(pruned)
    rebuilt = rebuild(name, saved["shapes"])
    rebuilt.load_state_dict(saved["state"], assign=True)
    x = example_input(name, 2, seed=1)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), pruned(x))


def test_a_depthwise_conv_rebuilds_with_in_out_and_groups_shrunk_together():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    pruned = prune_structured(_tiny_depthwise().eval(), 50, x, "9").eval()
    saved = _saved_and_loaded(pruned)
    rebuilt = load_structured(TINY_DEPTHWISE, saved["shapes"], saved["state"])
    assert (rebuilt[3].in_channels, rebuilt[3].out_channels, rebuilt[3].groups) == (4, 4, 4)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), pruned(x))


def test_rebuild_builds_on_the_meta_device_without_initialising_weights(half_pruned):
    rebuilt = rebuild("resnet18", structured_shapes(half_pruned["resnet18"][1]))
    assert all(t.is_meta for t in rebuilt.state_dict().values())


@pytest.mark.parametrize(("key", "shape", "named"), [
    ("layer1.0.conv1.weight", [32, 32, 3], "layer1.0.conv1.weight"),  # wrong rank
    ("layer1.0.conv1.weight", [32, 32, 5, 5], "layer1.0.conv1.weight"),  # another kernel size
    ("layer1.0.bn1.bias", [31], "layer1.0.bn1.bias"),  # disagrees with its own BatchNorm's weight
    ("fc.weight", [10, 256, 1], "fc.weight"),  # a Linear weight of rank 3
    ("layer1.0.conv1.weight", [32, "32", 3, 3], "layer1.0.conv1.weight"),  # not integers
    ("layer1.0.conv1.weight", [31, 32, 3, 3], "layer1.0.bn1"),  # the next layer no longer fits
    ("layer9.conv.weight", [8, 8, 3, 3], "layer9.conv.weight"),  # a key resnet18 does not have
])
def test_a_tampered_shape_is_an_artifact_error_naming_the_key_or_layer(half_pruned, key, shape, named):
    shapes = {**structured_shapes(half_pruned["resnet18"][1]), key: shape}
    with pytest.raises(ArtifactError, match=named.replace(".", r"\.")):
        rebuild("resnet18", shapes, source="resnet18-r50.pt")


def test_a_changed_layer_rebuild_cannot_resize_is_an_artifact_error_naming_the_key():
    spec = ModelSpec("tiny_layernorm", lambda: nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.LayerNorm(8),
                                                             nn.Linear(8, 10)), "mnist", (1, 2, 2))
    shapes = {"1.weight": [4, 4], "1.bias": [4], "2.weight": [4], "2.bias": [4], "3.weight": [10, 4], "3.bias": [10]}
    with pytest.raises(ArtifactError, match=r"2\.weight .* LayerNorm"):
        rebuild(spec, shapes)


def test_shapes_that_are_not_a_dict_are_an_artifact_error():
    with pytest.raises(ArtifactError, match="not a dict"):
        rebuild("lenet5", [[20, 1, 5, 5]])


def test_a_missing_shape_is_an_artifact_error_naming_the_key(half_pruned):
    shapes = structured_shapes(half_pruned["lenet5"][1])
    del shapes["2.bias"]
    with pytest.raises(ArtifactError, match=r"2\.bias"):
        rebuild("lenet5", shapes)


def test_a_state_that_disagrees_with_its_shapes_is_an_artifact_error(half_pruned):
    saved = _saved_and_loaded(half_pruned["lenet5"][1])
    saved["state"]["5.weight"] = torch.zeros(250, 401)
    with pytest.raises(ArtifactError, match=r"5\.weight"):
        load_structured("lenet5", saved["shapes"], saved["state"], source="lenet5.pt")


def test_macs_count_every_conv_and_linear_product_at_the_batch_size():
    model, x = _dense("lenet5"), example_input("lenet5", 3)
    per_image = 20 * 24 * 24 * 25 + 50 * 8 * 8 * 20 * 25 + 500 * 800 + 10 * 500
    assert macs(model, x) == 3 * per_image
