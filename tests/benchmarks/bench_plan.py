"""What the benchmark suite times, decided from the --bench-* options: models, ratios, runtimes, batch sizes.

Batch sizes and thread counts are the measure stage's (bench.harness.presets), so the latency the fixture times and
the peak memory and accuracy the harness measured describe the same runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.config import MeasureConfig
from bench.harness.presets import resolve_settings
from bench.runtimes import select_runtimes
from export.formats import FORMATS
from prune.config import STUDY, RunConfig, ratio_tag, safe_dirname
from prune.errors import UsageError
from prune.models import MODELS, is_source
from prune.sources import parse_input_shape, split_models

LENETS = ("lenet300_100", "lenet5")
RESNETS = ("resnet18", "resnet50")
RATIOS = {"smoke": (0.0, 90.0), "quick": (0.0, 50.0, 90.0, 99.0)}  # preset -> ratios (0: the reference)
PLANTED = {"torch-dense": "torch-masked"}  # --bench-plant-masked: benchmark name -> runtime actually timed
SEED = 0
REFERENCE_RATIO = 0.0  # every benchmark is also timed against its model's dense model at this ratio ...
REFERENCE_RUNTIME = "torch-dense"  # ... run by this runtime (latency; never planted: it is the yardstick)
REFERENCE_FORMAT = "dense"  # ... or written and loaded in this format (export and load)


@dataclass(frozen=True)
class LatencyCase:
    """One inference-latency benchmark: a model pruned at a ratio, run by a runtime at a batch size."""

    model: str
    ratio: float
    runtime: str  # name in bench.runtimes.RUNTIMES; what the benchmark is called, planted or not
    batch: int

    def id(self, preset: str) -> str:
        """The pytest id, e.g. smoke-lenet5-r90-torch-dense-b8: the preset keeps smoke and quick runs apart (a
        model source by its directory name: torchvision-mobilenet_v3_small, no ':' or '/' in a node id)."""
        return f"{preset}-{safe_dirname(self.model)}-{ratio_tag(self.ratio)}-{self.runtime}-b{self.batch}"

    def reference(self) -> LatencyCase:
        """The case this one is timed against: the same model and batch, dense at ratio 0."""
        return LatencyCase(self.model, REFERENCE_RATIO, REFERENCE_RUNTIME, self.batch)


@dataclass(frozen=True)
class ArtifactCase:
    """One export-time or load-time benchmark: a model pruned at a ratio, in one artifact format."""

    model: str
    ratio: float
    format: str  # key in export.formats.FORMATS

    def id(self, preset: str) -> str:
        """The pytest id, e.g. smoke-lenet5-r90-packed."""
        return f"{preset}-{safe_dirname(self.model)}-{ratio_tag(self.ratio)}-{self.format}"

    def reference(self) -> ArtifactCase:
        """The case this one is timed against: the same model's dense format at ratio 0."""
        return ArtifactCase(self.model, REFERENCE_RATIO, REFERENCE_FORMAT)


@dataclass(frozen=True)
class SuitePlan:
    """The suite of one pytest run."""

    preset: str  # smoke | quick: the prune and measure presets of the benchmarked models
    models: tuple[str, ...]
    ratios: tuple[float, ...]
    runtimes: tuple[str, ...]  # every CPU runtime of bench.runtimes
    batch_sizes: dict[str, tuple[int, ...]]  # model -> batch sizes timed (the measure preset's)
    threads: int  # intra-op threads (the measure preset's)
    out: Path | None  # where the models are built and kept; None: a temporary directory
    plant_masked: bool  # route the torch-dense benchmarks through torch-masked (a planted regression)
    pair_seconds: float  # paired timing of each benchmark against its reference (--benchmark-max-time)
    input_shape: tuple[int, int, int] | None = None  # (C, H, W) of the model sources (--bench-input-shape)
    num_classes: int = 1000  # a torchvision source's classes (--bench-num-classes)

    @classmethod
    def from_config(cls, config: pytest.Config) -> SuitePlan:
        """The plan the command line asks for; an unknown model, or a model source that does not resolve (no
        --bench-input-shape, a missing file, ...), is a usage error of one line."""
        preset = config.getoption("bench_preset")
        models = LENETS + (RESNETS if config.getoption("bench_resnets") else ())
        if config.getoption("bench_models"):
            try:
                models = split_models(config.getoption("bench_models"))
            except UsageError as exc:
                raise pytest.UsageError(f"--bench-models: {exc}") from None
        unknown = [name for name in models if name not in MODELS and not is_source(name)]
        if unknown or not models:
            raise pytest.UsageError(f"--bench-models {','.join(unknown)}: choose from {', '.join(MODELS)}, or "
                                    "name a model source such as torchvision:mobilenet_v3_small")
        sources = tuple(name for name in models if is_source(name))
        settings = resolve_settings(preset, MeasureConfig(), sources)
        plan = cls(preset, models, RATIOS[preset], tuple(select_runtimes(None, "cpu")),
                   {model: settings.batch_sizes[model] for model in models}, settings.threads,
                   config.getoption("bench_out"), config.getoption("bench_plant_masked"),
                   float(config.getoption("benchmark_max_time")), _input_shape(config, sources),
                   config.getoption("bench_num_classes"))
        try:
            plan.run_config(plan.out or Path("."))  # resolves the sources in this process, once per session
        except UsageError as exc:
            raise pytest.UsageError(f"--bench-models: {exc}") from None
        return plan

    def run_config(self, out: Path) -> RunConfig:
        """The harness's configuration of the suite's models: the study's grid only, on the CPU, into `out`,
        every file kept after measuring (the benchmarks load and run each format)."""
        return RunConfig(models=self.models, ratios=self.ratios, out=out, device="cpu", seed=SEED,
                         preset=self.preset, methods=(STUDY.method,), recoveries=(STUDY.recovery,),
                         input_shape=self.input_shape, num_classes=self.num_classes, keep_artifacts=True)

    def timed_runtime(self, runtime: str) -> str:
        """The runtime a latency benchmark named `runtime` actually runs (differs only under the plant)."""
        return PLANTED.get(runtime, runtime) if self.plant_masked else runtime

    def latency_cases(self) -> list[LatencyCase]:
        """Every model x ratio x runtime x batch size."""
        return [LatencyCase(model, ratio, runtime, batch) for model in self.models for ratio in self.ratios
                for runtime in self.runtimes for batch in self.batch_sizes[model]]

    def artifact_cases(self) -> list[ArtifactCase]:
        """Every model x ratio x artifact format."""
        return [ArtifactCase(model, ratio, fmt) for model in self.models for ratio in self.ratios
                for fmt in FORMATS]


def _input_shape(config: pytest.Config, sources: tuple[str, ...]) -> tuple[int, int, int] | None:
    """--bench-input-shape as (C, H, W): required with a model source, refused without one."""
    text = config.getoption("bench_input_shape")
    if sources and text is None:
        raise pytest.UsageError(f"--bench-models {','.join(sources)}: a model source needs --bench-input-shape "
                                "C,H,W, such as 3,224,224")
    if text is not None and not sources:
        raise pytest.UsageError("--bench-input-shape applies to model sources only; name one in --bench-models")
    try:
        return None if text is None else parse_input_shape(text)
    except UsageError as exc:
        raise pytest.UsageError(str(exc).replace("--input-shape", "--bench-input-shape")) from None
