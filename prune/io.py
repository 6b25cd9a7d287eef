"""Atomic file output and checkpoint I/O: a write either lands whole or not at all, so interrupted runs resume."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch.utils.serialization import config as serialization_config

from prune.errors import ArtifactError, DiskFull


def _file_mode() -> int:
    """The mode open() gives a new file under this process's umask (read once: os.umask is process-wide)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()
FULL_DISK_BYTES = 1 << 20  # free space under which a failed write is put down to a full disk


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _disk_full(exc: Exception, directory: Path) -> bool:
    """True when `exc` came from a full disk: ENOSPC, or torch's bare RuntimeError with (almost) no space left."""
    return getattr(exc, "errno", None) == errno.ENOSPC or shutil.disk_usage(directory).free < FULL_DISK_BYTES


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success fsync it and rename it over `path`.

    A write that fails for lack of space is a DiskFull naming `path` (torch.save reports it only as an
    "unexpected pos" RuntimeError); the partial temporary file is removed either way.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp_path, FILE_MODE)  # mkstemp makes 0600; give the file the mode open() would
        os.replace(tmp_path, path)
    except (OSError, RuntimeError) as exc:
        if _disk_full(exc, path.parent):
            tmp_path.unlink(missing_ok=True)
            free = shutil.disk_usage(path.parent).free
            raise DiskFull(f"{path}: no space left on the device ({free:,} bytes free); files written before it "
                           "are kept - free space or pass --out on a larger disk, then rerun to resume") from None
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as indented JSON atomically."""
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file written by `write_json`; a corrupt file is an ArtifactError naming it."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: unreadable JSON ({exc}); delete it and rerun the stage") from None


def torch_save(path: str | os.PathLike, obj: Any, compact: bool = False) -> None:
    """torch.save `obj` (tensors, dicts, plain values only) to `path` atomically.

    Saved through a file object so the archive's inner folder is torch's fixed "archive", not the random temp
    name: equal objects give byte-identical files (stable sha256 and gzip sizes across runs). `compact` packs
    the storages without torch's 64-byte alignment, which only memory-mapped loading needs (nothing here maps
    a file): about 280 bytes less, which matters for a file of a few KB.
    """
    alignment = 1 if compact else serialization_config.save.storage_alignment
    with atomic_path(path) as tmp, open(tmp, "wb") as f, serialization_config.patch(
            {"save.storage_alignment": alignment}):
        torch.save(obj, f)


def torch_load(path: str | os.PathLike) -> Any:
    """Load a file written by `torch_save` with weights_only=True; never unrestricted unpickling."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such file; run the stage that writes it")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArtifactError(f"{path}: not a readable torch file ({reason[:160]})") from None


def save_checkpoint(path: str | os.PathLike, state_dict: dict[str, torch.Tensor], config: dict) -> None:
    """Save a state_dict together with the JSON-serialisable config it came from."""
    torch_save(path, {"state_dict": state_dict, "config": config})


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """Load a checkpoint written by `save_checkpoint`; returns (state_dict, config)."""
    blob = torch_load(path)
    if not isinstance(blob, dict) or "state_dict" not in blob or "config" not in blob:
        raise ArtifactError(f"{path}: not a prunebench checkpoint (no state_dict/config); delete it and retrain")
    return blob["state_dict"], blob["config"]
