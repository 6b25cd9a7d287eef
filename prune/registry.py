"""Name -> entry registries (models, datasets, formats, runtimes, presets): one way to add and to look up."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from prune.errors import UsageError

T = TypeVar("T")


def add_entry(registry: dict[str, T], kind: str, name: str, entry: T) -> None:
    """Put `entry` under `name`; a second registration of a name is a bug, not an override."""
    if name in registry:
        raise ValueError(f"{kind} {name!r} registered twice")
    registry[name] = entry


def lookup(registry: dict[str, T], kind: str, name: str) -> T:
    """The entry under `name`; an unknown name is a UsageError listing the valid ones."""
    try:
        return registry[name]
    except KeyError:
        raise UsageError(f"unknown {kind} {name!r}; choose from {', '.join(registry)}") from None


def position(name: str, names: Iterable[str]) -> int:
    """Where `name` stands among `names` (a registry or a tuple of names), unknown names last: to order output
    as the registries list their entries."""
    names = list(names)
    return names.index(name) if name in names else len(names)
