"""The `prune` stage: prune each model at each ratio with every method x recovery of the run (a variant), evaluate
and save it; resumes where it stopped.

Without its dataset a model is still pruned and saved at every ratio, from seeded random weights, because export
and measurement need the files; its accuracies are None with the reason (a recovery that needs data then stops
the run with a message).
"""

from __future__ import annotations

import copy
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

from prune.config import STUDY, RunConfig, Variant, base_path, checkpoint_path, pruned_path, sweep_path
from prune.data import Splits
from prune.errors import DatasetUnavailable, UsageError
from prune.io import file_sha256, read_json, write_json
from prune.methods import Method, get_method
from prune.models import arch_layers, build_model, example_input, is_source
from prune.presets import get_preset
from prune.pruned_io import Base, load_pruned_state, save_pruned, write_base
from prune.pruning import global_sparsity, layer_sparsity, masked_model
from prune.recovery import Recovery, RecoveryContext, get_recovery
from prune.sources import source_identity
from prune.structured import grouped_note, load_structured, macs
from prune.train import (IDENTITY_KEYS, checkpoint_identity, ensure_checkpoint, evaluate,
                         load_dense_checkpoint, resolve_device, same_identity, training_splits)
from prune.user_checkpoint import load_user_checkpoint

SWEEP_IDENTITY_KEYS = ("model", "preset", "seed", "schedule", "dataset", "dense_sha256", "method", "recovery",
                       "finetune_epochs", "source")  # equal: reuse
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


def dense_model(cfg: RunConfig, model: str, splits: Splits | None, reason: str | None, device: torch.device,
                console: Console) -> Dense:
    """The user's weights of a model source (--checkpoint); the trained checkpoint (trained first if missing);
    without data, a matching one or random weights."""
    if cfg.checkpoint is not None and is_source(model):
        module = load_user_checkpoint(build_model(model), cfg.checkpoint, f"model {model!r}").eval()
        if splits is None:
            note = f"weights of {cfg.checkpoint}: {reason}"
            return Dense(module, True, None, file_sha256(cfg.checkpoint), note)
        accuracy = evaluate(module, splits.spec.normalise(splits.test.images), splits.test.labels, device)
        return Dense(module.cpu().eval(), True, accuracy, file_sha256(cfg.checkpoint), None)
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


def finetune_epochs(cfg: RunConfig, model: str, variant: Variant) -> int | None:
    """Epochs the finetune recovery trains `model` for (--finetune-epochs, else the preset's); None without it."""
    if variant.recovery != "finetune":
        return None
    return cfg.finetune_epochs or get_preset(cfg.preset).settings(model).finetune_epochs


def start_sweep(cfg: RunConfig, model: str, splits: Splits | None, dense: Dense, variant: Variant = STUDY) -> dict:
    """The sweep file's header, with the records of an earlier run of the same identity whose files exist."""
    sweep = {"model": model, "method": variant.method, "recovery": variant.recovery,
             "finetune_epochs": finetune_epochs(cfg, model, variant),
             "preset": cfg.preset, "seed": cfg.seed, "schedule": cfg.schedule,
             "tolerance": cfg.tolerance, "dataset": splits.describe() if splits else None,
             "accuracy_note": dense.note, "trained": dense.trained, "dense_accuracy": dense.accuracy,
             "method_note": grouped_note(dense.module) if get_method(variant.method).structured else None,
             "best_ratio": None, "dense_sha256": dense.sha256, "skipped_recoveries": cfg.skipped_recoveries(model),
             "train": get_preset(cfg.preset).settings(model).to_dict(),
             "source": source_identity(cfg.model_source(model), cfg.checkpoint) if is_source(model) else None,
             "records": []}
    path = sweep_path(cfg.out, model, variant)
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
    write_json(sweep_path(cfg.out, sweep["model"], sweep_variant(sweep)), sweep)


def sweep_variant(sweep: dict) -> Variant:
    """The method x recovery a sweep file is for."""
    return Variant(sweep["method"], sweep["recovery"])


