"""Export of one pruned model: write every format, load each back through its loader, verify, manifest."""

from __future__ import annotations

import copy
import functools
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from export.codebook import MAX_BITS, quantize_state
from export.digest import digest_file
from export.formats import FORMATS, Format, format_versions, formats_for
from export.int8 import Calibration, calibration_data, random_calibration
from export.manifest import (ArtifactEntry, build_manifest, has_lossy_formats, is_current, manifest_path,
                             read_manifest, write_manifest)
from export.reference_size import fp32_reference_bytes
from export.source import PrunedModel, load_pruned, require_pruned, sweep_accuracy
from export.verify import (LOGITS, EvalData, allowed_diff, artifact_sparsity, load_eval_data, max_abs_diff,
                           top1_accuracy, torch_logits)
from prune.config import STUDY, Variant, ratio_tag, variant_dir
from prune.io import file_sha256
from prune.models import parameter_count
from prune.pruning import global_sparsity


def artifact_dir(out: Path, model: str, ratio: float, variant: Variant = STUDY) -> Path:
    """Directory holding every artifact of `model` pruned at `ratio` under `variant`."""
    return variant_dir(Path(out) / "artifacts", model, variant) / ratio_tag(ratio)


def export_artifact(fmt: Format, pruned: PrunedModel, directory: Path, data: EvalData,
                    digests: ThreadPoolExecutor, keep: bool = True) -> ArtifactEntry:
    """Write one format, load it back through its real loader, and check its logits against the reference;
    unless `keep`, remove the file once it is measured (its manifest entry says so).

    A lossy file's accuracy is its own, over every test image. A lossless file is run on the verification
    batch only: reproducing the pruned model's logits there, within fp32 rounding, makes its accuracy the
    model's, and a ResNet-50 pass over 256 images costs 10 s on 2 cores per format."""
    path = directory / fmt.filename
    fmt.write(pruned, path)
    digest = digests.submit(digest_file, path)  # sha256 + gzip stream in the background (both release the GIL)
    loaded = fmt.load(path, pruned.name)
    logits = LOGITS[fmt.kind](loaded, data.x if fmt.lossy else data.x[:data.verify_count])
    diff = max_abs_diff(logits, pruned.reference, data.verify_count)
    allowed = allowed_diff(pruned.reference, data.verify_count)
    if not fmt.lossy and not diff <= allowed:
        raise RuntimeError(f"{path}: logits differ from the pruned model by {diff:.3g} > {allowed:.3g}")
    accuracy = top1_accuracy(logits, data.y) if fmt.lossy else pruned.accuracy
    entry = ArtifactEntry.from_digest(fmt.name, fmt.filename, digest.result(),
                                      artifact_sparsity(fmt.kind, loaded, path, pruned.name), diff, accuracy,
                                      keep)
    if not keep:
        path.unlink()
    return entry


def fewest_codebook_bits(pruned: PrunedModel, data: EvalData, tolerance: float) -> int:
    """The fewest codebook bits (bisection over 1..MAX_BITS) whose model's top-1 on the verification images agrees
    with the pruned model's on all but `tolerance` percent of them: the codebook's own loss, labels or not."""
    images = data.x[:data.agreement_count]
    expected = pruned.reference[:data.agreement_count].argmax(dim=1)
    shared = copy.deepcopy(pruned.dense)

    def agrees(bits: int) -> bool:
        shared.load_state_dict(quantize_state(pruned.dense_state, pruned.shares(bits)))
        matches = (torch_logits(shared, images).argmax(dim=1) == expected).double().mean().item()
        return 100.0 * matches >= 100.0 - tolerance

    low, high = 1, MAX_BITS
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if agrees(middle) else (middle + 1, high)
    return low


