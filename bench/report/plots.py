"""PNG plots of the records: accuracy vs ratio (the study's Figure 4, its own curves dashed), bytes and p50
latency vs ratio."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from itertools import cycle
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a display
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from bench.report.data import RunResults  # noqa: E402
from bench.report.tables import UNSTABLE_MEANING, fmt_bytes, fmt_ratio, is_unstable  # noqa: E402
from bench.report.study_reference import StudyCurve, study_curves  # noqa: E402
from prune.io import atomic_path  # noqa: E402

DPI = 110
CAPTION_WIDTH = 110  # characters per line of a caption under the axes
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
# every other series hollow and larger, so equal lines (dense.pt and model.onnx) both stay visible


def save_png(fig: Figure, path: Path) -> Path:
    """Write `fig` to `path` atomically as PNG and free it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _ratio_axis(ax: Axes, ratios: list[float]) -> None:
    """Ratios at even spacing (the study's high ratios crowd a linear axis), labelled in percent."""
    ax.set_xticks(range(len(ratios)), [fmt_ratio(r) for r in ratios])
    ax.set_xlabel("weights pruned per layer (%, evenly spaced)")
    ax.grid(True, alpha=0.3)


def _log_y(ax: Axes, fmt: Callable[[float], str]) -> None:
    """Log y axis labelled in plain units; minor ticks labelled too when the data spans few decades."""
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    decades = math.log10(high / low)
    labelled = (2.0, 3.0, 5.0, 7.0) if decades <= 1 else (2.0, 5.0) if decades <= 2 else ()

    def minor(value: float, _pos) -> str:
        mantissa = round(value / 10 ** math.floor(math.log10(value)), 6)
        return fmt(value) if mantissa in labelled else ""

    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: fmt(value)))
    ax.yaxis.set_minor_formatter(FuncFormatter(minor))


def _series(ratios: list[float], value: Callable[[float], float | None]) -> tuple[list[int], list[float]]:
    """Positions and values of the ratios that have a value."""
    points = [(i, value(r)) for i, r in enumerate(ratios)]
    return [i for i, v in points if v is not None], [v for _, v in points if v is not None]


def _grid(rows: int, columns: int, size: tuple[float, float]) -> tuple[Figure, list[list[Axes]]]:
    fig, axes = plt.subplots(rows, columns, figsize=(size[0] * columns, size[1] * rows), squeeze=False,
                             layout="constrained")
    return fig, [list(row) for row in axes]


