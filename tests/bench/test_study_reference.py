"""The study's reference curves: only its printed numbers, at its ratios, for the models it evaluated."""

from __future__ import annotations

from bench.report.study_reference import STUDY_CURVES
from prune.models import MODELS


def test_every_curve_names_a_registered_model_and_its_table():
    assert {c.model: c.table for c in STUDY_CURVES} == {"lenet300_100": "Table 1", "lenet5": "Table 1",
                                                        "resnet18": "Table 2", "resnet50": "Table 2"}
    assert all(c.model in MODELS for c in STUDY_CURVES)
