"""The run configuration shared by every stage, and where each stage's outputs live under --out."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from prune.errors import UsageError
from prune.models import get_model_spec

STUDY_RATIOS: tuple[float, ...] = (0, 25, 50, 60, 70, 80, 90, 95, 97, 99)  # percent of each prunable layer zeroed
SCHEDULES = ("oneshot", "iterative")
DEVICES = ("auto", "cpu", "cuda")


def default_data_dir() -> Path:
    """Datasets live in the user's cache directory unless --data-dir says otherwise."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "prunebench" / "data"


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a run's outputs; stages record it next to what they write."""

    models: tuple[str, ...]
    ratios: tuple[float, ...] = STUDY_RATIOS
    out: Path = Path("runs/latest")
    data_dir: Path = field(default_factory=default_data_dir)
    download: bool = False  # fetch missing datasets through torchvision (needs network)
    device: str = "auto"  # auto: cuda when available, else cpu
    seed: int = 0
    preset: str = "quick"  # smoke | quick | paper (prune.presets)
    schedule: str = "oneshot"  # oneshot: each ratio from the dense model; iterative: from the previous ratio
    tolerance: float = 1.0  # accuracy points below dense that still count as "no loss" for the best ratio

    def __post_init__(self) -> None:
        for name in self.models:
            get_model_spec(name)
        if not self.models:
            raise UsageError("no models given; pass --models with at least one name")
        for ratio in self.ratios:
            if not 0 <= ratio < 100:
                raise UsageError(f"ratio {ratio:g} outside [0, 100); pass percentages such as --ratios 0,50,90")
        if self.schedule not in SCHEDULES:
            raise UsageError(f"unknown schedule {self.schedule!r}; choose from {', '.join(SCHEDULES)}")
        if self.device not in DEVICES:
            raise UsageError(f"unknown device {self.device!r}; choose from {', '.join(DEVICES)}")
        if self.tolerance < 0:
            raise UsageError(f"tolerance {self.tolerance:g} is negative; pass accuracy points >= 0")

    def to_dict(self) -> dict:
        """JSON-serialisable form (paths as strings)."""
        return {k: str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v
                for k, v in asdict(self).items()}


def ratio_tag(ratio: float) -> str:
    """Directory/file tag of a ratio: 90 -> 'r90', 99.5 -> 'r99.5'."""
    return f"r{ratio:g}"


def checkpoint_path(out: Path, model: str) -> Path:
    """Trained dense weights of `model`."""
    return Path(out) / "checkpoints" / f"{model}.pt"


def sweep_path(out: Path, model: str) -> Path:
    """Per-ratio records of the pruning sweep of `model`."""
    return Path(out) / "sweep" / f"{model}.json"


def pruned_path(out: Path, model: str, ratio: float) -> Path:
    """The pruned model (state_dict with PyTorch's weight_orig/weight_mask) of `model` at `ratio`."""
    return Path(out) / "pruned" / model / f"{ratio_tag(ratio)}.pt"
