"""Training: devices, augmentation, seeded reproducibility, evaluation, checkpoints reused or redone."""

from dataclasses import replace

import pytest
import torch
from rich.console import Console

import prune.train
from prune.config import checkpoint_path
from prune.data import CIFAR10_STANDIN_SOURCE, EMBEDDED_SOURCE, load_splits
from prune.errors import ArtifactError, DatasetUnavailable, UsageError
from prune.io import load_checkpoint, save_checkpoint
from prune.models import build_model
from prune.presets import get_preset
from prune.train import augment, evaluate, resolve_device, run_train, train_model


@pytest.fixture
def console() -> Console:
    return Console(record=True, width=200)


@pytest.fixture(scope="module")
def smoke_splits():
    """The embedded digits limited as the smoke preset trains LeNet-300-100."""
    settings = get_preset("smoke").settings("lenet300_100")
    return load_splits("mnist", "/nonexistent-prunebench-data", train_limit=settings.train_limit,
                       test_limit=settings.test_limit)


def _trained_state(splits, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = build_model("lenet300_100")
    settings = get_preset("smoke").settings("lenet300_100")
    train_model(model, splits, settings, seed, torch.device("cpu"), Console())
    return model.state_dict()


def test_auto_device_is_cuda_only_when_available():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_a_usage_error():
    with pytest.raises(UsageError, match="--device cuda but torch sees no CUDA device"):
        resolve_device("cuda")


def test_shift_augmentation_moves_each_image_by_at_most_the_shift_with_black_padding():
    image = torch.zeros(1, 1, 9, 9, dtype=torch.uint8)
    image[0, 0, 4, 4] = 255
    generator = torch.Generator().manual_seed(0)
    shifted = augment(image.repeat(200, 1, 1, 1), max_shift=2, hflip=False, generator=generator)
    positions = {tuple(torch.nonzero(img[0])[0].tolist()) for img in shifted}
    assert positions == {(r, c) for r in range(2, 7) for c in range(2, 7)}
    assert shifted.dtype == torch.uint8 and int(shifted.sum()) == 255 * 200


def test_flip_augmentation_mirrors_some_images_horizontally():
    image = torch.arange(4, dtype=torch.uint8).view(1, 1, 1, 4).repeat(64, 1, 1, 1)
    flipped = augment(image, max_shift=0, hflip=True, generator=torch.Generator().manual_seed(0))
    rows = {tuple(img.flatten().tolist()) for img in flipped}
    assert rows == {(0, 1, 2, 3), (3, 2, 1, 0)}


def test_evaluate_is_top1_percent():
    model = torch.nn.Flatten()  # logits are the inputs themselves
    x = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert evaluate(model, x, torch.tensor([1, 0, 0, 0])) == 75.0


def test_training_is_reproducible_for_a_seed(smoke_splits):
    first, second = _trained_state(smoke_splits, seed=3), _trained_state(smoke_splits, seed=3)
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_training_with_another_seed_gives_other_weights(smoke_splits):
    first, second = _trained_state(smoke_splits, seed=3), _trained_state(smoke_splits, seed=4)
    assert not torch.equal(first["1.weight"], second["1.weight"])


def test_run_train_writes_a_checkpoint_with_its_config(smoke_config, console):
    cfg = smoke_config()
    configs = run_train(cfg, console)
    state, config = load_checkpoint(checkpoint_path(cfg.out, "lenet300_100"))
    assert config == configs["lenet300_100"]
    assert config["model"] == "lenet300_100" and config["preset"] == "smoke" and config["seed"] == 0
    assert config["train"] == get_preset("smoke").settings("lenet300_100").training_dict()
    assert config["dataset"] == {"source": EMBEDDED_SOURCE, "train_size": 256, "test_size": 256}
    assert 0 <= config["accuracy"] <= 100
    assert set(state) == set(build_model("lenet300_100").state_dict())


def test_checkpoint_for_the_same_config_is_reused_without_training(smoke_config, console, monkeypatch):
    cfg = smoke_config()
    run_train(cfg, console)
    before = checkpoint_path(cfg.out, "lenet300_100").read_bytes()
    monkeypatch.setattr(prune.train, "train_model", lambda *a, **k: pytest.fail("retrained"))
    run_train(cfg, console)
    assert checkpoint_path(cfg.out, "lenet300_100").read_bytes() == before
    assert "reusing" in console.export_text()


def test_checkpoint_for_a_changed_config_is_retrained(smoke_config, console):
    run_train(smoke_config(seed=0), console)
    first, _ = load_checkpoint(checkpoint_path(smoke_config().out, "lenet300_100"))
    run_train(smoke_config(seed=1), console)
    second, config = load_checkpoint(checkpoint_path(smoke_config().out, "lenet300_100"))
    assert config["seed"] == 1
    assert not torch.equal(first["1.weight"], second["1.weight"])


def test_checkpoint_of_another_model_is_an_artifact_error(smoke_config, console):
    cfg = smoke_config()
    path = checkpoint_path(cfg.out, "lenet300_100")
    save_checkpoint(path, build_model("lenet5").state_dict(), {"model": "lenet5"})
    with pytest.raises(ArtifactError, match=r"lenet300_100.pt: holds a lenet5 checkpoint, not lenet300_100"):
        run_train(cfg, console)


def test_checkpoint_with_another_architectures_weights_is_an_artifact_error(smoke_config, console):
    cfg = smoke_config()
    path = checkpoint_path(cfg.out, "lenet300_100")
    save_checkpoint(path, build_model("lenet5").state_dict(), {"model": "lenet300_100"})
    with pytest.raises(ArtifactError, match="not a lenet300_100 state"):
        run_train(cfg, console)


def test_unreadable_checkpoint_is_an_artifact_error(smoke_config, console):
    cfg = smoke_config()
    path = checkpoint_path(cfg.out, "lenet300_100")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a torch file")
    with pytest.raises(ArtifactError, match="lenet300_100.pt: not a readable torch file"):
        run_train(cfg, console)


def test_training_a_resnet_on_a_broken_cifar10_folder_is_unavailable_before_training_anything(smoke_config,
                                                                                             console, tmp_path):
    cfg = smoke_config(models=("lenet300_100", "resnet18"))
    (cfg.data_dir / "cifar-10-batches-py").mkdir(parents=True)
    with pytest.raises(DatasetUnavailable, match="CIFAR10 in .* unusable"):
        run_train(cfg, console)
    assert not checkpoint_path(cfg.out, "lenet300_100").exists()


def test_resnet_without_cifar10_trains_on_the_embedded_digits_as_its_named_stand_in(smoke_config, console):
    config = run_train(smoke_config(models=("resnet18",)), console)["resnet18"]
    assert config["dataset"] == {"source": CIFAR10_STANDIN_SOURCE, "train_size": 64, "test_size": 64}


def test_resnet_trains_on_cifar10_files(smoke_config, console, cifar_dir):
    cfg = smoke_config(models=("resnet18",), data_dir=cifar_dir)
    config = run_train(cfg, console)["resnet18"]
    assert config["dataset"] == {"source": "cifar10", "train_size": 15, "test_size": 6}


def test_train_settings_change_the_checkpoint_identity(smoke_config):
    settings = get_preset("smoke").settings("lenet300_100")
    a = prune.train.checkpoint_identity(smoke_config(), "lenet300_100", settings, None)
    b = prune.train.checkpoint_identity(smoke_config(), "lenet300_100", replace(settings, epochs=2), None)
    assert not prune.train.same_identity(a, b)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_and_evaluation_run_on_cuda(smoke_splits):
    torch.manual_seed(0)
    model = build_model("lenet300_100")
    settings = get_preset("smoke").settings("lenet300_100")
    accuracy = train_model(model, smoke_splits, settings, 0, torch.device("cuda"), Console())
    assert next(model.parameters()).is_cuda and 0 <= accuracy <= 100
