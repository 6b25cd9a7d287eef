"""`python -m bench measure`: every exported artifact through every runtime, each in its own fresh process.

Per model x variant x ratio x runtime, at the ratios whose latency is timed (RunConfig.is_timed): param bytes,
peak RSS, latency at batch 1 and the larger batch, accuracy (a lossless file's from export, when the runtime
reproduces its logits) and the logits' max abs difference from the in-memory pruned model. Results go to
<out>/results.json and results.csv after each model; a rerun with the same environment and settings keeps the
records it already has, and a run over fewer models, ratios or runtimes keeps the other records of the earlier
run whose artifact files are unchanged. The study's variant goes through every runtime; the other methods and
recoveries through COMPARE_RUNTIMES, the ones a user would ship them on. Once a model is measured, only its
KEPT_FORMATS files stay on disk (unless --keep-artifacts): export rebuilds the others from the pruned
checkpoint, as it does when a later run needs them.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from bench.harness.child import ChildResult, run_in_child
from bench.config import MeasureConfig
from bench.harness.environment import collect_environment
from bench.harness.job import Job, run_job
from bench.harness.presets import MeasureSettings, resolve_settings
from bench.records import (BASELINE_RUNTIME, ArtifactFile, LatencyStats, Record, attach_file_ratios,
                           attach_ratios_to_dense)
from bench.results import results_path, reusable_records, write_results
from bench.runtimes import RUNTIMES, Runtime, get_runtime, select_runtimes
from export.exporter import artifact_dir, export_job
from export.formats import formats_for, get_format
from export.stage import Cell, export_jobs, job_arguments
from export.loaders import load_torch_model
from export.manifest import (artifact_entry, has_lossy_formats, has_sparse_formats, is_kept, manifest_path,
                             read_manifest, remove_measured, removed_after_measuring)
from export.verify import allowed_diff, load_eval_data
from prune.config import STUDY, RunConfig, Variant, ratio_tag, safe_dirname
from prune.errors import ArtifactError
from prune.io import torch_save
from prune.models import MODELS, get_model_spec, is_source
from prune.presets import eval_limit
from prune.registry import position
from prune.sources import source_identity

REFERENCE_FORMATS = ("masked", "dense")  # the first a cell has is the pruned model every runtime's logits match
# the runtimes of every variant but the study's: the dense artifact on eager torch and on onnxruntime (a structured
# model has nothing sparse to run, and the study's grid already shows what the sparse runtimes make of zeros)
COMPARE_RUNTIMES = ("torch-dense", "torch-dense-cuda", "ort-dense", "ort-int8")
# the compact files a user ships, kept once measured; the others (masked, dense, sparse and fp32 ONNX files, 2-5x
# dense at low ratios) export rewrites from the pruned checkpoint, byte for byte, when a run needs them again
KEPT_FORMATS = ("packed", "codebook", "onnx_int8")


@dataclass(frozen=True)
class ModelData:
    """The images a model is checked on, and the test split saved for the children (or why there is none)."""

    check_input: np.ndarray  # first test images (or a seeded random batch): the logits check
    test_data: Path | None  # torch file {"x", "y"} the children compute accuracy on
    dataset: str  # data source, or "none"
    accuracy_note: str | None  # why accuracy is None
    test_images: int | None  # how many test images accuracy uses (the preset's, as in prune and export)
    source: dict | None = None  # a model source's identity (prune.sources.source_identity); None: the registry's


def cell_variant(manifest: dict) -> Variant:
    """The variant a manifest was exported from (manifests written before methods existed: the study's)."""
    return Variant(manifest.get("method", STUDY.method), manifest.get("recovery", STUDY.recovery))


def cell_runtimes(runtimes: list[Runtime], variant: Variant, manifest: dict) -> list[Runtime]:
    """The runtimes that measure one cell: those whose format it has, only COMPARE_RUNTIMES off the study's grid."""
    formats = formats_for(has_sparse_formats(manifest), has_lossy_formats(manifest))
    return [rt for rt in runtimes if rt.format in formats and (variant.is_study or rt.name in COMPARE_RUNTIMES)]


def reference_format(manifest: dict) -> str:
    """The format whose module gives a cell's reference logits: masked.pt, or dense.pt where the sparse formats
    were not written (a structured model, the other variants), which export checked against the pruned model."""
    return REFERENCE_FORMATS[0] if has_sparse_formats(manifest) else REFERENCE_FORMATS[1]


def read_manifests(cfg: RunConfig, runtimes: list[Runtime]) -> dict[Cell, dict]:
    """Every (model, variant, ratio) manifest, checked before any measuring: missing, or a timed cell without
    the files its runtimes read, is an ArtifactError."""
    manifests = {}
    for model, variant, ratio in export_jobs(cfg):
        directory = artifact_dir(cfg.out, model, ratio, variant)
        if not manifest_path(directory).is_file():
            raise ArtifactError(f"{manifest_path(directory)}: no exported artifacts for {model} ({variant.tag}) at "
                                f"ratio {ratio:g}; run `python -m bench export` first")
        manifest = read_manifest(directory)
        if cfg.is_timed(model, variant, ratio):
            for fmt in {reference_format(manifest), *(rt.format for rt in cell_runtimes(runtimes, variant,
                                                                                         manifest))}:
                entry = artifact_entry(manifest, fmt)
                if not is_kept(entry) and not removed_after_measuring(entry):
                    raise ArtifactError(f"{directory}: {fmt} was not kept on disk (its latency was not to be "
                                        "timed); run `python -m bench export` with the same --latency-ratios first")
        manifests[model, variant, ratio] = manifest
    return manifests


def manifest_or_none(directory: Path) -> dict | None:
    """The directory's manifest, or None when it is missing or unreadable (nothing to keep or pair from it)."""
    try:
        return read_manifest(directory)
    except ArtifactError:
        return None


def record_cell(record: Record) -> Cell:
    """The (model, variant, ratio) a record measured."""
    return record.model, Variant(record.method, record.recovery), record.ratio


def unchanged_records(out: Path, kept: dict[tuple, Record]) -> tuple[list[Record], dict[Cell, dict]]:
    """Kept records whose artifact file is still the one on disk, with the manifests that say so.

    Written beside this run's records, they let a run over fewer models, ratios or runtimes add to results.json
    instead of dropping the rest, and keep not-yet-remeasured records when a run is interrupted.
    """
    manifests: dict[Cell, dict | None] = {}
    unchanged = []
    for record in kept.values():
        model, variant, ratio = where = record_cell(record)
        if where not in manifests:
            manifests[where] = manifest_or_none(artifact_dir(out, model, ratio, variant))
        entries = manifests[where]["artifacts"] if manifests[where] else []
        if any(e["file"] == record.artifact and e["sha256"] == record.artifact_sha256 for e in entries):
            unchanged.append(record)
    return unchanged, {record_cell(r): manifests[record_cell(r)] for r in unchanged}


def merged(records: list[Record], unchanged: list[Record]) -> list[Record]:
    """This run's records and the unchanged earlier ones it did not redo, in the order model, variant (the
    study's first), ratio, runtime."""
    done = {r.key for r in records}
    return sorted(records + [r for r in unchanged if r.key not in done],
                  key=lambda r: (position(r.model, MODELS), r.model, record_cell(r)[1].order, record_cell(r)[1],
                                 r.ratio, position(r.runtime, RUNTIMES)))


def covered_config(config: dict, records: list[Record], files: list[ArtifactFile]) -> dict:
    """The run config with models, ratios and runtimes set to those the records cover (the report's command);
    the study's ratios also count those whose files were measured but not timed. Compare ratios and recoveries
    left to the preset (None) stay so: they differ per model, and no one list reproduces them."""
    study = [r for r in records if record_cell(r)[1].is_study]
    sized = {f.ratio for f in files if Variant(f.method, f.recovery).is_study}
    covered = {"models": list(dict.fromkeys(r.model for r in records)),
               "ratios": sorted({r.ratio for r in study} | sized),
               "methods": list(dict.fromkeys(r.method for r in records)),
               "runtimes": list(dict.fromkeys(r.runtime for r in records))}
    if config.get("compare_ratios") is not None:
        covered["compare_ratios"] = sorted({r.ratio for r in records if r not in study}) or config["compare_ratios"]
    if config.get("recoveries") is not None:
        covered["recoveries"] = list(dict.fromkeys(r.recovery for r in records))
    return {**config, **covered}


def in_model_order(manifests: dict[Cell, dict]) -> dict[Cell, dict]:
    """`manifests` ordered by model (registry first), variant and ratio, as results.json lists files."""
    return dict(sorted(manifests.items(), key=lambda item: (position(item[0][0], MODELS), item[0][0],
                                                            item[0][1].order, item[0][1:])))


def artifact_files(manifests: dict[Cell, dict]) -> list[ArtifactFile]:
    """The size of every artifact the manifests list, with its ratio to the same model's dense.pt at ratio 0."""
    files = [ArtifactFile(model, ratio, manifest["sparsity"], entry["format"], entry["file"], entry["bytes"],
                          entry["gzip_bytes"], manifest["fp32_ref_bytes"], gzip_note=entry["gzip_note"],
                          method=variant.method, recovery=variant.recovery, accuracy=entry["accuracy"],
                          kept=is_kept(entry))
             for (model, variant, ratio), manifest in manifests.items() for entry in manifest["artifacts"]]
    attach_file_ratios(files)
    return files


def model_data(cfg: RunConfig, model: str, scratch: Path) -> ModelData:
    """Load the model's test images once (the same ones prune and export use); save them for the children."""
    data = load_eval_data(model, cfg.data_dir, cfg.download, cfg.seed, eval_limit(cfg.preset, model))
    check = data.x[:data.verify_count].contiguous().numpy()
    source = source_identity(cfg.model_source(model), cfg.checkpoint) if is_source(model) else None
    if data.y is None:
        return ModelData(check, None, "none", data.note, None, source)
    path = scratch / f"{safe_dirname(model)}-test.pt"
    torch_save(path, {"x": data.x.contiguous(), "y": data.y.contiguous()})
    return ModelData(check, path, data.source, None, len(data.y), source)


def reference_logits(directory: Path, manifest: dict, model: str, check_input: np.ndarray) -> np.ndarray:
    """Logits of the pruned model (PyTorch's hooks live, or a structured model) on the check images, in float64."""
    entry = artifact_entry(manifest, reference_format(manifest))
    module = load_torch_model(directory / entry["file"], model, entry["sha256"])
    with torch.inference_mode():
        return module(torch.from_numpy(check_input)).double().numpy()


def auto_notes(layer_choice: dict[str, dict[str, str]]) -> list[str]:
    """One line per batch size saying how many pruned layers torch-auto ran as CSR."""
    return [f"batch {batch}: {sum(f == 'sparse' for f in choice.values())} of {len(choice)} pruned layers CSR"
            for batch, choice in layer_choice.items()]


RUNTIME_ACCURACY_NOTE = ("accuracy measured through this runtime: its logits differ from the file's by more than "
                         "fp32 rounding")


def build_record(model: str, ratio: float, runtime: Runtime, manifest: dict, data: ModelData, threads: int,
                 result: ChildResult) -> Record:  # the variant and MACs come from the manifest
    """A Record from the manifest's file figures and what the child measured (or its error)."""
    entry = artifact_entry(manifest, runtime.format)
    found = result.value if result.ok else {}
    accuracy = found.get("accuracy")
    note = "measurement failed" if not result.ok else data.accuracy_note if accuracy is None else None
    notes = list(runtime.notes) + auto_notes(found.get("layer_choice", {}))
    if found.get("logits_differ"):
        notes.append(RUNTIME_ACCURACY_NOTE)
    if get_format(runtime.format).lossy and manifest.get("calibration"):
        notes.append(f"calibrated on {manifest['calibration']}")
    return Record(
        model=model, dataset=data.dataset, ratio=ratio, sparsity=manifest["sparsity"], runtime=runtime.name,
        artifact=entry["file"], device=runtime.device, threads=threads, accuracy=accuracy, accuracy_note=note,
        file_bytes=entry["bytes"], gzip_bytes=entry["gzip_bytes"], fp32_ref_bytes=manifest["fp32_ref_bytes"],
        param_bytes=found.get("param_bytes"), peak_rss_bytes=found.get("peak_rss_bytes"),
        baseline_rss_bytes=found.get("baseline_rss_bytes"), cuda_peak_bytes=found.get("cuda_peak_bytes"),
        latency_ms={b: LatencyStats(**s) for b, s in found.get("latency_ms", {}).items()},
        max_abs_diff=found.get("max_abs_diff"), paired_dense_ms=found.get("paired_dense_ms", {}), notes=notes,
        layer_choice=found.get("layer_choice", {}),
        artifact_sha256=entry["sha256"], error=result.error,
        test_images=data.test_images if accuracy is not None else None, gzip_note=entry["gzip_note"],
        method=cell_variant(manifest).method, recovery=cell_variant(manifest).recovery, macs=manifest.get("macs"),
        source=data.source)


@dataclass(frozen=True)
class MeasureRun:
    """What one invocation of the stage measures, and the records it may keep from the previous run."""

    cfg: RunConfig
    settings: MeasureSettings
    runtimes: list[Runtime]
    manifests: dict[Cell, dict]
    kept: dict[tuple, Record]

    def is_current(self, record: Record | None, manifest: dict, runtime: Runtime) -> bool:
        """True for a kept, successful record of the very artifact file the manifest lists now (failed: retried)."""
        return (record is not None and not record.failed
                and record.artifact_sha256 == artifact_entry(manifest, runtime.format)["sha256"])

    def with_files(self, cell: Cell) -> dict:
        """The cell's manifest, with the files an earlier measure removed written again by export first."""
        manifest = self.manifests[cell]
        if any(removed_after_measuring(entry) for entry in manifest["artifacts"]):
            manifest, _ = export_job(*job_arguments(self.cfg, cell, rebuild=True))
            self.manifests[cell] = manifest
        return manifest

    def remove_files(self, cells: list[Cell]) -> int:
        """Remove the measured files of `cells` but KEPT_FORMATS' (their manifests say so); the bytes freed."""
        freed = 0
        for cell in cells:
            model, variant, ratio = cell
            names = tuple(e["format"] for e in self.manifests[cell]["artifacts"] if e["format"] not in KEPT_FORMATS)
            self.manifests[cell], bytes_freed = remove_measured(artifact_dir(self.cfg.out, model, ratio, variant),
                                                                names)
            freed += bytes_freed
        return freed

    def pair(self, model: str) -> tuple[Path | None, str | None]:
        """The model's dense artifact at ratio 0 (path, sha256) that every measurement times alongside its own."""
        directory = artifact_dir(self.cfg.out, model, 0)
        dense = (model, STUDY, 0)
        manifest = self.with_files(dense) if dense in self.manifests else manifest_or_none(directory)
        if manifest is None:
            return None, None
        entry = artifact_entry(manifest, get_runtime(BASELINE_RUNTIME).format)
        return directory / entry["file"], entry["sha256"]

    def measure_one(self, cell: Cell, runtime: Runtime, data: ModelData, reference: np.ndarray) -> Record:
        """Measure one artifact through one runtime in a fresh child process."""
        model, variant, ratio = cell
        manifest = self.with_files(cell)
        entry = artifact_entry(manifest, runtime.format)
        pair = self.pair(model) if runtime.paired else (None, None)
        same_images = (data.test_data is not None and manifest.get("dataset") == data.dataset
                       and manifest.get("test_images") == data.test_images)
        lossless = same_images and not get_format(runtime.format).lossy
        job = Job(model, runtime.name, artifact_dir(self.cfg.out, model, ratio, variant) / entry["file"],
                  entry["sha256"],
                  self.settings.threads, self.settings.batch_sizes[model], self.settings.reps, data.check_input,
                  reference, data.test_data, self.cfg.seed, *pair,
                  spec=get_model_spec(model) if is_source(model) else None,
                  file_accuracy=entry["accuracy"] if lossless else None,
                  max_diff=allowed_diff(torch.from_numpy(reference), len(reference)))
        result = run_in_child(run_job, job, timeout=self.settings.child_timeout_s)
        return build_record(model, ratio, runtime, manifest, data, self.settings.threads, result)

    def cell_records(self, cell: Cell, data: ModelData, progress: Progress, task: TaskID) -> list[Record]:
        """Every runtime's record of one model x variant x ratio; the reference logits are computed only when
        needed."""
        model, variant, ratio = cell
        manifest, reference, records = self.manifests[cell], None, []
        for runtime in cell_runtimes(self.runtimes, variant, manifest):
            progress.update(task, description=f"measure {model} {variant.tag} {ratio_tag(ratio)} {runtime.name}")
            record = self.kept.get((model, variant.method, variant.recovery, ratio, runtime.name))
            if not self.is_current(record, manifest, runtime):
                if reference is None:
                    manifest = self.with_files(cell)
                    directory = artifact_dir(self.cfg.out, model, ratio, variant)
                    reference = reference_logits(directory, manifest, model, data.check_input)
                record = self.measure_one(cell, runtime, data, reference)
            records.append(record)
            progress.advance(task)
        return records


def run_measure(cfg: RunConfig, mcfg: MeasureConfig, console: Console) -> list[Record]:
    """Measure every model x ratio x runtime of the run, write results.json/csv after each model, print a line."""
    runtimes = [get_runtime(name) for name in select_runtimes(mcfg.runtimes, cfg.device)]
    settings = resolve_settings(cfg.preset, mcfg, tuple(m for m in cfg.models if is_source(m)))
    manifests = read_manifests(cfg, runtimes)
    environment = collect_environment(settings)
    config = {**cfg.to_dict(), "runtimes": [rt.name for rt in runtimes]}
    run = MeasureRun(cfg, settings, runtimes, manifests, reusable_records(cfg.out, environment, config))
    unchanged, unchanged_manifests = unchanged_records(cfg.out, run.kept)
    files = artifact_files(in_model_order({**unchanged_manifests, **manifests}))
    records: list[Record] = []
    freed = 0
    written = merged(records, unchanged)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with tempfile.TemporaryDirectory(prefix="prunebench-measure-") as scratch, \
            Progress(*columns, console=console, transient=True) as progress:
        timed = [cell for cell in manifests if cfg.is_timed(*cell)]
        total = sum(len(cell_runtimes(runtimes, cell[1], manifests[cell])) for cell in timed)
        task = progress.add_task("measure", total=total)
        for model in cfg.models:
            data = model_data(cfg, model, Path(scratch))
            cells = [cell for cell in timed if cell[0] == model]
            for cell in cells:
                records += run.cell_records(cell, data, progress, task)
            if not cfg.keep_artifacts:
                freed += run.remove_files(cells)
                files = artifact_files(in_model_order({**unchanged_manifests, **run.manifests}))
            written = merged(records, unchanged)
            attach_ratios_to_dense(written)
            write_results(cfg.out, environment, covered_config(config, written, files), written, files)
    _summary(records, run.kept, len(written) - len(records), cfg.out, console)
    if freed:
        console.print(f"removed {freed:,} bytes of measured files that export rebuilds (every format but "
                      f"{', '.join(KEPT_FORMATS)}); --keep-artifacts keeps them")
    return records


def _summary(records: list[Record], kept: dict, carried: int, out: Path, console: Console) -> None:
    resumed = sum(1 for r in records if kept.get(r.key) is r)
    failed = sum(r.failed for r in records)
    also = f" (plus {carried} records of other models, ratios or runtimes)" if carried else ""
    console.print(f"measured {len(records) - resumed} records, kept {resumed} from the previous run, "
                  f"{failed} failed -> {results_path(out)}{also}")


def failures(records: list[Record], out: Path) -> list[str]:
    """One line per failed record: model, variant, ratio, runtime, the artifact's path and the error."""
    return [f"{r.model} {r.method}+{r.recovery} {ratio_tag(r.ratio)} {r.runtime} "
            f"({artifact_dir(out, r.model, r.ratio, record_cell(r)[1]) / r.artifact}): {r.error}"
            for r in records if r.failed]
