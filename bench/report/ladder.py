"""The size ladder per model, as Deep Compression's Table 1 shows it: the dense file, then the pruned model stored
losslessly (packed), with shared weights entropy-coded (codebook), and as int8 ONNX, each rung with its bytes, its
ratio to dense.pt and its own accuracy, all of one pruned model: the one whose codebook is smallest within
tolerance of dense accuracy."""

from __future__ import annotations

from bench.records import DENSE_ARTIFACT, ArtifactFile
from bench.report.data import RunResults
from bench.report.tables import HIGHER, LOWER, MISSING, FigureTable, fmt_bytes, fmt_ratio, fmt_x, ranked
from bench.report.verdict import file_accuracy
from prune.config import DEFAULT_METHOD, DEFAULT_RECOVERY, Variant

CODEBOOK_ARTIFACT = "codebook.pt"
RUNGS = (("pruned, lossless", "packed.pt"), ("pruned, shared weights", CODEBOOK_ARTIFACT),
         ("pruned, int8 ONNX", "model.int8.onnx"))


def ladder_files(results: RunResults, model: str, tolerance: float) -> tuple[list[tuple[str, ArtifactFile]], bool]:
    """(rung name, file) from dense.pt at ratio 0 up, and whether the pruned model was chosen within `tolerance`
    of dense accuracy (False: the smallest codebook overall, dense accuracy being unknown or never kept)."""
    dense = results.file(model, 0, DENSE_ARTIFACT)
    if dense is None:
        return [], False
    codebooks = [f for f in results.files if f.model == model and f.artifact == CODEBOOK_ARTIFACT and f.ratio > 0]
    dense_accuracy = file_accuracy(results, dense)
    within = [f for f in codebooks if dense_accuracy is not None and f.accuracy is not None
              and f.accuracy >= dense_accuracy - tolerance]
    chosen = min(within or codebooks, key=lambda f: f.file_bytes, default=None)
    if chosen is None:
        return [("dense", dense)], False
    variant = Variant(chosen.method, chosen.recovery)
    rungs = [(name, results.file(model, chosen.ratio, artifact, variant)) for name, artifact in RUNGS]
    return [("dense", dense), *((name, f) for name, f in rungs if f is not None)], bool(within)


def ladder_table(results: RunResults, model: str, tolerance: float) -> FigureTable | None:
    """The ladder of `model` as a table; None when it has no dense.pt at ratio 0."""
    rungs, claim = ladder_files(results, model, tolerance)
    if not rungs:
        return None
    files = [f for _, f in rungs]
    sizes = [f.file_bytes for f in files]
    ratios = [f.to_dense for f in files]
    accuracy = [file_accuracy(results, f) for f in files]
    columns = [ranked("bytes", sizes, [fmt_bytes(b) for b in sizes], LOWER),
               ranked("x dense.pt", ratios, [MISSING if r is None else fmt_x(r) for r in ratios], LOWER),
               ranked("accuracy", accuracy, [MISSING if a is None else f"{a:.2f}" for a in accuracy], HIGHER)]
    pruned = files[-1]
    which = (f"{pruned.method}+{pruned.recovery} at {fmt_ratio(pruned.ratio)}%: the smallest codebook.pt "
             + (f"within {tolerance:g} points of dense accuracy" if claim else "(no accuracy claim: none was "
                f"within {tolerance:g} points of dense, or dense accuracy is unknown)"))
    if (pruned.method, pruned.recovery) == (DEFAULT_METHOD, DEFAULT_RECOVERY) and pruned.ratio == 0:
        which = "no pruned codebook.pt was exported"
    caption = f"{which}; each rung's accuracy through its own file, as export measured it"
    return FigureTable(f"{model} - size ladder (Deep Compression's Table 1)",
                       [f"{name} ({f.artifact})" for name, f in rungs], columns, caption, row_header="rung")
