"""The comparison of pruning methods and recoveries: one table per model, and the BatchNorm test of the study's
ResNet collapse (none next to bn at the same ratio)."""

from __future__ import annotations

from pathlib import Path

from bench.records import BASELINE_RUNTIME, DENSE_ARTIFACT, Record
from bench.report.data import RunResults
from bench.report.tables import (HIGHER, LOWER, MISSING, UNSTABLE_LEGEND, FigureTable, accuracy_cell,
                                 accuracy_images_text, fmt_ratio, fmt_x, is_unstable, marked, ranked)
from bench.report.verdict import LATENCY_BATCH, ORT_DENSE_RUNTIME, dense_record
from prune.config import STUDY, Variant, sweep_path
from prune.io import read_json


def _rows(results: RunResults, model: str) -> list[tuple[Variant, float]]:
    """(variant, ratio) of every measured cell of `model`: the dense model first, then each variant's ratios."""
    cells = dict.fromkeys((Variant(r.method, r.recovery), r.ratio) for r in results.records if r.model == model)
    return sorted(cells, key=lambda cell: (cell[1] != 0, cell[0].order, cell[0], cell[1]))


def _x_column(header: str, records: list[Record | None], figure: str, batch: int | None = None):
    """A column of ratios to dense (`figure` of to_dense), lowest best; an unstable latency is marked, not ranked."""
    values = [r.to_dense.get(figure) if r and not r.failed else None for r in records]
    shaky = [batch is not None and is_unstable(r, batch) for r in records]
    texts = [marked(MISSING if v is None else fmt_x(v), u) for v, u in zip(values, shaky)]
    return ranked(header, [None if u else v for v, u in zip(values, shaky)], texts, LOWER)


def methods_table(results: RunResults, model: str) -> FigureTable:
    """Per method x recovery x ratio: accuracy, MACs, file size and batch-1 latency as ratios to dense."""
    rows = _rows(results, model)
    torch_records = [results.get(model, ratio, BASELINE_RUNTIME, variant) for variant, ratio in rows]
    ort_records = [results.get(model, ratio, ORT_DENSE_RUNTIME, variant) for variant, ratio in rows]
    accuracy = [accuracy_cell(r) for r in torch_records]
    dense = dense_record(results, model, BASELINE_RUNTIME)
    macs = [r.macs / dense.macs if r and r.macs and dense and dense.macs else None for r in torch_records]
    files = [results.file(model, ratio, DENSE_ARTIFACT, variant) for variant, ratio in rows]
    ort_dense = dense_record(results, model, ORT_DENSE_RUNTIME)
    ort_p50 = ort_dense.p50_ms(LATENCY_BATCH) if ort_dense else None
    ort_x = [r.p50_ms(LATENCY_BATCH) / ort_p50 if r and not r.failed and r.p50_ms(LATENCY_BATCH) and ort_p50
             else None for r in ort_records]
    ort_shaky = [is_unstable(r, LATENCY_BATCH) for r in ort_records]
    columns = [
        ranked("accuracy", [a[0] for a in accuracy], [a[1] for a in accuracy], HIGHER),
        ranked("MACs", macs, [MISSING if m is None else fmt_x(m) for m in macs], LOWER),
        ranked(DENSE_ARTIFACT, [f.to_dense if f else None for f in files],
               [MISSING if f is None or f.to_dense is None else fmt_x(f.to_dense) for f in files], LOWER),
        _x_column(f"{BASELINE_RUNTIME} p50@{LATENCY_BATCH}", torch_records, f"p50_ms@{LATENCY_BATCH}",
                  LATENCY_BATCH),
        ranked(f"{ORT_DENSE_RUNTIME} p50@{LATENCY_BATCH}", [None if u else x for x, u in zip(ort_x, ort_shaky)],
               [marked(MISSING if x is None else fmt_x(x), u) for x, u in zip(ort_x, ort_shaky)], LOWER),
    ]
    caption = (f"{accuracy_images_text(results, model)}; accuracy through {BASELINE_RUNTIME}; MACs, {DENSE_ARTIFACT} "
               f"and {BASELINE_RUNTIME} latency as x the dense model (latency paired in one process); "
               f"{ORT_DENSE_RUNTIME} latency as x {ORT_DENSE_RUNTIME} on the dense model (separate processes); "
               f"{UNSTABLE_LEGEND}")
    title = f"{model} - methods and recovery: accuracy (%) and ratios to the dense model"
    return FigureTable(title, [f"{v.tag} {fmt_ratio(r)}" for v, r in rows], columns, caption,
                       row_header="method+recovery ratio %")


def method_notes(results: RunResults, out: Path, model: str) -> list[str]:
    """What each method's sweep files say about `model` (`method_note`: the grouped convolutions l1-structured
    left whole), one line per method that has a note."""
    notes: dict[str, str] = {}
    for variant in dict.fromkeys(Variant(r.method, r.recovery) for r in results.records if r.model == model):
        path = sweep_path(out, model, variant)
        note = read_json(path).get("method_note") if path.is_file() else None
        if note:
            notes.setdefault(variant.method, note)
    return [f"{method}: {note}" for method, note in notes.items()]


def batchnorm_lines(results: RunResults, out: Path) -> list[str]:
    """For each model and method with both none and bn: the accuracy of each at every shared ratio; for a model
    the run skipped bn on (no BatchNorm layers), why. Tests whether stale BatchNorm statistics explain a pruned
    model's collapse."""
    lines = []
    for model in results.models():
        study = sweep_path(out, model, STUDY)
        skipped = read_json(study).get("skipped_recoveries", {}) if study.is_file() else {}
        if "bn" in skipped:
            lines.append(f"{model}: bn {skipped['bn']}")
            continue
        for method in dict.fromkeys(r.method for r in results.records if r.model == model):
            plain, bn = Variant(method, "none"), Variant(method, "bn")
            path = sweep_path(out, model, bn)
            if not path.is_file():
                continue
            pairs = [(ratio, results.get(model, ratio, BASELINE_RUNTIME, plain),
                      results.get(model, ratio, BASELINE_RUNTIME, bn)) for ratio in results.ratios(model)]
            shown = [f"{fmt_ratio(ratio)}%: {accuracy_cell(a)[1]} -> {accuracy_cell(b)[1]}"
                     for ratio, a, b in pairs if a and b]
            if shown:
                lines.append(f"{model} {method}, accuracy % none -> bn: {', '.join(shown)}")
    return lines
