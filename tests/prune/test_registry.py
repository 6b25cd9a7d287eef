"""Registries: a name is registered once, and an unknown name fails listing the valid ones."""

from __future__ import annotations

import pytest

from prune.errors import UsageError
from prune.registry import add_entry, lookup, position


def test_unknown_name_is_a_usage_error_listing_the_valid_names():
    with pytest.raises(UsageError, match=r"unknown model 'vgg'; choose from lenet5, resnet18"):
        lookup({"lenet5": 1, "resnet18": 2}, "model", "vgg")


def test_registering_a_name_twice_is_a_bug():
    registry = {"dense": 1}
    with pytest.raises(ValueError, match="format 'dense' registered twice"):
        add_entry(registry, "format", "dense", 2)
    assert registry == {"dense": 1}


def test_position_follows_the_registry_order_with_unknown_names_last():
    names = {"b": 1, "a": 2}
    assert [position(n, names) for n in ("b", "a", "zzz")] == [0, 1, 2]
