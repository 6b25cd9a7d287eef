"""PNG plots of the records: accuracy vs ratio (the study's Figure 4), bytes and p50 latency vs ratio."""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import cycle
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a display
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from bench.report_data import RunResults  # noqa: E402
from bench.report_tables import accuracy_notes, fmt_bytes, fmt_ratio  # noqa: E402
from prune.io import atomic_path  # noqa: E402

DPI = 110
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


def _panels(count: int, columns: int, size: tuple[float, float]) -> tuple[Figure, list[Axes]]:
    rows = -(-count // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(size[0] * columns, size[1] * rows), squeeze=False,
                             layout="constrained")
    flat = list(axes.flat)
    for ax in flat[count:]:
        ax.set_visible(False)
    return fig, flat[:count]


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


def accuracy_plot(results: RunResults, path: Path) -> Path:
    """Top-1 accuracy against pruning ratio, one line per model; models without accuracy say why."""
    ratios = sorted({r.ratio for r in results.records})
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    missing = []
    for model in results.models():
        xs, ys = _series(ratios, lambda ratio: getattr(results.reference(model, ratio), "accuracy", None))
        if ys:
            ax.plot(xs, ys, marker="o", label=model)
        else:
            missing.append(f"{model}: n/a ({'; '.join(accuracy_notes(results, model)) or 'not measured'})")
    _ratio_axis(ax, ratios)
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title("Accuracy vs pruning ratio")
    if missing:
        ax.text(0.01, 0.02, "\n".join(missing), transform=ax.transAxes, fontsize=8, va="bottom",
                color="dimgray")
    if ax.lines:
        ax.legend(loc="lower left" if not missing else "center left")
    return save_png(fig, path)


def bytes_plot(results: RunResults, path: Path) -> Path:
    """File bytes of every artifact against ratio with the fp32 reference, one panel per model, log y."""
    models = results.models()
    fig, axes = _panels(len(models), 2, (6.5, 4))
    for ax, model in zip(axes, models):
        ratios = results.ratios(model)
        for n, (artifact, marker) in enumerate(zip(results.artifacts(model), cycle(MARKERS))):
            xs, ys = _series(ratios, lambda ratio: getattr(results.file(model, ratio, artifact), "file_bytes",
                                                           None))
            ax.plot(xs, ys, marker=marker, markersize=6 if n % 2 else 4, fillstyle="none" if n % 2 else "full",
                    alpha=0.85, label=artifact)
        xs, ys = _series(ratios, lambda ratio: getattr(results.reference(model, ratio), "fp32_ref_bytes", None))
        ax.plot(xs, ys, color="black", linestyle="--", label="fp32 reference")
        _log_y(ax, fmt_bytes)
        _ratio_axis(ax, ratios)
        ax.set_ylabel("bytes on disk")
        ax.set_title(model)
    _shared_legend(fig, axes)
    fig.suptitle("Artifact size vs pruning ratio")
    return save_png(fig, path)


def latency_plot(results: RunResults, path: Path) -> Path:
    """p50 latency of every runtime against ratio: one row of panels per model, one column per batch size."""
    models = results.models()
    batches = sorted({b for m in models for b in results.batches(m)})
    if not batches:
        return save_png(_message("no latency was recorded in this run"), path)
    fig, axes = _panels(len(models) * len(batches), len(batches), (6, 3.6))
    panels = iter(axes)
    for model in models:
        ratios = results.ratios(model)
        for batch, ax in zip(batches, panels):
            for n, (runtime, marker) in enumerate(zip(results.runtimes(model), cycle(MARKERS))):
                xs, ys = _series(ratios, lambda ratio: _p50(results, model, ratio, runtime, batch))
                ax.plot(xs, ys, marker=marker, markersize=6 if n % 2 else 4, fillstyle="none" if n % 2 else "full",
                        alpha=0.85, label=runtime)
            _log_y(ax, lambda ms: f"{ms:g}")
            _ratio_axis(ax, ratios)
            ax.set_ylabel("p50 latency (ms)")
            ax.set_title(f"{model}, batch {batch}")
    _shared_legend(fig, axes)
    fig.suptitle("p50 latency vs pruning ratio")
    return save_png(fig, path)


def _p50(results: RunResults, model: str, ratio: float, runtime: str, batch: int) -> float | None:
    record = results.get(model, ratio, runtime)
    return record.p50_ms(batch) if record else None


PLOTS: dict[str, Callable[[RunResults, Path], Path]] = {
    "accuracy_vs_ratio.png": accuracy_plot,
    "bytes_vs_ratio.png": bytes_plot,
    "latency_vs_ratio.png": latency_plot,
}


def write_plots(results: RunResults, plots_dir: Path) -> list[Path]:
    """Every plot under `plots_dir`; returns their paths."""
    return [plot(results, plots_dir / name) for name, plot in PLOTS.items()]
