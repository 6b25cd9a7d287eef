"""Training presets: settings for every model under every preset, serialisable for the records."""

import json
from dataclasses import replace

import pytest

from prune.errors import UsageError
from prune.models import MODELS
from prune.presets import PRESETS, TrainSettings, get_preset


def test_the_three_presets_exist():
    assert list(PRESETS) == ["smoke", "quick", "paper"]


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_has_training_settings_for_every_model(name):
    assert set(get_preset(name).train) == set(MODELS)


def test_preset_round_trips_through_json_with_its_budgets():
    data = json.loads(json.dumps(get_preset("quick").to_dict()))
    assert data["name"] == "quick"
    assert data["description"]
    assert data["train"]["lenet300_100"] == get_preset("quick").settings("lenet300_100").to_dict()


def test_paper_preset_follows_the_study_protocol_on_full_data():
    paper = get_preset("paper")
    assert {paper.settings(m).epochs for m in ("lenet300_100", "lenet5")} == {20}
    assert {paper.settings(m).epochs for m in ("resnet18", "resnet50")} == {200}
    assert all(s.train_limit is None and s.test_limit is None for s in paper.train.values())


def test_quick_lenets_train_on_all_data_with_shift_augmentation():
    quick = get_preset("quick")
    assert all(quick.settings(m).train_limit is None and quick.settings(m).max_shift > 0
               for m in ("lenet300_100", "lenet5"))


@pytest.mark.parametrize("name", list(PRESETS))
def test_a_model_source_trains_and_fine_tunes_without_flips_or_shifts(name):
    source = get_preset(name).source
    assert (source.hflip, source.max_shift) == (False, 0)
    assert get_preset(name).settings("resnet18").hflip  # the registry's recipes keep theirs


def test_a_model_source_otherwise_follows_the_quick_resnet_recipe():
    quick = get_preset("quick")
    resnet18 = quick.settings("resnet18")
    assert replace(quick.source, max_shift=resnet18.max_shift, hflip=True,
                   compare_recoveries=resnet18.compare_recoveries) == resnet18


def test_unknown_preset_is_a_usage_error_listing_the_valid_names():
    with pytest.raises(UsageError, match="unknown preset 'huge'; choose from smoke, quick, paper"):
        get_preset("huge")


def test_unknown_learning_rate_schedule_is_rejected():
    with pytest.raises(ValueError, match="unknown lr_schedule 'step'"):
        TrainSettings(epochs=1, batch_size=8, lr=0.1, lr_schedule="step")


def test_settings_used_only_after_training_leave_the_dense_checkpoint_identity_alone():
    settings = get_preset("quick").settings("lenet5")
    changed = replace(settings, finetune_epochs=9, compare_ratios=(10,))
    assert changed.training_dict() == settings.training_dict()
    assert changed.to_dict() != settings.to_dict()
