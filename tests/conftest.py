"""Options of the benchmark suite, and keeping tests/benchmarks out of every run that does not name it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent / "benchmarks"


def pytest_addoption(parser: pytest.Parser) -> None:
    """The --bench-* options read by tests/benchmarks/conftest.py."""
    group = parser.getgroup("prunebench", "prunebench benchmark suite (tests/benchmarks)")
    group.addoption("--bench-preset", choices=("smoke", "quick"), default="smoke",
                    help="training and measurement preset of the benchmarked models (default smoke)")
    group.addoption("--bench-resnets", action="store_true",
                    help="benchmark resnet18 and resnet50 next to the LeNets (slow)")
    group.addoption("--bench-models", default=None,
                    help="comma-separated models to benchmark instead of the LeNets (and ResNets); registry "
                         "names or model sources (torchvision:mobilenet_v3_small, file.py:function)")
    group.addoption("--bench-input-shape", default=None, metavar="C,H,W",
                    help="the example input of the model sources in --bench-models (required with one)")
    group.addoption("--bench-num-classes", type=int, default=1000,
                    help="a torchvision source's classes (default 1000)")
    group.addoption("--bench-out", type=Path, default=None,
                    help="keep the trained, pruned, exported and measured models here and reuse them on the "
                         "next run (default: a fresh temporary directory)")
    group.addoption("--bench-plant-masked", action="store_true",
                    help="planted regression: run the torch-dense benchmarks through torch-masked on masked.pt")


def names_benchmarks(config: pytest.Config) -> bool:
    """True when a path on the command line is tests/benchmarks or lies inside it."""
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if path == BENCHMARKS or BENCHMARKS in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Skip the timed suite unless it was asked for by path: the default `python -m pytest` stays fast."""
    if collection_path.resolve() == BENCHMARKS and not names_benchmarks(config):
        return True
    return None


@pytest.fixture
def force_parallel_export(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """A call that makes the export stage use its spawned worker processes, as for a ResNet-sized model on 2
    cores (called after the prune stage, which must not see os.cpu_count patched)."""
    import export.stage

    def force() -> None:
        monkeypatch.setattr(export.stage, "PARALLEL_MIN_PARAMETERS", 0)
        monkeypatch.setattr(export.stage.os, "cpu_count", lambda: 2)

    return force


@pytest.fixture(autouse=True)
def no_resolved_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test resolves its own model sources and leaves none behind (prune.models.RESOLVED)."""
    from prune import models

    monkeypatch.setattr(models, "RESOLVED", {})
