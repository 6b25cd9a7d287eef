"""Measurement presets and how --batch-size / --threads override them."""

from __future__ import annotations

import os

import pytest

from bench.config import MeasureConfig
from bench.harness.presets import PRESETS, get_measure_preset, resolve_settings
from prune.errors import UsageError


def test_quick_times_lenets_at_64_resnet18_at_8_and_resnet50_at_4_on_two_threads():
    settings = resolve_settings("quick", MeasureConfig())
    assert settings.threads == 2
    assert settings.batch_sizes == {"lenet300_100": (1, 64), "lenet5": (1, 64), "resnet18": (1, 8),
                                    "resnet50": (1, 4)}


def test_batch_size_and_threads_options_override_the_preset():
    settings = resolve_settings("quick", MeasureConfig(batch_size=32, threads=1))
    assert set(settings.batch_sizes.values()) == {(1, 32)} and settings.threads == 1


def test_batch_size_1_is_timed_once():
    assert resolve_settings("smoke", MeasureConfig(batch_size=1)).batch_sizes["lenet5"] == (1,)


def test_paper_uses_every_core():
    assert resolve_settings("paper", MeasureConfig()).threads == os.cpu_count()


def test_every_preset_repeats_at_least_three_times():
    assert all(p.reps.min_reps >= 3 and p.reps.warmup >= 1 for p in PRESETS.values())


def test_unknown_preset_is_a_usage_error_listing_the_valid_ones():
    with pytest.raises(UsageError, match="unknown preset 'fast'; choose from smoke, quick, paper"):
        get_measure_preset("fast")
