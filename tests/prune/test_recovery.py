"""Recovery after pruning: BatchNorm re-estimation touches only BatchNorm buffers, fine-tuning keeps pruned
weights at zero and is seeded, the iterative helper recovers after each step, unknown names list the valid."""

from collections.abc import Callable

import pytest
import torch
from rich.console import Console
from torch import nn

from prune.data import DatasetSpec, Split, Splits
from prune.errors import UsageError
from prune.presets import TrainSettings
from prune.pruning import global_sparsity, is_masked, prune_l1
from prune.recovery import RecoveryContext, get_recovery
from prune.structured import prune_structured

BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
SKIP = "Sequential has no BatchNorm layers"


def _tiny_bn_net() -> nn.Module:
    """Two conv + BatchNorm blocks, a hidden Linear and a classifier, for 1x8x8 images."""
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
        nn.Linear(8 * 8 * 8, 16), nn.ReLU(), nn.Linear(16, 10),
    )


def _tiny_mlp() -> nn.Module:
    """A LeNet-300-100-like net without BatchNorm, for 1x8x8 images."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))


def _seeded(build: Callable[[], nn.Module], seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build().eval()


def _pruned_bn_net() -> nn.Module:
    """The BatchNorm net with 50% of every conv and hidden Linear weight masked by l1_unstructured."""
    return prune_l1(_seeded(_tiny_bn_net), 50)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def splits() -> Splits:
    """96 training and 32 test random 1x8x8 uint8 images with labels 0-9."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (128, 1, 8, 8), dtype=torch.uint8, generator=generator)
    labels = torch.arange(128) % 10
    spec = DatasetSpec("tiny", lambda *_: None, mean=(0.5,), std=(0.25,))
    return Splits(Split(images[:96], labels[:96], "random"), Split(images[96:], labels[96:], "random"), spec)


@pytest.fixture
def ctx(splits) -> RecoveryContext:
    settings = TrainSettings(epochs=3, batch_size=32, lr=0.5, weight_decay=5e-4, max_shift=1)
    return RecoveryContext(splits, settings, epochs=2, seed=0, device=torch.device("cpu"), console=Console())


def test_bn_changes_only_batchnorm_running_statistics(ctx):
    model = _pruned_bn_net()
    before = _state(model)
    assert get_recovery("bn").run(model, ctx) is None
    after = model.state_dict()
    bn_prefixes = {f"{name}." for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    bn_buffers = {f"{prefix}{buffer}" for prefix in bn_prefixes for buffer in BN_BUFFERS}
    assert after.keys() == before.keys() and bn_buffers < before.keys()
    for key in before.keys() - bn_buffers:
        assert torch.equal(after[key], before[key]), key
    for prefix in bn_prefixes:
        assert not torch.equal(after[f"{prefix}running_mean"], before[f"{prefix}running_mean"])
        assert not torch.equal(after[f"{prefix}running_var"], before[f"{prefix}running_var"])
        assert int(after[f"{prefix}num_batches_tracked"]) == 3  # 96 images in batches of 32


def test_bn_running_mean_is_the_plain_average_over_the_training_images(ctx, splits):
    model = _pruned_bn_net()
    get_recovery("bn").run(model, ctx)
    with torch.no_grad():  # 96 images in equal batches: the average of batch means is the mean over all
        features = model[0](splits.spec.normalise(splits.train.images))
    torch.testing.assert_close(model[1].running_mean, features.mean((0, 2, 3)))


def test_bn_leaves_the_model_in_eval_mode_and_restores_momentum(ctx):
    model = _pruned_bn_net()
    model[1].momentum = 0.3
    get_recovery("bn").run(model, ctx)
    assert not any(m.training for m in model.modules())
    assert model[1].momentum == 0.3 and model[4].momentum == 0.1


def test_bn_skips_a_model_without_batchnorm_and_says_so(ctx):
    model = prune_l1(_seeded(_tiny_mlp), 50)
    before = _state(model)
    note = get_recovery("bn").run(model, ctx)
    assert note == f"skipped: {SKIP}"
    after = model.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)


def test_finetune_keeps_pruned_weights_zero_and_changes_the_others(ctx):
    model = _pruned_bn_net()
    before = _state(model)
    assert get_recovery("finetune").run(model, ctx) is None
    assert is_masked(model)
    for name in ("0", "3", "7"):
        mask, weight = model.get_submodule(name).weight_mask, model.get_submodule(name).weight
        assert torch.equal(mask, before[f"{name}.weight_mask"])
        assert torch.equal(weight, model.get_submodule(name).weight_orig * mask)  # current, not stale
        assert not weight.is_inference()  # not the tensor evaluation's inference_mode forward left
        assert bool((weight[mask == 0] == 0).all())
        assert not torch.equal(weight[mask == 1], before[f"{name}.weight_orig"][mask == 1])
    assert global_sparsity(model) == pytest.approx(50, abs=0.5)


def test_finetune_trains_a_structured_model(ctx):
    model = prune_structured(_seeded(_tiny_bn_net), 50, torch.zeros(2, 1, 8, 8), classifier="9")
    before = _state(model)
    get_recovery("finetune").run(model, ctx)
    assert not is_masked(model) and not model.training
    assert not torch.equal(model[0].weight, before["0.weight"])
    assert not torch.equal(model[9].weight, before["9.weight"])


def test_finetune_is_reproducible_for_a_seed(ctx):
    states = []
    for _ in range(2):
        model = _pruned_bn_net()
        get_recovery("finetune").run(model, ctx)
        states.append(model.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_finetune_needs_at_least_one_epoch(ctx):
    with pytest.raises(ValueError, match="at least 1 epoch"):
        get_recovery("finetune").run(_pruned_bn_net(), RecoveryContext(**{**vars(ctx), "epochs": 0}))


def test_none_leaves_the_model_unchanged(ctx):
    model = _pruned_bn_net()
    before = _state(model)
    assert get_recovery("none").run(model, ctx) is None
    assert all(torch.equal(model.state_dict()[k], before[k]) for k in before)


def test_unknown_recovery_is_a_usage_error_listing_the_valid_ones():
    with pytest.raises(UsageError, match="unknown recovery 'retrain'; choose from none, bn, finetune"):
        get_recovery("retrain")
