"""The benchmarked models, built once per session by the harness's own stages, and the figures of each benchmark.

prune -> export -> measure run into one --out directory; each stage skips work whose output already exists for
the same settings, so a kept --bench-out directory is reused. The measure stage's records give the figures the
`benchmark` fixture cannot know (peak RSS of a fresh child process, accuracy); the manifests give the file sizes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from bench_plan import SEED, SuitePlan
from rich.console import Console

from bench.config import MeasureConfig
from bench.harness.measure import run_measure
from bench.records import Record
from export.exporter import artifact_dir, cached_calibration
from export.formats import Format
from export.manifest import artifact_entry, read_manifest
from export.source import PrunedModel, load_pruned
from export.stage import run_export
from prune.config import RunConfig
from prune.models import example_input
from prune.sweep import run_sweep


@dataclass(frozen=True)
class Figures:
    """benchmark.extra_info of every benchmark: what was timed and its deployment figures (None: not known)."""

    preset: str
    model: str
    ratio: float  # pruning ratio asked for, percent
    sparsity: float  # percent zeros over the pruned weights (manifest)
    runtime: str | None  # latency benchmarks: the runtime the benchmark is named after; else None
    format: str  # artifact format read or written (masked for a planted torch-dense benchmark)
    batch: int | None  # latency benchmarks: images per forward; else None
    threads: int  # torch and onnxruntime intra-op threads
    file_bytes: int  # artifact size on disk
    gzip_bytes: int  # artifact size after gzip
    fp32_ref_bytes: int  # fp32 reference of the pruned weights (mask entropy + 4 bytes per float)
    param_bytes: int | None  # bytes of parameters the loaded session holds; export/load benchmarks: None
    peak_rss_bytes: int | None  # peak RSS of the harness's fresh child measuring this runtime; else None
    accuracy: float | None  # top-1 percent; None without the model's test data

    def to_dict(self) -> dict:
        """The JSON-ready extra_info mapping."""
        return asdict(self)


@dataclass
class BuiltSuite:
    """The --out directory of the session, with its manifests and measure records."""

    cfg: RunConfig
    manifests: dict[tuple[str, float], dict]  # (model, ratio) -> manifest
    records: dict[tuple[str, float, str], Record]  # (model, ratio, runtime) -> measure record
    pruned_models: dict[tuple[str, float], PrunedModel] = field(default_factory=dict)

    def entry(self, model: str, ratio: float, fmt: str) -> dict:
        """The manifest entry of one artifact."""
        return artifact_entry(self.manifests[model, ratio], fmt)

    def path(self, model: str, ratio: float, fmt: str) -> Path:
        """Where one artifact lies."""
        return artifact_dir(self.cfg.out, model, ratio) / self.entry(model, ratio, fmt)["file"]

    def pruned(self, model: str, ratio: float) -> PrunedModel:
        """The export stage's input for (model, ratio), loaded once per session."""
        if (model, ratio) not in self.pruned_models:
            images = example_input(model, 1, SEED)
            calibration = cached_calibration(model, self.cfg.data_dir, self.cfg.download, self.cfg.seed)
            pruned = load_pruned(self.cfg.out, model, ratio, images, calibration=calibration)
            pruned.codebook_bits = self.manifests[model, ratio]["codebook_bits"]  # the export's measured choice
            self.pruned_models[model, ratio] = pruned
        return self.pruned_models[model, ratio]

    def figures(self, plan: SuitePlan, model: str, ratio: float, fmt: str, **measured) -> Figures:
        """Figures of one artifact from its manifest; `measured` adds runtime, batch, param/peak bytes, accuracy."""
        manifest, entry = self.manifests[model, ratio], self.entry(model, ratio, fmt)
        known = {"runtime": None, "batch": None, "param_bytes": None, "peak_rss_bytes": None,
                 "accuracy": entry["accuracy"], **measured}
        return Figures(preset=plan.preset, model=model, ratio=ratio, sparsity=manifest["sparsity"], format=fmt,
                       threads=plan.threads, file_bytes=entry["bytes"], gzip_bytes=entry["gzip_bytes"],
                       fp32_ref_bytes=manifest["fp32_ref_bytes"], **known)


def build_suite(plan: SuitePlan, out: Path) -> BuiltSuite:
    """Train, prune, export and measure the plan's models into `out` (reusing what is there) on the CPU."""
    cfg = plan.run_config(out)
    console = Console(quiet=True)  # the stages' progress and tables are no part of the benchmark output
    run_sweep(cfg, console)
    run_export(cfg, console)
    records = run_measure(cfg, MeasureConfig(runtimes=plan.runtimes), console)
    manifests = {(model, ratio): read_manifest(artifact_dir(out, model, ratio))
                 for model in plan.models for ratio in plan.ratios}
    return BuiltSuite(cfg, manifests, {(r.model, r.ratio, r.runtime): r for r in records})


def write_fresh(fmt: Format, pruned: PrunedModel, path: Path) -> None:
    """Write one format from a fresh copy of `pruned`, so its cached conversions (ONNX, state_dict) are redone."""
    fmt.write(replace(pruned), path)