def record_ratio(cfg: RunConfig, sweep: dict, pruned: nn.Module, ratio: float, base: Base,
                 test: tuple[torch.Tensor, torch.Tensor] | None, device: torch.device,
                 recovery_note: str | None = None) -> dict:
    """Evaluate and save a model pruned (and recovered) at `ratio`; returns its sweep record.

    Besides the sparsity (zeros among the prunable weights) it records the parameters and multiply-accumulates
    left: what a structured method removes, where the unstructured ones leave both as dense.
    """
    model, variant = sweep["model"], sweep_variant(sweep)
    accuracy = seconds = None
    pruned = pruned.to(device).eval()
    if test is not None:
        began = time.perf_counter()
        accuracy = evaluate(pruned, test[0], test[1], device)
        seconds = time.perf_counter() - began
    path = pruned_path(cfg.out, model, ratio, variant)
    config = {"model": model, "ratio": ratio, "method": variant.method, "recovery": variant.recovery,
              "schedule": cfg.schedule, "seed": cfg.seed, "preset": cfg.preset, "dense_sha256": sweep["dense_sha256"]}
    save_pruned(path, pruned.state_dict(), base, config)
    return {"ratio": ratio, "sparsity": global_sparsity(pruned, model),
            "layer_sparsity": layer_sparsity(pruned, model),
            "parameters": sum(p.numel() for p in pruned.parameters()),
            "macs": macs(pruned, example_input(model, 1).to(device)), "accuracy": accuracy,
            "eval_seconds": seconds, "recovery_note": recovery_note,
            "path": path.relative_to(cfg.out).as_posix(), "sha256": file_sha256(path)}


def load_pruned(path: Path, model: str, base: Path) -> nn.Module:
    """A pruned model the sweep saved, ready to be pruned further (the iterative schedule's resume point).

    A masked model's effective weights are recomputed as weight_orig * weight_mask: torch's pruning hook only
    does that on forward, and l1_unstructured ranks the effective weights, so stale ones would prune the wrong
    weights. A structured model is rebuilt in the shapes its tensors have.
    """
    state = load_pruned_state(path, base)[0]
    if not any(key.endswith("weight_orig") for key in state):
        return load_structured(model, {key: list(t.shape) for key, t in state.items()}, state, str(path))
    module = masked_model(model, state, str(path))
    for _, layer in arch_layers(module, model):
        layer.weight = layer.weight_orig * layer.weight_mask
    return module


@dataclass(frozen=True)
class Step:
    """How a sweep prunes and recovers one model: the method, the recovery and what the recovery may use."""

    name: str  # the architecture, as prune.models names it
    method: Method
    recovery: Recovery
    context: RecoveryContext | None  # None: no training data, so only the "none" recovery can run

    def prune(self, model: nn.Module, ratio: float, previous: float = 0.0) -> nn.Module:
        """`model` (already at `previous`) pruned to `ratio` of its original weights or channels."""
        return self.method.prune(model, ratio, previous, self.name)

    def recover(self, model: nn.Module) -> str | None:
        """Run the recovery on `model` in place; its note (e.g. why it was skipped) or None."""
        return None if self.context is None else self.recovery.run(model, self.context)


def oneshot_pruned(dense: nn.Module, ratios: list[float], step: Step,
                   workers: int = PRUNE_WORKERS) -> Iterator[tuple[nn.Module, str | None]]:
    """A fresh copy of `dense` pruned at each ratio and recovered, in order, with the recovery's note; the next
    copies are pruned in background threads while one is recovered and used."""
    with ThreadPoolExecutor(workers) as pool:
        pending = deque(pool.submit(step.prune, copy.deepcopy(dense), ratio) for ratio in ratios[:workers])
        for ratio in ratios[workers:]:
            pruned = pending.popleft().result()
            pending.append(pool.submit(step.prune, copy.deepcopy(dense), ratio))
            yield pruned, step.recover(pruned)
        while pending:
            pruned = pending.popleft().result()
            yield pruned, step.recover(pruned)


def iterative_pruned(cfg: RunConfig, dense: nn.Module, ratios: list[float], done: set[float],
                     step: Step) -> Iterator[tuple[nn.Module, str | None]]:
    """The previous ratio's model pruned further and recovered, for each ratio not in `done` (those are read
    from disk): prune, recover, prune again, as Han et al. 2015 iterate prune-retrain."""
    current, previous = copy.deepcopy(dense), 0.0
    variant = Variant(step.method.name, step.recovery.name)
    for ratio in ratios:
        if ratio in done:
            current = load_pruned(pruned_path(cfg.out, step.name, ratio, variant), step.name,
                                  base_path(cfg.out, step.name))
        else:
            current = step.prune(current, ratio, previous)
            yield current, step.recover(current)
        previous = ratio


