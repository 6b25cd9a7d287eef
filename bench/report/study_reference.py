"""The study's reported accuracy per pruning ratio, drawn as dashed reference curves on the accuracy plot.

Source: the study this project reproduces (L1-unstructured magnitude pruning, oneshot, no retraining, at
prune.config.STUDY_RATIOS): Table 1 for LeNet-300-100 and LeNet-5 on MNIST, Table 2 for ResNet-18
and ResNet-50 on CIFAR-10. Copy each value as printed (top-1 %, keyed by ratio %); never estimate one. A curve
left empty is not drawn, and the plot says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StudyCurve:
    """One model's accuracy as the study reported it."""

    model: str  # name in prune.models.MODELS
    table: str  # where in the study the numbers are printed, e.g. "Table 1"
    accuracy: dict[float, float] = field(default_factory=dict)  # ratio % -> top-1 %, as printed


# Empty until the study's numbers are copied in: nobody has them at hand yet.
STUDY_CURVES = (
    StudyCurve("lenet300_100", "Table 1"),
    StudyCurve("lenet5", "Table 1"),
    StudyCurve("resnet18", "Table 2"),
    StudyCurve("resnet50", "Table 2"),
)


def study_curves() -> dict[str, StudyCurve]:
    """The curves that hold numbers, by model."""
    return {curve.model: curve for curve in STUDY_CURVES if curve.accuracy}
