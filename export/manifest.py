"""manifest.json of an artifact directory: what was exported from which source, with sizes, hashes and checks.

Schema: {"model", "ratio", "sparsity", "fp32_ref_bytes", "source": {"path", "sha256"}, "artifacts":
[{"format", "file", "bytes", "gzip_bytes", "gzip_note", "sha256", "sparsity", "max_abs_diff", "accuracy"}]},
plus "accuracy" (the in-memory pruned model's), "dataset" (source of the test data or null), "accuracy_note"
(why accuracy is null), "verify_batch" (images whose logits were compared), "sparse_formats" (whether the
sparse formats were written), "format_versions" (format -> layout version: a manifest of older layouts is
exported again) and per artifact "kept" (false: its file was removed) with "removed_by" ("export": verified and
sized in a cell whose latency is not timed; "measure": timed, then removed as export rebuilds it). gzip_bytes
is the size at zlib level 6 (export.digest), or null with gzip_note saying why it was not computed: exactly one
of the two is null.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from export.digest import FileDigest
from export.formats import format_versions, formats_for
from prune.errors import ArtifactError
from prune.io import file_sha256, read_json, write_json

MANIFEST_NAME = "manifest.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NUMBER = (int, float)
_OPTIONAL_NUMBER = (int, float, type(None))
_OPTIONAL_INT = (int, type(None))
_OPTIONAL_STR = (str, type(None))
TOP_FIELDS = {"model": str, "ratio": _NUMBER, "sparsity": _NUMBER, "fp32_ref_bytes": int, "source": dict,
              "artifacts": list}
ARTIFACT_FIELDS = {"format": str, "file": str, "bytes": int, "gzip_bytes": _OPTIONAL_INT,
                   "gzip_note": _OPTIONAL_STR, "sha256": str, "sparsity": _NUMBER, "max_abs_diff": _NUMBER,
                   "accuracy": _OPTIONAL_NUMBER}


@dataclass
class ArtifactEntry:
    """One artifact as the manifest lists it."""

    format: str  # name in export.formats.FORMATS
    file: str  # file name inside the artifact directory
    bytes: int  # size on disk
    gzip_bytes: int | None  # size gzipped at zlib level 6 (export.digest.GZIP_LEVEL); None: see gzip_note
    gzip_note: str | None  # why gzip_bytes is None (file over export.digest.GZIP_MAX_BYTES), else None
    sha256: str
    sparsity: float  # percent zeros over the pruned weights, measured on the loaded artifact
    max_abs_diff: float  # max |logits - in-memory pruned model's logits| on the verification batch
    # top-1 percent on the test split: a lossy file's through the loaded file, a lossless one's the pruned
    # model's (its logits reproduce the model's on the verification batch); None without data
    accuracy: float | None
    kept: bool = True  # False: written, verified and measured, then removed (export rewrites it on demand)
    removed_by: str | None = None  # the stage that removed the file: "export" (an untimed cell) or "measure"

    @classmethod
    def from_digest(cls, fmt: str, file: str, digest: FileDigest, sparsity: float, max_abs_diff: float,
                    accuracy: float | None, kept: bool = True) -> ArtifactEntry:
        """An entry from a file digest and the verification results."""
        return cls(fmt, file, digest.bytes, digest.gzip_bytes, digest.gzip_note, digest.sha256, sparsity,
                   max_abs_diff, accuracy, kept, None if kept else "export")


def manifest_path(directory: Path) -> Path:
    """Where the manifest of an artifact directory lives."""
    return Path(directory) / MANIFEST_NAME


def _fail(path: Path, problem: str) -> ArtifactError:
    return ArtifactError(f"{path}: invalid manifest ({problem}); delete it and rerun `python -m bench export`")


def _check_fields(obj: object, fields: dict, path: Path, where: str) -> None:
    if not isinstance(obj, dict):
        raise _fail(path, f"{where} is not an object")
    for name, kind in fields.items():
        if name not in obj:
            raise _fail(path, f"{where} lacks {name!r}")
        if not isinstance(obj[name], kind) or isinstance(obj[name], bool):
            raise _fail(path, f"{where}.{name} has the wrong type")


def validate_manifest(manifest: object, path: Path) -> dict:
    """Check the schema (fields, types, hashes, plain file names); returns the manifest."""
    _check_fields(manifest, TOP_FIELDS, path, "manifest")
    _check_fields(manifest["source"], {"path": str, "sha256": str}, path, "source")
    for i, entry in enumerate(manifest["artifacts"]):
        _check_fields(entry, ARTIFACT_FIELDS, path, f"artifacts[{i}]")
        if not _SHA256.match(entry["sha256"]) or Path(entry["file"]).name != entry["file"]:
            raise _fail(path, f"artifacts[{i}] has a malformed sha256 or a file name with a directory")
        if (entry["gzip_bytes"] is None) == (entry["gzip_note"] is None):
            raise _fail(path, f"artifacts[{i}] needs exactly one of gzip_bytes and gzip_note")
    return manifest


def build_manifest(model: str, ratio: float, sparsity: float, fp32_ref_bytes: int, source: dict,
                   artifacts: list[ArtifactEntry], extra: dict) -> dict:
    """The manifest of one directory (validated before it is written)."""
    manifest = {"model": model, "ratio": ratio, "sparsity": sparsity, "fp32_ref_bytes": fp32_ref_bytes,
                "source": source, "artifacts": [asdict(a) for a in artifacts], **extra}
    return validate_manifest(manifest, Path(MANIFEST_NAME))


def write_manifest(directory: Path, manifest: dict) -> None:
    """Write a directory's manifest atomically."""
    write_json(manifest_path(directory), manifest)


