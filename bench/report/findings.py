"""The study's three overhead findings, stated with this run's numbers and computed only from its records.

Each finding names an overhead of the masked model (file size, parameter memory, latency) and what removes it.
A runtime or figure that was not measured is said to be missing; nothing is claimed for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median

from bench.records import BASELINE_RUNTIME, DENSE_ARTIFACT, UNSTABLE_IQR, ArtifactFile, Record
from bench.report.data import MASKED_RUNTIME
from bench.report.tables import Figure, fmt_ratio, fmt_x, is_unstable
from export.formats import FORMATS

@dataclass(frozen=True)
class Finding:
    """One overhead: what the masked model costs, and which format or runtime removes the cost."""

    topic: str
    overhead: str
    remedy: str


def _index(records: list[Record]) -> dict[tuple[str, float, str], Record]:
    """Records by (model, ratio, runtime): the findings read the study's variant only, one record per key."""
    return {(r.model, r.ratio, r.runtime): r for r in records}


def _top_ratios(records: list[Record]) -> dict[str, float]:
    """Each model's highest measured ratio."""
    top: dict[str, float] = {}
    for r in records:
        top[r.model] = max(top.get(r.model, r.ratio), r.ratio)
    return top


def ratios_to(records: list[Record], runtime: str, reference: str, figure: Figure) -> list[float]:
    """figure(runtime) / figure(reference) at the same model and ratio, for each ratio > 0 with both."""
    index = _index(records)
    out = []
    for (model, ratio, name), record in index.items():
        base = index.get((model, ratio, reference))
        if name != runtime or ratio <= 0 or base is None:
            continue
        value, base_value = figure(record), figure(base)
        if value is not None and base_value:
            out.append(value / base_value)
    return out


def span(values: list[float]) -> str:
    """'2.0x' when the values round alike, else '1.9x-2.1x'."""
    low, high = fmt_x(min(values)), fmt_x(max(values))
    return low if low == high else f"{low}-{high}"


def _missing(what: str) -> str:
    return (f"{MASKED_RUNTIME} or {BASELINE_RUNTIME} was not measured at a ratio > 0, "
            f"so the {what} is not assessed.")


def size_finding(records: list[Record], files: list[ArtifactFile]) -> Finding:
    """File size: masked.pt against dense.pt, and the smallest lossless file against the fp32 reference."""
    ratios = ratios_to(records, MASKED_RUNTIME, BASELINE_RUNTIME, lambda r: r.file_bytes)
    if ratios:
        overhead = (f"The masked checkpoint ({MASKED_RUNTIME}) is {span(ratios)} the file size of the dense "
                    f"one ({BASELINE_RUNTIME}) at every ratio > 0: weight_orig and weight_mask are both "
                    "stored.")
    else:
        overhead = _missing("masked file-size overhead")
    clauses = []
    for model, ratio in _top_ratios(records).items():
        sizes = {f.artifact: f for f in files if (f.model, f.ratio) == (model, ratio) and f.file_bytes
                 and not getattr(FORMATS.get(f.format), "lossy", False)}  # a lossless file against the fp32 reference
        if not sizes:
            continue
        smallest = min(sizes.values(), key=lambda f: f.file_bytes)
        clause = f"{model} at {fmt_ratio(ratio)}%: {smallest.artifact}"
        if smallest.fp32_ref_bytes:
            clause += f" at {fmt_x(smallest.file_bytes / smallest.fp32_ref_bytes)} the fp32 reference"
            dense = sizes.get(DENSE_ARTIFACT)
            if dense and dense is not smallest:
                clause += f" ({dense.artifact}: {fmt_x(dense.file_bytes / dense.fp32_ref_bytes)})"
        clauses.append(clause)
    kept = [r.to_dense["file_bytes"] for r in records
            if r.runtime == BASELINE_RUNTIME and r.ratio > 0 and "file_bytes" in r.to_dense]
    remedy = (f"Making pruning permanent removes the copy: {BASELINE_RUNTIME}'s file stays at {span(kept)} "
              "the unpruned one. " if kept else "")
    remedy += ("Smallest lossless artifact at the highest ratio: " + "; ".join(clauses) + "."
               if clauses else "No artifact sizes were recorded, so no artifact is named smallest.")
    return Finding("file size", overhead, remedy)


