"""Saved runs of `bench regress`: pytest-benchmark's numbered file storage, per machine, raw samples kept.

pytest-benchmark, pytest and scipy come with the `dev` extra only, so they are imported where they are used,
never when `python -m bench` builds its parser.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType

from prune.errors import ArtifactError, UsageError
from prune.io import write_bytes

DEV_MODULES = ("pytest", "pytest_benchmark", "scipy")  # what `bench regress` needs from the dev extra


def dev_module(name: str) -> ModuleType:
    """Import a module of the dev extra; missing, it is a UsageError naming the install command."""
    try:
        return importlib.import_module(name)
    except ImportError:
        package = name.split(".")[0].replace("_", "-")
        raise UsageError(f"`python -m bench regress` needs {package}, which is not installed: "
                         'pip install -e ".[dev]"') from None


def check_dev_extra() -> None:
    """Fail before the suite runs when a module of the dev extra is missing."""
    for name in DEV_MODULES:
        dev_module(name)


def machine_id() -> str:
    """pytest-benchmark's name for this machine's folder of saved runs (platform, interpreter, bits)."""
    return dev_module("pytest_benchmark.utils").get_machine_id()


def newest_saved_run(storage: Path) -> Path | None:
    """The highest-numbered saved run of this machine in pytest-benchmark's storage layout, if any."""
    runs = sorted((storage / machine_id()).glob("[0-9][0-9][0-9][0-9]_*.json"))
    return runs[-1] if runs else None


def save_run(storage: Path, run: Path) -> Path:
    """Store `run` as the next numbered file of this machine, as `--benchmark-save=regress` would name it.

    Copied whole, as `--benchmark-save-data` would keep it: the raw timings (stats.data) and the paired ratios
    in extra_info are what the next run is tested against.
    """
    latest = newest_saved_run(storage)
    number = int(latest.name[:4]) + 1 if latest else 1
    target = storage / machine_id() / f"{number:04d}_regress.json"
    write_bytes(target, run.read_bytes())
    return target


def load_run(path: Path) -> dict[str, dict]:
    """Benchmarks of a pytest-benchmark JSON file by full name."""
    try:
        data = json.loads(path.read_text())
        return {bench["fullname"]: bench for bench in data["benchmarks"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{path}: not a pytest-benchmark JSON run ({exc}); delete it or pick "
                            "another") from None
