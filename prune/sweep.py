"""The `prune` stage: L1-prune each model at each ratio, evaluate and save it; resumes where it stopped.

Without its dataset (the ResNets offline) a model is still pruned and saved at every ratio, from seeded random
weights, because export and measurement need the files; its accuracies are None with the reason.
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from torch import nn

from prune.config import RunConfig, checkpoint_path, pruned_path, sweep_path
from prune.data import Splits
from prune.errors import DatasetUnavailable
from prune.io import load_checkpoint, read_json, save_checkpoint, write_json
from prune.models import build_model, prunable_layers
from prune.presets import get_preset
from prune.pruning import global_sparsity, layer_sparsity, masked_model, prune_l1
from prune.train import (IDENTITY_KEYS, checkpoint_identity, ensure_checkpoint, evaluate,
                         load_dense_checkpoint, resolve_device, same_identity, training_splits)

SWEEP_IDENTITY_KEYS = ("model", "preset", "seed", "schedule", "dataset", "dense_sha256")  # equal: reuse
UNTRAINED = "untrained"  # dense_sha256 of seeded random weights
PRUNE_WORKERS = 2  # oneshot ratios pruned concurrently: torch's L1 ranking (topk) barely uses a second core


@dataclass
class Dense:
    """The dense model a sweep prunes, and what is known about it."""

    module: nn.Module
    trained: bool
    accuracy: float | None  # test accuracy in percent; None without a dataset
    sha256: str  # of the checkpoint file, or "untrained" for seeded random weights
    note: str | None  # why the pruned models' accuracy is None


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dense_model(cfg: RunConfig, model: str, splits: Splits | None, reason: str | None, device: torch.device,
                console: Console) -> Dense:
    """The trained checkpoint (trained first if missing); without data, a matching one or random weights."""
    path = checkpoint_path(cfg.out, model)
    if splits is not None:
        module, config = ensure_checkpoint(cfg, model, splits, device, console)
        return Dense(module, True, config["accuracy"], file_sha256(path), None)
    wanted = checkpoint_identity(cfg, model, get_preset(cfg.preset).settings(model), None)
    if path.exists():
        module, config = load_dense_checkpoint(path, model)
        if same_identity(config, wanted, tuple(k for k in IDENTITY_KEYS if k != "dataset")):
            return Dense(module, True, config.get("accuracy"), file_sha256(path),
                         f"pruned accuracy not measured (dense accuracy from {path}): {reason}")
    torch.manual_seed(cfg.seed)
    note = f"untrained, seeded random weights: {reason}"
    return Dense(build_model(model).eval(), False, None, UNTRAINED, note)


def best_ratio(records: list[dict], dense_accuracy: float | None, tolerance: float) -> float | None:
    """The highest ratio whose accuracy is within `tolerance` points of dense; None without accuracy."""
    if dense_accuracy is None:
        return None
    floor = dense_accuracy - tolerance
    kept = [r["ratio"] for r in records if r["accuracy"] is not None and r["accuracy"] >= floor]
    return max(kept, default=None)


def start_sweep(cfg: RunConfig, model: str, splits: Splits | None, dense: Dense) -> dict:
    """The sweep file's header, with the records of an earlier run of the same identity whose files exist."""
    sweep = {"model": model, "preset": cfg.preset, "seed": cfg.seed, "schedule": cfg.schedule,
             "tolerance": cfg.tolerance, "dataset": splits.describe() if splits else None,
             "accuracy_note": dense.note, "trained": dense.trained, "dense_accuracy": dense.accuracy,
             "best_ratio": None, "dense_sha256": dense.sha256,
             "train": get_preset(cfg.preset).settings(model).to_dict(), "records": []}
    path = sweep_path(cfg.out, model)
    if path.exists():
        old = read_json(path)
        if isinstance(old, dict) and same_identity(old, sweep, SWEEP_IDENTITY_KEYS):
            sweep["records"] = [r for r in old.get("records", []) if (Path(cfg.out) / r["path"]).is_file()]
    sweep["best_ratio"] = best_ratio(sweep["records"], dense.accuracy, cfg.tolerance)
    return sweep


def add_record(cfg: RunConfig, sweep: dict, record: dict) -> None:
    """Put `record` into `sweep` (replacing one at the same ratio) and write the sweep file atomically."""
    kept = [r for r in sweep["records"] if r["ratio"] != record["ratio"]]
    sweep["records"] = sorted([*kept, record], key=lambda r: r["ratio"])
    sweep["best_ratio"] = best_ratio(sweep["records"], sweep["dense_accuracy"], cfg.tolerance)
    write_json(sweep_path(cfg.out, sweep["model"]), sweep)


