"""Per model, accuracy against batch-1 p50 latency and against file size: one point per variant x ratio x runtime
(or file format), the Pareto front as a step line with its points ringed, the dense model starred."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import cycle
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from bench.report.plots import MARKERS, add_caption, save_png
from bench.records import BASELINE_RUNTIME, DENSE_ARTIFACT
from bench.report.data import RunResults
from bench.report.tables import UNSTABLE_MEANING, accuracy_images_text, accuracy_notes, fmt_bytes
from bench.report.verdict import (LATENCY_BATCH, Candidate, is_dense_variant, latency_candidates,
                                  pareto_front, size_candidates)
from prune.config import safe_dirname

DENSE_MARKER = "*"
VARIANT_MARKERS = tuple(m for m in MARKERS if m != DENSE_MARKER)  # the star is the dense model's alone
UNSTABLE = "unstable"
NO_ACCURACY = "no accuracy"


@dataclass(frozen=True)
class TradeoffKind:
    """What one trade-off plot puts on its x axis and where its points come from."""

    name: str  # "latency" or "size": the file is <model>_accuracy_vs_<name>.png
    xlabel: str
    point: str  # what one point is beyond its variant and ratio, for the caption
    dense: str  # which point is the dense model, for the caption
    fmt: Callable[[float], str]  # tick labels of the x axis
    candidates: Callable[[RunResults, str], list[Candidate]]
    unmeasured: Callable[[RunResults, str], dict[str, int]]  # records that never became points, by reason
    is_dense: Callable[[Candidate], bool]


@dataclass(frozen=True)
class TradeoffPlot:
    """One accuracy-vs-cost plot of one model: the file written and what it shows, or why there is none."""

    model: str
    kind: str  # TradeoffKind.name
    path: Path | None  # None: nothing to draw, see reason
    points: int  # points drawn
    front: int  # of them, on the Pareto front
    left_out: dict[str, int]  # reason -> points not drawn for it; reasons with none are absent
    caption: str  # the text under the axes; "" without a file
    reason: str | None = None  # why no file was written


def _unmeasured_records(results: RunResults, model: str) -> dict[str, int]:
    """Records of `model` without a batch-1 p50: failed, or not timed at that batch size."""
    records = [r for r in results.records if r.model == model]
    return {"failed": sum(r.failed for r in records),
            f"not timed at batch {LATENCY_BATCH}": sum(not r.failed and str(LATENCY_BATCH) not in r.latency_ms
                                                       for r in records)}


KINDS = (
    TradeoffKind("latency", f"batch-{LATENCY_BATCH} p50 latency (ms, log scale)", "on one runtime",
                 f"{BASELINE_RUNTIME} at ratio 0", lambda ms: f"{ms:g}", latency_candidates, _unmeasured_records,
                 lambda c: c.runtime == BASELINE_RUNTIME and is_dense_variant(c.method, c.recovery, c.ratio)),
    TradeoffKind("size", "file size (bytes on disk, log scale)", "in one file format",
                 f"{DENSE_ARTIFACT} at ratio 0", fmt_bytes, size_candidates, lambda results, model: {},
                 lambda c: c.artifact == DENSE_ARTIFACT and is_dense_variant(c.method, c.recovery, c.ratio)),
)


def _left_out_text(left_out: dict[str, int]) -> str:
    return ", ".join(f"{n} {why}" for why, n in left_out.items()) or "none"


def _figure(model: str, kind: TradeoffKind, drawn: list[Candidate], front: list[Candidate]) -> Figure:
    """Accuracy against cost on a log x axis: a marker and colour per method+recovery, front stepped and ringed."""
    fig = Figure(figsize=(8, 4.8), layout="constrained")
    ax = fig.subplots()
    variants = list(dict.fromkeys((c.method, c.recovery) for c in drawn))
    for n, (variant, marker) in enumerate(zip(variants, cycle(VARIANT_MARKERS))):
        points = [c for c in drawn if (c.method, c.recovery) == variant]
        ax.scatter([c.cost for c in points], [c.accuracy for c in points], marker=marker, color=f"C{n % 10}",
                   alpha=0.8, label="+".join(variant))
    costs, accuracies = [c.cost for c in front], [c.accuracy for c in front]
    ax.step(costs, accuracies, where="post", color="black", linewidth=1, label="Pareto front")
    ax.scatter(costs, accuracies, s=160, facecolors="none", edgecolors="black")
    dense = [c for c in drawn if kind.is_dense(c)]
    ax.scatter([c.cost for c in dense], [c.accuracy for c in dense], marker=DENSE_MARKER, s=280, color="gold",
               edgecolors="black", zorder=3, label=f"dense ({kind.dense})")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: kind.fmt(value)))
    ax.set_xlabel(kind.xlabel)
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(f"{model}: accuracy vs {kind.name}")
    ax.grid(True, which="both", alpha=0.3)
    fig.legend(loc="outside right upper", fontsize=8)
    return fig


def _caption_text(results: RunResults, model: str, kind: TradeoffKind, drawn: list[Candidate], front: int,
                  left_out: dict[str, int]) -> str:
    """What was plotted, what was left out and why, and what the accuracy was measured on."""
    datasets = ", ".join(dict.fromkeys(r.dataset for r in results.records
                                       if r.model == model and r.accuracy is not None and not r.failed))
    unstable = f" ({UNSTABLE}: {UNSTABLE_MEANING})" if UNSTABLE in left_out else ""
    dense = (f"Star: the dense model ({kind.dense})." if any(kind.is_dense(c) for c in drawn)
             else f"No star: the dense model ({kind.dense}) is among the points left out.")
    return (f"Each point: one method+recovery at one ratio {kind.point}; {len(drawn)} points. Line and rings: the "
            f"Pareto front, {front} points no other point beats in accuracy or {kind.name} without losing in the "
            f"other. {dense} "
            f"Left out: {_left_out_text(left_out)}{unstable}. "
            f"{accuracy_images_text(results, model).capitalize()} of {datasets}.")


def plot_tradeoff(results: RunResults, model: str, out_dir: Path, kind: TradeoffKind) -> TradeoffPlot:
    """One accuracy-vs-cost PNG under `out_dir`; no file, with the reason, when no point has a stable figure
    and an accuracy (never empty axes)."""
    candidates = kind.candidates(results, model)
    drawn = [c for c in candidates if not c.unstable and c.accuracy is not None]
    counts = {**kind.unmeasured(results, model), UNSTABLE: sum(c.unstable for c in candidates),
              NO_ACCURACY: sum(not c.unstable and c.accuracy is None for c in candidates)}
    left_out = {why: n for why, n in counts.items() if n}
    if not drawn:
        notes = "".join(f"; {note}" for note in accuracy_notes(results, model))
        reason = (f"no accuracy-vs-{kind.name} plot for {model}: nothing to draw "
                  f"(left out: {_left_out_text(left_out)}{notes})")
        return TradeoffPlot(model, kind.name, None, 0, 0, left_out, "", reason)
    front = pareto_front(drawn)
    caption = _caption_text(results, model, kind, drawn, len(front), left_out)
    fig = _figure(model, kind, drawn, front)
    add_caption(fig, [caption])
    path = save_png(fig, Path(out_dir) / f"{safe_dirname(model)}_accuracy_vs_{kind.name}.png")
    return TradeoffPlot(model, kind.name, path, len(drawn), len(front), left_out, caption)


def plot_tradeoffs(results: RunResults, model: str, out_dir: Path) -> list[TradeoffPlot]:
    """Accuracy vs batch-1 p50 latency and accuracy vs file size of `model`, in that order."""
    return [plot_tradeoff(results, model, out_dir, kind) for kind in KINDS]
