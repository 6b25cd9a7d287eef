"""Fixtures of the benchmark suite: the plan the --bench-* options ask for, and its models built once."""

from __future__ import annotations

import pytest
from bench_build import BuiltSuite, build_suite
from bench_plan import SuitePlan

PLAN = pytest.StashKey[SuitePlan]()


def suite_plan(config: pytest.Config) -> SuitePlan:
    """The session's plan, decided once from the command line."""
    if PLAN not in config.stash:
        config.stash[PLAN] = SuitePlan.from_config(config)
    return config.stash[PLAN]


def pytest_configure(config: pytest.Config) -> None:
    """Check the --bench-* options before collecting: a bad one is one usage-error line."""
    suite_plan(config)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise `latency_case` and `artifact_case` by the plan (ids carry the preset)."""
    plan = suite_plan(metafunc.config)
    for name, cases in (("latency_case", plan.latency_cases), ("artifact_case", plan.artifact_cases)):
        if name in metafunc.fixturenames:
            found = cases()
            metafunc.parametrize(name, found, ids=[case.id(plan.preset) for case in found])


@pytest.fixture(autouse=True)
def no_resolved_sources() -> None:
    """Overrides tests/conftest.py's: the suite's model sources are resolved once, when its plan is made, and
    stay known to every benchmark of the session."""


@pytest.fixture(scope="session")
def plan(pytestconfig: pytest.Config) -> SuitePlan:
    """What this run benchmarks."""
    return suite_plan(pytestconfig)


@pytest.fixture(scope="session")
def built(plan: SuitePlan, tmp_path_factory: pytest.TempPathFactory) -> BuiltSuite:
    """The plan's models trained, pruned, exported and measured, in --bench-out or a temporary directory."""
    return build_suite(plan, plan.out or tmp_path_factory.mktemp("bench-out"))