def read_manifest(directory: Path) -> dict:
    """The validated manifest of an artifact directory; missing or malformed is an ArtifactError naming it."""
    path = manifest_path(directory)
    if not path.is_file():
        raise ArtifactError(f"{path}: no manifest; run `python -m bench export` first")
    return validate_manifest(read_json(path), path)


def artifact_entry(manifest: dict, fmt: str) -> dict:
    """The manifest entry of format `fmt`; absent is an ArtifactError telling to re-export."""
    for entry in manifest["artifacts"]:
        if entry["format"] == fmt:
            return entry
    raise ArtifactError(f"manifest of {manifest['model']} r{manifest['ratio']:g} lists no {fmt!r} artifact; "
                        "rerun `python -m bench export`")


def has_sparse_formats(manifest: dict) -> bool:
    """Whether the cell got the sparse formats (manifests written before the field: every unstructured one)."""
    return manifest.get("sparse_formats", not manifest.get("structured"))


def has_lossy_formats(manifest: dict) -> bool:
    """Whether the cell got the lossy formats (manifests written before the field: every one)."""
    return manifest.get("lossy_formats", True)


def is_kept(entry: dict) -> bool:
    """Whether an artifact's file stays on disk (manifests written before the field: all of them)."""
    return entry.get("kept", True)


def removed_after_measuring(entry: dict) -> bool:
    """Whether measure removed the artifact's file after timing it (export rebuilds it on demand)."""
    return entry.get("removed_by") == "measure"


def remove_measured(directory: Path, formats: tuple[str, ...]) -> tuple[dict, int]:
    """Remove the kept files of `formats` from an artifact directory, saying so in its manifest (removed_by
    "measure"); returns the manifest as written and the bytes freed."""
    manifest = read_manifest(directory)
    freed = 0
    for entry in manifest["artifacts"]:
        if entry["format"] in formats and is_kept(entry):
            (Path(directory) / entry["file"]).unlink(missing_ok=True)
            entry.update(kept=False, removed_by="measure")
            freed += entry["bytes"]
    write_manifest(directory, manifest)
    return manifest, freed


def is_current(directory: Path, source_sha256: str, timed: bool = True, keep: bool = False) -> bool:
    """True when the manifest names this source, lists the formats its cell gets in their current layout
    versions (the lossy ones when `timed`; an untimed cell takes them too), keeps the files when the cell is
    `timed` (or measure removed them after timing them, unless `keep` wants them back), and every kept file still
    matches its sha256."""
    try:
        manifest = read_manifest(directory)
    except ArtifactError:
        return False
    entries = {entry["format"]: entry for entry in manifest["artifacts"]}
    wanted = formats_for(has_sparse_formats(manifest), timed or has_lossy_formats(manifest))
    if manifest["source"]["sha256"] != source_sha256 or sorted(entries) != sorted(wanted):
        return False
    if manifest.get("format_versions") != format_versions(wanted):
        return False
    if timed and not all(is_kept(entry) or (removed_after_measuring(entry) and not keep)
                         for entry in entries.values()):
        return False
    for entry in filter(is_kept, entries.values()):
        path = Path(directory) / entry["file"]
        if not path.is_file() or path.stat().st_size != entry["bytes"] or file_sha256(path) != entry["sha256"]:
            return False
    return True
