"""Pruned checkpoints stored against their dense weights: exact round trips, small files, checked loading."""

import copy

import pytest
import torch

from prune.errors import ArtifactError
from prune.io import load_checkpoint, save_checkpoint, torch_save
from prune.models import build_model
from prune.pruned_io import load_pruned_state, save_pruned, write_base
from prune.pruning import prune_l1


@pytest.fixture
def dense():
    torch.manual_seed(0)
    return build_model("resnet18").eval()


@pytest.fixture
def stored(tmp_path, dense):
    """(base path, base, checkpoint path) of `dense` pruned 90% without recovery."""
    base = write_base(tmp_path / "dense.pt", dense.state_dict())
    path = tmp_path / "r90.pt"
    save_pruned(path, prune_l1(copy.deepcopy(dense), 90).state_dict(), base, {"ratio": 90})
    return tmp_path / "dense.pt", base, path


def test_a_pruned_state_loads_back_with_every_tensor_equal_and_masks_in_their_weights_dtype(tmp_path, dense):
    state = prune_l1(copy.deepcopy(dense), 70).state_dict()
    base = write_base(tmp_path / "dense.pt", dense.state_dict())
    save_pruned(tmp_path / "r70.pt", state, base, {"ratio": 70})
    loaded, config = load_pruned_state(tmp_path / "r70.pt", tmp_path / "dense.pt")
    assert config["ratio"] == 70 and loaded.keys() == state.keys()
    assert all(loaded[k].dtype == v.dtype and torch.equal(loaded[k], v) for k, v in state.items())


def test_without_recovery_a_checkpoint_is_its_masks_bits_a_thirtieth_of_the_dense_file(stored):
    base_file, _, path = stored
    assert path.stat().st_size < base_file.stat().st_size / 30
    state, config = load_checkpoint(path)
    assert set(state) == set(config["mask_bits"]) and all(v.dtype == torch.uint8 for v in state.values())


def test_only_the_tensors_a_recovery_changed_are_stored(tmp_path, dense):
    base = write_base(tmp_path / "dense.pt", dense.state_dict())
    pruned = prune_l1(copy.deepcopy(dense), 50)
    pruned.bn1.running_mean.add_(1.0)
    save_pruned(tmp_path / "r50.pt", pruned.state_dict(), base, {})
    state, config = load_checkpoint(tmp_path / "r50.pt")
    assert set(state) - set(config["mask_bits"]) == {"bn1.running_mean"}
    assert config["from_base"]["conv1.weight_orig"] == "conv1.weight"


def test_dense_weights_that_changed_after_saving_are_an_artifact_error(stored):
    base_file, base, path = stored
    torch_save(base_file, {**base.state, "fc.bias": base.state["fc.bias"] + 1})
    with pytest.raises(ArtifactError, match="missing or have changed; rerun"):
        load_pruned_state(path, base_file)


def test_a_mask_with_the_wrong_number_of_bits_is_an_artifact_error(stored):
    base_file, _, path = stored
    state, config = load_checkpoint(path)
    save_checkpoint(path, {**state, "conv1.weight_mask": state["conv1.weight_mask"][:-1]}, config)
    with pytest.raises(ArtifactError, match="mask 'conv1.weight_mask' holds"):
        load_pruned_state(path, base_file)


def test_set_padding_bits_are_an_artifact_error(tmp_path):
    torch.manual_seed(0)
    lenet5 = build_model("lenet5")  # its first convolution has 500 weights: 63 bytes of bits, 4 of them padding
    base = write_base(tmp_path / "dense.pt", lenet5.state_dict())
    save_pruned(tmp_path / "r50.pt", prune_l1(lenet5, 50).state_dict(), base, {})
    state, config = load_checkpoint(tmp_path / "r50.pt")
    bits = state["0.weight_mask"].clone()
    bits[-1] |= 1
    save_checkpoint(tmp_path / "r50.pt", {**state, "0.weight_mask": bits}, config)
    with pytest.raises(ArtifactError, match="mask '0.weight_mask' holds"):
        load_pruned_state(tmp_path / "r50.pt", tmp_path / "dense.pt")

def test_a_checkpoint_saved_whole_loads_as_saved_with_bool_masks_as_float(tmp_path, dense):
    state = prune_l1(copy.deepcopy(dense), 50).state_dict()
    save_checkpoint(tmp_path / "r50.pt", {k: v.bool() if k.endswith("weight_mask") else v
                                          for k, v in state.items()}, {"ratio": 50})
    loaded, _ = load_pruned_state(tmp_path / "r50.pt", tmp_path / "absent.pt")
    assert all(loaded[k].dtype == v.dtype and torch.equal(loaded[k], v) for k, v in state.items())
