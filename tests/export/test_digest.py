"""digest_file: size, sha256 and the gzip size at zlib level 6 in one pass; big files get a note instead."""

import gzip
import hashlib

import numpy as np
import pytest

import export.digest
from export.digest import digest_file


@pytest.fixture
def weights_file(tmp_path):
    """fp32 weights with 90% zeros: a file on which zlib -6 and isal level 2 give different sizes."""
    rng = np.random.default_rng(0)
    weights = rng.standard_normal(20_000).astype(np.float32)
    weights[rng.random(weights.size) < 0.9] = 0
    path = tmp_path / "weights.bin"
    path.write_bytes(weights.tobytes())
    return path


def test_gzip_size_is_that_of_gzip_compress_at_level_6_with_mtime_0(weights_file, monkeypatch):
    monkeypatch.setattr(export.digest, "CHUNK", 1000)  # the stream spans many chunks
    assert digest_file(weights_file).gzip_bytes == len(gzip.compress(weights_file.read_bytes(), 6, mtime=0))


def test_size_and_sha256_are_those_of_the_file(weights_file):
    data = weights_file.read_bytes()
    digest = digest_file(weights_file)
    assert (digest.bytes, digest.sha256) == (len(data), hashlib.sha256(data).hexdigest())


def test_file_at_the_gzip_limit_gets_its_gzip_size_and_no_note(weights_file, monkeypatch):
    monkeypatch.setattr(export.digest, "GZIP_MAX_BYTES", weights_file.stat().st_size)
    digest = digest_file(weights_file)
    assert digest.gzip_bytes is not None and digest.gzip_note is None


def test_file_over_the_gzip_limit_gets_no_gzip_size_and_a_note_saying_why(weights_file, monkeypatch):
    monkeypatch.setattr(export.digest, "GZIP_MAX_BYTES", weights_file.stat().st_size - 1)
    digest = digest_file(weights_file)
    assert digest.gzip_bytes is None
    assert digest.gzip_note.startswith("not computed: zlib -6 runs at")
    assert digest.bytes == weights_file.stat().st_size
    assert digest.sha256 == hashlib.sha256(weights_file.read_bytes()).hexdigest()
