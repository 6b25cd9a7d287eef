"""File size, sha256 and gzip size (zlib level 6) of an artifact in one streaming pass.

The gzip size is what `gzip -6` would write (TensorFlow Model Optimization's guides zip at zlib's default
level 6): a 10-byte header, the deflate stream, an 8-byte trailer. zlib -6 is slow, so files over
GZIP_MAX_BYTES get no gzip size, only a note saying why.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 22
GZIP_LEVEL = 6  # zlib's default level, the one model-compression guides report gzipped sizes at
# zlib -6 compresses weights at 15-20 MB/s per core here (isal level 2: ~300 MB/s), and a quick run writes
# ~11 GB of artifacts, ResNet-50's ~100 MB each: 10 minutes of gzip. 16 MiB keeps every LeNet file (< 4 MB)
# and the sparse/packed ResNet files of the higher ratios, and skips the dense ResNet ones (ResNet-18's
# dense.pt: 45 MB, 2-3 s).
GZIP_MAX_BYTES = 16 << 20
GZIP_WBITS = 16 + 15  # a gzip member: 10-byte header (mtime 0, no file name), deflate, 8-byte trailer


@dataclass(frozen=True)
class FileDigest:
    """What the manifest records about one file."""

    bytes: int  # size on disk
    gzip_bytes: int | None  # size gzipped at zlib level GZIP_LEVEL; None for files over GZIP_MAX_BYTES
    gzip_note: str | None  # why gzip_bytes is None, else None
    sha256: str  # hex digest


def gzip_skipped_note() -> str:
    """Why a file over GZIP_MAX_BYTES has no gzip size."""
    return (f"not computed: zlib -{GZIP_LEVEL} runs at ~15-20 MB/s here, so files over {GZIP_MAX_BYTES:,} "
            "bytes are skipped")


def digest_file(path: Path) -> FileDigest:
    """Size, sha256 and (up to GZIP_MAX_BYTES) gzip size of a file in one pass; mtime 0, so deterministic."""
    digest, size, gzip_bytes = hashlib.sha256(), 0, 0
    with open(path, "rb") as f:
        small = os.fstat(f.fileno()).st_size <= GZIP_MAX_BYTES
        deflate = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, GZIP_WBITS) if small else None
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if deflate is not None:
                gzip_bytes += len(deflate.compress(chunk))
    if deflate is None:
        return FileDigest(size, gzip_bytes=None, gzip_note=gzip_skipped_note(), sha256=digest.hexdigest())
    gzip_bytes += len(deflate.flush())
    return FileDigest(size, gzip_bytes=gzip_bytes, gzip_note=None, sha256=digest.hexdigest())
