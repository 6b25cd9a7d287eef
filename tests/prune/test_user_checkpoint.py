"""The user's checkpoint for a model source: a state_dict or a dict holding one, keys and shapes checked."""

from pathlib import Path

import pytest
import torch
from torch import nn

from prune.errors import UsageError
from prune.user_checkpoint import load_user_checkpoint


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))


def _saved(tmp_path: Path, blob: object) -> Path:
    path = tmp_path / "weights.pt"
    torch.save(blob, path)
    return path


def _error(path) -> str:
    with pytest.raises(UsageError) as caught:
        load_user_checkpoint(_model(), path, "model 'nets.py:build'")
    assert "\n" not in str(caught.value)
    return str(caught.value)


WRAPPINGS = [lambda s: s, lambda s: {"state_dict": s, "epoch": 3}, lambda s: {"model": s}]


@pytest.mark.parametrize("wrap", WRAPPINGS)
def test_a_state_dict_or_one_nested_under_state_dict_or_model_is_loaded(tmp_path, wrap):
    trained = _model()
    with torch.no_grad():
        trained[3].weight.fill_(0.5)
    model = load_user_checkpoint(_model(), _saved(tmp_path, wrap(trained.state_dict())), "model")
    assert torch.equal(model[3].weight, trained[3].weight)


def test_a_missing_key_names_the_first_one_the_model_holds(tmp_path):
    state = _model().state_dict()
    del state["1.weight"], state["3.bias"]
    message = _error(_saved(tmp_path, state))
    assert message.endswith("does not fit model 'nets.py:build': it lacks 1.weight")


def test_a_shape_mismatch_names_the_key_and_both_shapes(tmp_path):
    state = _model().state_dict()
    state["3.weight"] = torch.zeros(10, 4 * 6 * 6)
    assert _error(_saved(tmp_path, state)).endswith("3.weight has shape [10, 144], the model holds [5, 144]")


def test_an_unexpected_key_is_named(tmp_path):
    state = {**_model().state_dict(), "head.weight": torch.zeros(1)}
    assert _error(_saved(tmp_path, state)).endswith("head.weight is not a key of the model")


def test_a_file_without_a_state_dict_is_refused(tmp_path):
    assert "holds no state_dict" in _error(_saved(tmp_path, {"epoch": 3, "lr": 0.1}))


def test_a_missing_checkpoint_is_named(tmp_path):
    assert _error(tmp_path / "absent.pt") == f"checkpoint {tmp_path / 'absent.pt'}: no such file"


def test_a_pickled_module_is_refused_without_running_it(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(_model(), path)  # a whole pickled module: loading it would need unrestricted unpickling
    assert "not a weights-only torch file" in _error(path)