def recovery_step(cfg: RunConfig, model: str, variant: Variant, splits: Splits | None, reason: str | None,
                  device: torch.device, console: Console) -> Step:
    """The Step of `variant`; a recovery that needs training data without any is a UsageError saying why."""
    method, recovery = get_method(variant.method), get_recovery(variant.recovery)
    if splits is None:
        if recovery.name != "none":
            raise UsageError(f"recovery {recovery.name!r} needs {model}'s training images, which are unavailable "
                             f"({reason}); pass --recovery none")
        return Step(model, method, recovery, None)
    settings = get_preset(cfg.preset).settings(model)
    epochs = finetune_epochs(cfg, model, variant) or settings.finetune_epochs
    return Step(model, method, recovery, RecoveryContext(splits, settings, epochs, cfg.seed, device, console))


def sweep_variant_ratios(cfg: RunConfig, step: Step, dense: Dense, base: Base, splits: Splits | None,
                         ratios: tuple[float, ...], device: torch.device, console: Console) -> dict:
    """Prune one model with one variant at `ratios` in ascending order, skipping ratios an earlier run finished."""
    variant = Variant(step.method.name, step.recovery.name)
    test = (splits.spec.normalise(splits.test.images), splits.test.labels) if splits else None
    sweep = start_sweep(cfg, step.name, splits, dense, variant)
    ordered = sorted({float(r) for r in ratios})
    done = {r["ratio"] for r in sweep["records"]}
    todo = [r for r in ordered if r not in done]
    pruned_models = (oneshot_pruned(dense.module, todo, step) if cfg.schedule == "oneshot"
                     else iterative_pruned(cfg, dense.module, ordered, done, step))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"prune {step.name} {variant.tag} ({cfg.schedule})", total=len(todo))
        for ratio, (pruned, note) in zip(todo, pruned_models):
            add_record(cfg, sweep, record_ratio(cfg, sweep, pruned, ratio, base, test, device, note))
            progress.advance(task)
    write_json(sweep_path(cfg.out, step.name, variant), sweep)  # also when all was resumed: header refreshes
    return sweep


def sweep_model(cfg: RunConfig, model: str, device: torch.device, console: Console) -> dict[Variant, dict]:
    """Every variant of the run on `model`: the dense model trained (or reused) once, then each sweep."""
    settings = get_preset(cfg.preset).settings(model)
    try:
        splits, reason = training_splits(model, cfg.data_dir, cfg.download, settings), None
    except DatasetUnavailable as exc:
        splits, reason = None, str(exc)
    dense = dense_model(cfg, model, splits, reason, device, console)
    base = write_base(base_path(cfg.out, model), dense.module.state_dict())
    return {variant: sweep_variant_ratios(cfg, recovery_step(cfg, model, variant, splits, reason, device, console),
                                          dense, base, splits, ratios, device, console)
            for variant, ratios in cfg.variants(model).items()}


def print_summary(sweeps: dict[Variant, dict], console: Console) -> None:
    """One line on the dense model, then one row per variant with its accuracy at each ratio (sparsity of the
    study's variant in its own row)."""
    study = sweeps[STUDY]
    dense = "n/a" if study["dense_accuracy"] is None else f"{study['dense_accuracy']:.2f}%"
    best = "n/a" if study["best_ratio"] is None else f"{study['best_ratio']:g}%"
    console.print(f"[bold]{study['model']}[/] ({study['schedule']}): dense accuracy {dense}, best ratio of the "
                  f"study's method {best}")
    if study["accuracy_note"]:
        console.print(f"  accuracy n/a: {study['accuracy_note']}", highlight=False)
    for recovery, note in study.get("skipped_recoveries", {}).items():
        console.print(f"  recovery {recovery} {note}: not run, exported or measured", highlight=False)
    ratios = sorted({r["ratio"] for sweep in sweeps.values() for r in sweep["records"]})
    table = Table(Column("accuracy % at ratio %"), *(Column(f"{r:g}", justify="right") for r in ratios))
    for variant, sweep in sweeps.items():
        found = {r["ratio"]: r["accuracy"] for r in sweep["records"]}
        table.add_row(variant.tag, *("" if r not in found else "n/a" if found[r] is None else f"{found[r]:.1f}"
                                     for r in ratios))
    console.print(table)


def run_sweep(cfg: RunConfig, console: Console) -> dict[str, dict[Variant, dict]]:
    """The `prune` stage for every model of `cfg`; returns model -> variant -> sweep (as written to sweep_path)."""
    device = resolve_device(cfg.device)
    sweeps = {model: sweep_model(cfg, model, device, console) for model in cfg.models}
    for model_sweeps in sweeps.values():
        print_summary(model_sweeps, console)
    return sweeps