def export_pruned(pruned: PrunedModel, directory: Path, data: EvalData, source: dict, timed: bool = True) -> dict:
    """Write, verify and manifest every format of one pruned model, keeping the files only for a `timed` cell
    (the others are rewritten from the pruned checkpoint on demand, and get the lossless formats only: their sizes
    at every ratio, without a lossy file's pass over the test images); the manifest comes last."""
    names = formats_for(pruned.sparse_formats, lossy=timed)
    with ThreadPoolExecutor(max_workers=1) as digests:
        entries = [export_artifact(FORMATS[name], pruned, directory, data, digests, keep=timed) for name in names]
    extra = {"accuracy": pruned.accuracy, "dataset": data.source, "accuracy_note": data.note,
             "verify_batch": data.verify_count, "test_images": None if data.y is None else len(data.y),
             "method": pruned.variant.method, "recovery": pruned.variant.recovery, "structured": pruned.structured,
             "sparse_formats": pruned.sparse_formats, "lossy_formats": timed,
             "calibration": pruned.calibration.note if timed else None,
             "codebook_bits": pruned.codebook_bits if timed else None, "parameters": parameter_count(pruned.dense),
             "macs": pruned.macs, "format_versions": format_versions(names)}
    manifest = build_manifest(pruned.name, pruned.ratio, global_sparsity(pruned.dense, pruned.name),
                              fp32_reference_bytes(pruned.dense_state, pruned.pruned_keys), source, entries,
                              extra)
    write_manifest(directory, manifest)
    return manifest


def export_one(out: Path, model: str, ratio: float, data: EvalData, variant: Variant = STUDY,
               timed: bool = True, calibration: Calibration | None = None, tolerance: float = 1.0,
               codebook_bits: int | None = None, keep: bool = False) -> tuple[dict, bool]:
    """Export (model, variant, ratio) unless its manifest already matches the source (with the files on disk
    when the cell is `timed`, or removed after measuring unless `keep`); returns (manifest, skipped). Without
    `calibration` the int8 model is calibrated on seeded random inputs, and its manifest says so; without
    `codebook_bits` the fewest within `tolerance`. The pruned model's accuracy is prune's when prune tested it on
    the same images; only otherwise does export run it over the test split (ResNet-50: 10 s a cell on 2 cores)."""
    source_path = require_pruned(out, model, ratio, variant)
    source = {"path": source_path.relative_to(out).as_posix(), "sha256": file_sha256(source_path)}
    directory = artifact_dir(out, model, ratio, variant)
    if is_current(directory, source["sha256"], timed, keep):
        manifest = read_manifest(directory)
        # None: the measured choice, whichever it was; a cell without the lossy formats has no codebook to match
        if codebook_bits in (None, manifest.get("codebook_bits")) or not has_lossy_formats(manifest):
            return manifest, True
    manifest_path(directory).unlink(missing_ok=True)  # a half-rewritten directory must not look exported
    calibration = calibration or random_calibration(model, 0, "no calibration images given")
    tested = None if data.y is None else sweep_accuracy(out, model, ratio, variant, source["sha256"], data.source,
                                                        len(data.y))
    pruned = load_pruned(out, model, ratio, data.x if tested is None else data.x[:data.agreement_count], variant,
                         calibration)
    pruned.accuracy = top1_accuracy(pruned.reference, data.y) if tested is None else tested
    if timed:
        pruned.codebook_bits = codebook_bits or fewest_codebook_bits(pruned, data, tolerance)
    return export_pruned(pruned, directory, data, source, timed), False


@functools.cache
def cached_eval_data(model: str, data_dir: Path, download: bool, seed: int, test_limit: int | None) -> EvalData:
    """load_eval_data, once per model in each process."""
    return load_eval_data(model, data_dir, download, seed, test_limit)


@functools.cache
def cached_calibration(model: str, data_dir: Path, download: bool, seed: int) -> Calibration:
    """calibration_data, once per model in each process."""
    return calibration_data(model, data_dir, download, seed)


def export_job(out: Path, model: str, ratio: float, data_dir: Path, download: bool, seed: int,
               test_limit: int | None, variant: Variant = STUDY, timed: bool = True, tolerance: float = 1.0,
               codebook_bits: int | None = None, keep: bool = False) -> tuple[dict, bool]:
    """export_one with the model's first `test_limit` test images and its calibration images loaded (or reused)
    in this process: a worker's entry point."""
    data = cached_eval_data(model, data_dir, download, seed, test_limit)
    return export_one(out, model, ratio, data, variant, timed, cached_calibration(model, data_dir, download, seed),
                      tolerance, codebook_bits, keep)