def memory_finding(records: list[Record]) -> Finding:
    """Parameter memory: the masked model's extra copies, and the runtime that holds the fewest bytes."""
    params = ratios_to(records, MASKED_RUNTIME, BASELINE_RUNTIME, lambda r: r.param_bytes)
    if params:
        overhead = (f"The masked model ({MASKED_RUNTIME}) holds {span(params)} the parameter bytes of "
                    f"{BASELINE_RUNTIME} at every ratio > 0 (weight_orig and weight_mask next to the weight)")
        rss = ratios_to(records, MASKED_RUNTIME, BASELINE_RUNTIME, lambda r: r.peak_rss_bytes)
        overhead += (f"; its peak RSS is {span(rss)} {BASELINE_RUNTIME}'s." if rss
                     else "; peak RSS was not recorded.")
    else:
        overhead = _missing("parameter-memory overhead")
    index = _index(records)
    clauses = []
    for model, ratio in _top_ratios(records).items():
        held = [r for r in records if (r.model, r.ratio) == (model, ratio) and r.param_bytes]
        dense = index.get((model, ratio, BASELINE_RUNTIME))
        if not held or dense is None or not dense.param_bytes:
            continue
        least = min(held, key=lambda r: r.param_bytes)
        clauses.append(f"{model} at {fmt_ratio(ratio)}%: {least.runtime} "
                       f"({fmt_x(least.param_bytes / dense.param_bytes)} {BASELINE_RUNTIME})")
    kept = [r.to_dense["param_bytes"] for r in records
            if r.runtime == BASELINE_RUNTIME and r.ratio > 0 and "param_bytes" in r.to_dense]
    remedy = (f"Making pruning permanent drops the extra copies: {BASELINE_RUNTIME} holds {span(kept)} the "
              "unpruned parameter bytes. " if kept else "")
    remedy += ("Fewest parameter bytes at the highest ratio: " + "; ".join(clauses) + "."
               if clauses else f"{BASELINE_RUNTIME} parameter bytes were not recorded at the highest ratio, "
                               "so no runtime is named smallest.")
    return Finding("parameter memory", overhead, remedy)


def relative_p50(batch: str) -> Figure:
    """A record's p50 at `batch` as a ratio to dense (paired in its own process when it could be): comparing
    two runtimes by these ratios cancels the noise between their processes."""
    return lambda r: r.to_dense.get(f"p50_ms@{batch}")


def stable_p50(batch: str) -> Figure:
    """relative_p50, or None when the record flags that latency unstable: too noisy to found a claim on."""
    return lambda r: None if is_unstable(r, batch) else r.to_dense.get(f"p50_ms@{batch}")


def _fastest(records: list[Record], model: str, ratio: float, batch: str) -> str | None:
    """The stable runtime with the lowest paired p50 at one model, ratio and batch, x the dense one there."""
    index = _index(records)
    dense = index.get((model, ratio, BASELINE_RUNTIME))
    figure = stable_p50(batch)
    timed = [(figure(r), r.runtime) for r in records if (r.model, r.ratio) == (model, ratio)]
    timed = [(x, name) for x, name in timed if x is not None]
    base = figure(dense) if dense else None
    if not timed or not base:
        return None
    x, name = min(timed)
    clause = f"{name} {fmt_x(x / base)}"
    auto = index.get((model, ratio, "torch-auto"))
    auto_x = figure(auto) if auto else None
    if name != "torch-auto" and auto_x is not None:
        clause += f", torch-auto {fmt_x(auto_x / base)}"
    return clause


def latency_finding(records: list[Record]) -> Finding:
    """Latency: masked against dense p50 per batch, and the fastest runtime at each model's highest ratio."""
    batches = sorted({b for r in records for b in r.latency_ms}, key=int)
    per_model = {}
    for model in dict.fromkeys(r.model for r in records):
        mine = [r for r in records if r.model == model]
        values = [v for b in batches
                  for v in ratios_to(mine, MASKED_RUNTIME, BASELINE_RUNTIME, stable_p50(b))]
        if values:
            per_model[model] = values
    unstable = sum(len(ratios_to(records, MASKED_RUNTIME, BASELINE_RUNTIME, relative_p50(b)))
                   - len(ratios_to(records, MASKED_RUNTIME, BASELINE_RUNTIME, stable_p50(b)))
                   for b in batches)
    left_out = f"; {unstable} left out as unstable, IQR > {UNSTABLE_IQR:.0%} of median" if unstable else ""
    if per_model:
        every = [v for values in per_model.values() for v in values]
        parts = [f"{model} median {fmt_x(median(values))} ({span(values)})"
                 for model, values in per_model.items()]
        overhead = (f"The masked model ({MASKED_RUNTIME}) is slower than {BASELINE_RUNTIME} in "
                    f"{sum(v > 1 for v in every)} of {len(every)} p50 comparisons at ratios > 0 (same model, "
                    f"ratio and batch size{left_out}): {'; '.join(parts)}. Its pre-forward hook recomputes "
                    "weight = weight_orig * weight_mask on every call.")
    else:
        overhead = _missing("latency overhead")
    clauses = []
    for model, ratio in _top_ratios(records).items():
        per_batch = [(b, _fastest(records, model, ratio, b)) for b in batches]
        text = "; ".join(f"batch {b} {c}" for b, c in per_batch if c)
        if text:
            clauses.append(f"{model} at {fmt_ratio(ratio)}%: {text}")
    remedy = (f"Fastest stable runtime at the highest ratio (p50, x {BASELINE_RUNTIME} at that ratio): "
              + " | ".join(clauses) + "."
              if clauses else f"{BASELINE_RUNTIME} latency was not recorded, or not stable, at the highest "
                              "ratio, so no runtime is named fastest.")
    return Finding("latency", overhead, remedy)


def findings(records: list[Record], files: list[ArtifactFile]) -> list[Finding]:
    """The three findings, in the study's order: size, memory, latency."""
    return [size_finding(records, files), memory_finding(records), latency_finding(records)]