def record_ratio(cfg: RunConfig, sweep: dict, pruned: nn.Module, ratio: float,
                 test: tuple[torch.Tensor, torch.Tensor] | None, device: torch.device) -> dict:
    """Evaluate and save a model pruned at `ratio`; returns its sweep record."""
    model = sweep["model"]
    accuracy = seconds = None
    if test is not None:
        began = time.perf_counter()
        accuracy = evaluate(pruned.to(device), test[0], test[1], device)
        seconds = time.perf_counter() - began
    path = pruned_path(cfg.out, model, ratio)
    config = {"model": model, "ratio": ratio, "schedule": cfg.schedule, "seed": cfg.seed,
              "preset": cfg.preset, "dense_sha256": sweep["dense_sha256"]}
    save_checkpoint(path, {k: v.detach().cpu() for k, v in pruned.state_dict().items()}, config)
    return {"ratio": ratio, "sparsity": global_sparsity(pruned), "layer_sparsity": layer_sparsity(pruned),
            "accuracy": accuracy, "eval_seconds": seconds, "path": path.relative_to(cfg.out).as_posix()}


def load_pruned(path: Path, model: str) -> nn.Module:
    """A pruned model the sweep saved, ready to be pruned further (the iterative schedule's resume point).

    Its effective weights are recomputed as weight_orig * weight_mask: torch's pruning hook only does that on
    forward, and l1_unstructured ranks the effective weights, so stale ones would prune the wrong weights.
    """
    module = masked_model(model, load_checkpoint(path)[0], str(path))
    for _, layer in prunable_layers(module):
        layer.weight = layer.weight_orig * layer.weight_mask
    return module


def oneshot_pruned(dense: nn.Module, ratios: list[float],
                   workers: int = PRUNE_WORKERS) -> Iterator[nn.Module]:
    """A fresh copy of `dense` pruned at each ratio, in order; the next ones are pruned while one is used."""
    with ThreadPoolExecutor(workers) as pool:
        pending = deque()
        for ratio in ratios:
            pending.append(pool.submit(prune_l1, copy.deepcopy(dense), ratio))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def iterative_pruned(cfg: RunConfig, model: str, dense: nn.Module, ratios: list[float],
                     done: set[float]) -> Iterator[nn.Module]:
    """The previous ratio's model pruned further, for each ratio not in `done` (those are read from disk)."""
    current = copy.deepcopy(dense)
    for ratio in ratios:
        if ratio in done:
            current = load_pruned(pruned_path(cfg.out, model, ratio), model)
        else:
            current = prune_l1(current, ratio)
            yield current


def sweep_model(cfg: RunConfig, model: str, device: torch.device, console: Console) -> dict:
    """Prune `model` at every ratio of `cfg` in ascending order, skipping ratios an earlier run finished."""
    settings = get_preset(cfg.preset).settings(model)
    try:
        splits, reason = training_splits(model, cfg.data_dir, cfg.download, settings), None
    except DatasetUnavailable as exc:
        splits, reason = None, str(exc)
    dense = dense_model(cfg, model, splits, reason, device, console)
    test = (splits.spec.normalise(splits.test.images), splits.test.labels) if splits else None
    sweep = start_sweep(cfg, model, splits, dense)
    ratios = sorted({float(r) for r in cfg.ratios})
    done = {r["ratio"] for r in sweep["records"]}
    todo = [r for r in ratios if r not in done]
    pruned_models = (oneshot_pruned(dense.module, todo) if cfg.schedule == "oneshot"
                     else iterative_pruned(cfg, model, dense.module, ratios, done))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"prune {model} ({cfg.schedule})", total=len(todo))
        for ratio, pruned in zip(todo, pruned_models):
            add_record(cfg, sweep, record_ratio(cfg, sweep, pruned, ratio, test, device))
            progress.advance(task)
    write_json(sweep_path(cfg.out, model), sweep)  # also when all was resumed: header and best ratio refresh
    return sweep


def print_summary(sweep: dict, console: Console) -> None:
    """One line on the dense model, then ratio, measured sparsity and accuracy of each pruned one."""
    dense = "n/a" if sweep["dense_accuracy"] is None else f"{sweep['dense_accuracy']:.2f}%"
    best = "n/a" if sweep["best_ratio"] is None else f"{sweep['best_ratio']:g}%"
    title = f"[bold]{sweep['model']}[/] ({sweep['schedule']})"
    console.print(f"{title}: dense accuracy {dense}, best ratio {best}")
    if sweep["accuracy_note"]:
        console.print(f"  accuracy n/a: {sweep['accuracy_note']}", highlight=False)
    table = Table(*(Column(header, justify="right") for header in ("ratio %", "sparsity %", "accuracy %")))
    for r in sweep["records"]:
        accuracy = "n/a" if r["accuracy"] is None else f"{r['accuracy']:.2f}"
        table.add_row(f"{r['ratio']:g}", f"{r['sparsity']:.2f}", accuracy)
    console.print(table)


def run_sweep(cfg: RunConfig, console: Console) -> dict[str, dict]:
    """The `prune` stage for every model of `cfg`; returns model -> sweep (as written to sweep_path)."""
    device = resolve_device(cfg.device)
    sweeps = {model: sweep_model(cfg, model, device, console) for model in cfg.models}
    for sweep in sweeps.values():
        print_summary(sweep, console)
    return sweeps
