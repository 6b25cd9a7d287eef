"""`python -m bench export`: every pruned model of the sweep -> every artifact format it gets, verified and
manifested."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from export.exporter import artifact_dir, export_job
from export.formats import FORMATS
from export.source import require_pruned
from prune.config import RunConfig, Variant, ratio_tag
from prune.models import ModelSpec, add_resolved, build_model, get_model_spec, is_source, parameter_count
from prune.presets import eval_limit

__all__ = ["artifact_dir", "run_export", "summary_table", "worker_count"]

MAX_WORKERS = 2  # the study machine's cores; each further ResNet-50 job adds its artifacts' memory
PARALLEL_MIN_PARAMETERS = 5_000_000  # a spawned worker costs ~4 s of imports: worth it for the ResNets only


def _parameters(model: str) -> int:
    with torch.device("meta"):
        return parameter_count(build_model(model))


def worker_count(cfg: RunConfig) -> int:
    """Processes to export with: one per core (at most 2) once a ResNet-sized model is in the run, else 1."""
    if max(_parameters(m) for m in cfg.models) < PARALLEL_MIN_PARAMETERS:
        return 1
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1, len(export_jobs(cfg))))


def _init_worker(threads: int, sources: tuple[ModelSpec, ...]) -> None:
    """Set the worker's threads and make the run's model sources known to it by name."""
    torch.set_num_threads(threads)
    for spec in sources:
        add_resolved(spec)


Cell = tuple[str, Variant, float]  # model, variant, ratio


def export_jobs(cfg: RunConfig) -> list[Cell]:
    """Every model x variant x ratio of the run, in the order the sweep wrote them."""
    return [(model, variant, ratio) for model in cfg.models for variant, ratios in cfg.variants(model).items()
            for ratio in ratios]


def job_arguments(cfg: RunConfig, cell: Cell, rebuild: bool = False) -> tuple:
    """export_job's arguments for one cell of the run; `rebuild` writes again the files measure removed."""
    model, variant, ratio = cell
    return (cfg.out, model, ratio, cfg.data_dir, cfg.download, cfg.seed, eval_limit(cfg.preset, model), variant,
            cfg.is_timed(model, variant, ratio), cfg.tolerance, cfg.codebook_bits, cfg.keep_artifacts or rebuild)


def run_export(cfg: RunConfig, console: Console) -> list[dict]:
    """Export every model x variant x ratio of the run (skipping up-to-date directories); print a size summary."""
    jobs = export_jobs(cfg)
    for model, variant, ratio in jobs:  # fail before any work when an input is missing
        require_pruned(cfg.out, model, ratio, variant)
    results: dict[Cell, tuple[dict, bool]] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("export", total=len(jobs))
        workers = worker_count(cfg)
        if workers == 1:
            for job in jobs:
                progress.update(task, description=f"export {job[0]} {job[1].tag} {ratio_tag(job[2])}")
                results[job] = export_job(*job_arguments(cfg, job))
                progress.advance(task)
        else:
            progress.update(task, description=f"export ({workers} processes)")
            for job, result in _run_parallel(cfg, jobs, workers):
                results[job] = result
                progress.advance(task)
    manifests = [results[job][0] for job in jobs]
    console.print(summary_table([results[job][0] for job in jobs if job[1].is_study]))
    untimed = [job for job in jobs if not cfg.is_timed(*job)]
    if untimed:
        console.print(f"{len(untimed)} of {len(jobs)} directories hold only their manifest: ratios whose latency "
                      "is not timed keep the lossless formats' sizes and checks, not files, and get no lossy format "
                      "(--latency-ratios keeps them)")
    skipped = sum(results[job][1] for job in jobs)
    if skipped:
        console.print(f"{skipped} of {len(jobs)} directories were up to date and skipped")
    return manifests


def _run_parallel(cfg: RunConfig, jobs: list[Cell], workers: int) -> Iterator[tuple[Cell, tuple[dict, bool]]]:
    """Run the jobs in spawned processes, biggest model and lowest ratio (the longest) first; yield as done."""
    sizes = {model: _parameters(model) for model in cfg.models}
    order = sorted(jobs, key=lambda job: (-sizes[job[0]], job[2], job[1]))
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")  # fork after torch has started threads can deadlock
    sources = tuple(get_model_spec(model) for model in cfg.models if is_source(model))
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                             initargs=(threads, sources)) as pool:
        futures: dict[Future, Cell] = {pool.submit(export_job, *job_arguments(cfg, job)): job for job in order}
        for future in as_completed(futures):
            yield futures[future], future.result()


def summary_table(manifests: list[dict]) -> Table:
    """Bytes of every format per model at the model's highest exported ratio, and the ratio to dense.pt."""
    last = {m["model"]: m for m in manifests if m["ratio"] >= max(x["ratio"] for x in manifests
                                                                    if x["model"] == m["model"])}
    table = Table(title="Export: bytes on disk (x dense.pt) at each model's highest ratio")
    table.add_column("format")
    for model, manifest in last.items():
        table.add_column(f"{model} {ratio_tag(manifest['ratio'])}", justify="right")
    sizes = {model: {a["format"]: a["bytes"] for a in m["artifacts"]} for model, m in last.items()}
    for fmt in FORMATS:
        table.add_row(fmt, *(f"{s[fmt]:,} ({s[fmt] / s['dense']:.2f}x)" for s in sizes.values()))
    table.add_row("fp32 reference", *(f"{m['fp32_ref_bytes']:,} ({m['fp32_ref_bytes'] / sizes[k]['dense']:.2f}x)"
                                         for k, m in last.items()))
    return table
