"""int8 beside fp32 on onnxruntime: per model, every model the int8 runtime measured, with its file, accuracy and
batch-1 latency against the same model's fp32 graph on ort-dense, and against torch-dense at ratio 0."""

from __future__ import annotations

from bench.records import Record
from bench.report.data import RunResults
from bench.report.tables import (HIGHER, LOWER, MISSING, UNSTABLE_LEGEND, FigureTable, fmt_ratio, fmt_x,
                                 is_unstable, marked, ranked)
from bench.report.verdict import LATENCY_BATCH, ORT_DENSE_RUNTIME
from prune.config import Variant

INT8_RUNTIME = "ort-int8"


def _ok(record: Record | None) -> bool:
    return record is not None and not record.failed


def _ratio(new: Record | None, old: Record | None, figure) -> float | None:
    """figure(new) / figure(old) where both records succeeded and both figures exist."""
    if not (_ok(new) and _ok(old)):
        return None
    a, b = figure(new), figure(old)
    return a / b if a and b else None


def int8_table(results: RunResults, model: str) -> FigureTable | None:
    """int8 file bytes and batch-1 p50 as x the fp32 ONNX of the same pruned model, accuracy as its difference in
    points, and p50 as x torch-dense at ratio 0; None when the int8 runtime measured nothing of `model`."""
    cells = list(dict.fromkeys((Variant(r.method, r.recovery), r.ratio) for r in results.records
                               if r.model == model and r.runtime == INT8_RUNTIME))
    if not cells:
        return None
    cells.sort(key=lambda cell: (cell[1] != 0, cell[0].order, cell[0], cell[1]))
    pairs = [(results.get(model, ratio, INT8_RUNTIME, variant), results.get(model, ratio, ORT_DENSE_RUNTIME, variant))
             for variant, ratio in cells]
    size = [_ratio(q, f, lambda r: r.file_bytes) for q, f in pairs]
    points = [q.accuracy - f.accuracy if _ok(q) and _ok(f) and q.accuracy is not None and f.accuracy is not None
              else None for q, f in pairs]
    shaky = [is_unstable(q, LATENCY_BATCH) or is_unstable(f, LATENCY_BATCH) for q, f in pairs]
    speed = [_ratio(q, f, lambda r: r.p50_ms(LATENCY_BATCH)) for q, f in pairs]
    to_torch = [q.to_dense.get(f"p50_ms@{LATENCY_BATCH}") if _ok(q) else None for q, _ in pairs]
    accuracy = [q.accuracy if _ok(q) else None for q, _ in pairs]
    columns = [
        ranked("accuracy", accuracy, [MISSING if a is None else f"{a:.2f}" for a in accuracy], HIGHER),
        ranked("vs fp32 (points)", points, [MISSING if p is None else f"{p:+.2f}" for p in points], None),
        ranked("file x model.onnx", size, [MISSING if s is None else fmt_x(s) for s in size], LOWER),
        ranked(f"p50@{LATENCY_BATCH} x {ORT_DENSE_RUNTIME}", [None if u else s for s, u in zip(speed, shaky)],
               [marked(MISSING if s is None else fmt_x(s), u) for s, u in zip(speed, shaky)], LOWER),
        ranked(f"p50@{LATENCY_BATCH} x torch-dense r0", [None if u else t for t, u in zip(to_torch, shaky)],
               [marked(MISSING if t is None else fmt_x(t), u) for t, u in zip(to_torch, shaky)], LOWER),
    ]
    caption = (f"int8 against the fp32 graph of the same pruned model (model.onnx on {ORT_DENSE_RUNTIME}, timed in "
               f"separate processes); accuracy through {INT8_RUNTIME}; {UNSTABLE_LEGEND}")
    return FigureTable(f"{model} - int8 ONNX ({INT8_RUNTIME}) against fp32 ONNX",
                       [f"{v.tag} {fmt_ratio(r)}" for v, r in cells], columns, caption,
                       row_header="method+recovery ratio %")
