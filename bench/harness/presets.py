"""Measurement settings per preset (smoke, quick, paper): batch sizes, repetitions, threads, child time limit.

Accuracy is computed on the training preset's test images (prune.presets.test_limit), the same in every stage.

quick times ResNet-18 at batch 8 and ResNet-50 at batch 4 next to batch 1 (a ResNet-50 forward at batch 64 takes
2 s dense and ten times longer through im2col + CSR at low sparsity), the LeNets at batch 64. Measuring the
LeNets and ResNet-18 with every method (654 figures) took 620 s on 2 cores.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from bench.config import MeasureConfig
from bench.harness.latency import RepsPolicy
from prune.registry import lookup
from prune.models import MODELS


@dataclass(frozen=True)
class MeasurePreset:
    """How much measuring one preset does."""

    name: str
    batch_size: int  # the larger batch timed next to batch 1, for models without an override
    batch_overrides: dict[str, int]  # model -> larger batch
    reps: RepsPolicy
    threads: int | None  # intra-op threads; None: every logical core
    child_timeout_s: float = 600.0  # a measurement taking longer is recorded as failed

    def larger_batch(self, model: str, override: int | None = None) -> int:
        """The larger batch size of `model`: --batch-size when given, else the preset's."""
        return override or self.batch_overrides.get(model, self.batch_size)


PRESETS: dict[str, MeasurePreset] = {
    "smoke": MeasurePreset("smoke", batch_size=8, batch_overrides={},
                           reps=RepsPolicy(warmup=1, min_reps=3, max_reps=20, max_seconds=0.05),
                           threads=1, child_timeout_s=120.0),
    "quick": MeasurePreset("quick", batch_size=64, batch_overrides={"resnet18": 8, "resnet50": 4},
                           reps=RepsPolicy(warmup=1, min_reps=3, max_reps=1000, max_seconds=0.15),
                           threads=2, child_timeout_s=300.0),
    "paper": MeasurePreset("paper", batch_size=64, batch_overrides={},
                           reps=RepsPolicy(warmup=10, min_reps=20, max_reps=2000, max_seconds=3.0,
                                           target_rel_error=0.005),
                           threads=None, child_timeout_s=3600.0),
}


def get_measure_preset(name: str) -> MeasurePreset:
    """Look a preset up by name; an unknown name is a UsageError listing the valid ones."""
    return lookup(PRESETS, "preset", name)


@dataclass(frozen=True)
class MeasureSettings:
    """A preset resolved against the measure options: what this run actually uses."""

    preset: str
    threads: int
    batch_sizes: dict[str, tuple[int, ...]]  # model -> batch sizes timed, 1 first
    reps: RepsPolicy
    child_timeout_s: float

    def to_dict(self) -> dict:
        """JSON-serialisable form (recorded in results.json's environment)."""
        return {"preset": self.preset, "threads": self.threads,
                "batch_sizes": {m: list(b) for m, b in self.batch_sizes.items()}, "reps": self.reps.to_dict(),
                "child_timeout_s": self.child_timeout_s}


def resolve_settings(preset_name: str, mcfg: MeasureConfig, sources: tuple[str, ...] = ()) -> MeasureSettings:
    """The settings of `preset_name` for every registry model and the run's model sources, with --batch-size
    and --threads applied."""
    preset = get_measure_preset(preset_name)
    threads = mcfg.threads or preset.threads or os.cpu_count() or 1
    batches = {m: tuple(dict.fromkeys((1, preset.larger_batch(m, mcfg.batch_size))))
               for m in dict.fromkeys((*MODELS, *sources))}
    return MeasureSettings(preset.name, threads, batches, preset.reps, preset.child_timeout_s)