def _panels(count: int, columns: int, size: tuple[float, float]) -> tuple[Figure, list[Axes]]:
    fig, grid = _grid(-(-count // columns), columns, size)
    flat = [ax for row in grid for ax in row]
    for ax in flat[count:]:
        ax.set_visible(False)
    return fig, flat[:count]


def add_caption(fig: Figure, lines: list[str]) -> None:
    """Notes under the axes, wrapped, so they never take room from the plot."""
    text = "\n".join(wrapped for line in lines for wrapped in textwrap.wrap(line, CAPTION_WIDTH))
    fig.text(0.01, 0.0, text, ha="left", va="top", fontsize=8, color="dimgray")


def _shared_legend(fig: Figure, axes: list[Axes]) -> None:
    """One legend for all panels, below them, so no panel's lines are hidden behind it."""
    entries: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    fig.legend(list(entries.values()), list(entries), loc="outside lower center", ncols=min(len(entries), 4),
               fontsize=8)


def _message(text: str) -> Figure:
    """A figure that says why it has no data."""
    fig, ax = plt.subplots(figsize=(6, 1.5))
    ax.text(0.5, 0.5, text, ha="center", va="center")
    ax.axis("off")
    return fig


def accuracy_figure(results: RunResults, curves: dict[str, StudyCurve]) -> Figure:
    """Top-1 accuracy against pruning ratio, one line per model, the study's reported curve dashed in the same
    colour; a caption names the models without accuracy and says when the study's curves are missing."""
    ratios = sorted({r.ratio for r in results.records} | {f.ratio for f in results.files})
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    unmeasured = []
    for n, model in enumerate(results.models()):
        xs, ys = _series(ratios, lambda ratio: results.figures(model, ratio)[1])
        if ys:
            ax.plot(xs, ys, marker="o", color=f"C{n}", label=model)
        else:
            unmeasured.append(model)
        if model in curves:
            xs, ys = _series(ratios, curves[model].accuracy.get)
            ax.plot(xs, ys, linestyle="--", color=f"C{n}", alpha=0.7,
                    label=f"{model}, study {curves[model].table}")
    _ratio_axis(ax, ratios)
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title("Accuracy vs pruning ratio")
    if ax.lines:
        fig.legend(loc="outside right upper", fontsize=8)
    drawn = [m for m in results.models() if m in curves]
    notes = [f"Dashed: the study's reported accuracy ({', '.join(drawn)})." if drawn else
             "The study's curves (Table 1: MNIST, Table 2: CIFAR-10) are not drawn: "
             "bench/report/study_reference.py holds no numbers for these models yet."]
    if unmeasured:
        notes.append(f"No measured accuracy for {', '.join(unmeasured)}: the reason is in report.md.")
    add_caption(fig, notes)
    return fig


def accuracy_plot(results: RunResults, path: Path) -> Path:
    """The accuracy figure with the study's curves that hold numbers."""
    return save_png(accuracy_figure(results, study_curves()), path)


def bytes_plot(results: RunResults, path: Path) -> Path:
    """File bytes of every artifact against ratio with the fp32 reference, one panel per model, log y."""
    models = results.models()
    fig, axes = _panels(len(models), 2, (6.5, 4))
    for ax, model in zip(axes, models):
        ratios = results.ratios(model)
        for n, (artifact, marker) in enumerate(zip(results.artifacts(model), cycle(MARKERS))):
            sizes = {ratio: getattr(results.file(model, ratio, artifact), "file_bytes", None)
                     for ratio in ratios}
            ax.plot(*_series(ratios, sizes.get), marker=marker, markersize=6 if n % 2 else 4,
                    fillstyle="none" if n % 2 else "full", alpha=0.85, label=artifact)
        references = {ratio: getattr(results.reference(model, ratio), "fp32_ref_bytes", None)
                      for ratio in ratios}
        xs, ys = _series(ratios, references.get)
        ax.plot(xs, ys, color="black", linestyle="--", label="fp32 reference")
        _log_y(ax, fmt_bytes)
        _ratio_axis(ax, ratios)
        ax.set_ylabel("bytes on disk")
        ax.set_title(model)
    _shared_legend(fig, axes)
    fig.suptitle("Artifact size vs pruning ratio")
    return save_png(fig, path)


def _latency_panel(ax: Axes, results: RunResults, model: str, batch: int) -> None:
    """Every runtime's p50 at one batch size; unstable figures ringed."""
    ratios = results.ratios(model)
    shaky = []
    for n, (runtime, marker) in enumerate(zip(results.runtimes(model), cycle(MARKERS))):
        records = [results.get(model, ratio, runtime) for ratio in ratios]
        p50 = {ratio: r.p50_ms(batch) for ratio, r in zip(ratios, records) if r}
        xs, ys = _series(ratios, p50.get)
        ax.plot(xs, ys, marker=marker, markersize=6 if n % 2 else 4, fillstyle="none" if n % 2 else "full",
                alpha=0.85, label=runtime)
        shaky += [(i, r.p50_ms(batch)) for i, r in enumerate(records) if is_unstable(r, batch)]
    if shaky:
        ax.plot(*zip(*shaky), linestyle="none", marker="o", markersize=11, fillstyle="none", color="black",
                alpha=0.6, label=f"ringed: {UNSTABLE_MEANING}")
    _log_y(ax, lambda ms: f"{ms:g}")
    _ratio_axis(ax, ratios)
    ax.set_ylabel("p50 latency (ms)")
    ax.set_title(f"{model}, batch {batch}")


def latency_figure(results: RunResults) -> Figure:
    """p50 latency of every runtime against ratio: a row per model, a panel per batch size it was timed at."""
    models = [m for m in results.models() if results.batches(m)]
    if not models:
        return _message("no latency was recorded in this run")
    fig, grid = _grid(len(models), max(len(results.batches(m)) for m in models), (6, 3.6))
    drawn = []
    for row, model in zip(grid, models):
        batches = results.batches(model)
        for ax in row[len(batches):]:
            ax.set_visible(False)
        for ax, batch in zip(row, batches):
            _latency_panel(ax, results, model, batch)
            drawn.append(ax)
    _shared_legend(fig, drawn)
    fig.suptitle("p50 latency vs pruning ratio")
    add_caption(fig, [f"{model}: timed at {', '.join(f'{r:g}' for r in results.ratios(model) if r not in skipped)}%"
                      " only (--latency-ratios)" for model in models
                      if (skipped := set(results.untimed_ratios(model)))])
    return fig


def latency_plot(results: RunResults, path: Path) -> Path:
    """The latency figure as a PNG."""
    return save_png(latency_figure(results), path)


PLOTS: dict[str, Callable[[RunResults, Path], Path]] = {
    "accuracy_vs_ratio.png": accuracy_plot,
    "bytes_vs_ratio.png": bytes_plot,
    "latency_vs_ratio.png": latency_plot,
}


def write_plots(results: RunResults, plots_dir: Path) -> list[Path]:
    """Every plot under `plots_dir`; returns their paths."""
    return [plot(results, plots_dir / name) for name, plot in PLOTS.items()]
