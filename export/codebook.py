"""The lossy `codebook` format (Deep Compression, Han et al. 2016): per weight tensor of every Conv2d and Linear (the
classifier's too), the nonzero values clustered into at most 2^bits shared fp32 centroids; the zero mask and the
centroid indices entropy-coded with LZMA2 (order-0 literal coding, near the entropy of i.i.d. symbols).

File layout (loadable with torch.load(weights_only=True), saved unaligned), as packed.pt: {"header": JSON
string, "payload": one uint8 tensor}. Per quantized tensor, in header order, the payload holds its mask
section (packed.encode_mask), its centroids (fp32, ascending) and its index section (one byte per nonzero,
LZMA2). Then four byte planes of every other fp32 value (biases, BatchNorm), coded as packed.pt's, and the raw
bytes of non-float tensors. A CRC-32 of the payload sits in the header; every field is checked before
decoding, and an index outside its codebook is an ArtifactError.
"""

from __future__ import annotations

import json
import lzma
import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from isal import isal_zlib
from torch import nn

from export.packed import (DTYPES, MASK_CODINGS, PLANE_CODECS, decode_mask, encode_mask, fp32_from_planes,
                           fp32_planes, lzma_compress, lzma_decompress)
from prune.config import MAX_CODEBOOK_BITS
from prune.errors import ArtifactError

CODEBOOK_FORMAT = "prunebench-codebook"
CODEBOOK_VERSION = 2  # 2: LZMA2 value planes (packed format 3)
MAX_BITS = MAX_CODEBOOK_BITS  # indices are stored one byte each before entropy coding
KMEANS_ITERATIONS = 30
# Centroids are fitted on at most this many of a tensor's values (seeded draw), then every value takes the
# nearest: fitting all 11M weights of a ResNet-50 at 50% takes seconds per iteration, a sample of 2^18 milliseconds.
KMEANS_SAMPLE = 1 << 18


def quantized_keys(model: nn.Module) -> list[str]:
    """The weights Deep Compression shares: every Conv2d's and Linear's, the classifier's included."""
    return [f"{name}.weight" for name, module in model.named_modules() if isinstance(module, (nn.Conv2d, nn.Linear))]


def kmeans_1d(values: np.ndarray, bits: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means of 1-D `values` into at most 2^bits centroids, initialised evenly over [min, max] (Deep
    Compression's linear initialisation, which keeps the rare large weights near a centroid of their own).

    In one dimension each cluster is an interval of the sorted values, so an iteration only searches the
    cluster boundaries (the midpoints) and sums each interval from prefix sums: 2^bits searches instead of one
    per value. Every value then takes the nearest centroid. Returns (centroids ascending as fp32, each value's
    uint8 index).
    """
    if values.size == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.uint8)
    sample = values
    if values.size > KMEANS_SAMPLE:
        sample = np.random.default_rng(seed).choice(values, KMEANS_SAMPLE, replace=False)
    ordered = np.sort(sample.astype(np.float64))
    prefix = np.concatenate([[0.0], np.cumsum(ordered)])
    distinct = 1 + int(np.count_nonzero(np.diff(ordered)))
    centroids = np.unique(np.linspace(values.min(), values.max(), min(1 << bits, distinct), dtype=np.float64))
    for _ in range(KMEANS_ITERATIONS):
        # cluster i holds the sorted values in (midpoint i-1, midpoint i], as searchsorted assigns them below
        midpoints = (centroids[1:] + centroids[:-1]) / 2
        ends = np.concatenate([[0], np.searchsorted(ordered, midpoints, side="right"), [ordered.size]])
        counts = np.diff(ends)
        sums = prefix[ends[1:]] - prefix[ends[:-1]]
        updated = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        if np.array_equal(updated, centroids):
            break
        centroids = updated
    centroids = np.unique(centroids.astype(np.float32))
    index = np.searchsorted((centroids[1:] + centroids[:-1]) / 2, values.astype(np.float32))
    return centroids, index.astype(np.uint8)


def share(array: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(zero mask, centroids, index per nonzero) of one weight tensor: its nonzeros shared, its zeros kept."""
    flat = array.ravel()
    mask = flat != 0
    centroids, index = kmeans_1d(flat[mask], bits)
    return mask, centroids, index


@dataclass(frozen=True)
class Shares:
    """The k-means result of every shared tensor at one bit width: what the bit search tries and the file stores,
    fitted once for both (a ResNet-50's fits take 4 s on 2 cores)."""

    bits: int
    tensors: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # key -> share(...)


def share_state(state: Mapping[str, torch.Tensor], keys: list[str], bits: int) -> Shares:
    """The tensors of `keys` in `state` shared in codebooks of at most 2^bits entries."""
    if not 1 <= bits <= MAX_BITS:
        raise ValueError(f"codebook bits {bits} outside 1-{MAX_BITS}")
    return Shares(bits, {key: share(state[key].detach().cpu().numpy(), bits) for key in keys})


def quantize_state(state: Mapping[str, torch.Tensor], shares: Shares) -> dict[str, torch.Tensor]:
    """`state` with each shared tensor replaced by its centroids (zeros kept): what the file decodes to."""
    out = dict(state)
    for key, (mask, centroids, index) in shares.tensors.items():
        flat = np.zeros(mask.size, np.float32)
        flat[mask] = centroids[index]
        out[key] = torch.from_numpy(flat.reshape(state[key].shape))
    return out


def codebook_blob(state: Mapping[str, torch.Tensor], shares: Shares, model: str) -> dict:
    """Encode a permanent state_dict with the tensors of `shares` stored as their codebooks."""
    arrays = {key: t.detach().cpu().contiguous().numpy() for key, t in state.items()}
    sections, tensors, plain = [], [], []
    for key, array in arrays.items():
        if str(array.dtype) not in DTYPES:
            raise ValueError(f"{key}: dtype {array.dtype} not supported by the codebook format")
        if key not in shares.tensors:
            tensors.append([key, list(array.shape), str(array.dtype), "plain", "", 0, 0, 0])
            if array.dtype == np.float32:
                plain.append(array.ravel())
            continue
        mask, centroids, index = shares.tensors[key]
        coding, mask_data = encode_mask(mask)
        index_data = lzma_compress(index.tobytes())
        sections += [mask_data, centroids.tobytes(), index_data]
        tensors.append([key, list(array.shape), str(array.dtype), "codebook", coding, len(mask_data), centroids.size,
                        len(index_data)])
    planes = fp32_planes(np.concatenate(plain) if plain else np.zeros(0, np.float32))
    others = [a.tobytes() for key, a in arrays.items() if key not in shares.tensors and a.dtype != np.float32]
    payload = b"".join([*sections, *(data for _, data in planes), *others])
    header = {"format": CODEBOOK_FORMAT, "version": CODEBOOK_VERSION, "model": model, "bits": shares.bits,
              "crc32": zlib.crc32(payload), "tensors": tensors,
              "planes": [[codec, len(data)] for codec, data in planes]}
    return {"header": json.dumps(header, separators=(",", ":")),
            "payload": torch.frombuffer(bytearray(payload), dtype=torch.uint8)}


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


TENSOR_CHECKS: tuple[tuple[str, Callable[[object], bool]], ...] = (
    ("name", lambda v: isinstance(v, str)), ("shape", lambda v: isinstance(v, list) and all(map(_count, v))),
    ("dtype", lambda v: v in DTYPES), ("kind", lambda v: v in ("plain", "codebook")),
    ("coding", lambda v: v in ("", *MASK_CODINGS)), ("mask length", _count), ("centroids", _count),
    ("index length", _count))


def _check_header(header: dict, bits: object, payload_bytes: int) -> None:
    """Types of every field, centroid counts within 2^bits, sections that fill the payload exactly."""
    if not (_count(bits) and 1 <= bits <= MAX_BITS):
        raise ValueError(f"bits {bits!r:.20} outside 1-{MAX_BITS}")
    tensors, planes = header.get("tensors"), header.get("planes")
    if not isinstance(tensors, list) or not isinstance(planes, list) or len(planes) != 4:
        raise ValueError("no tensor list or not four value planes")
    covered = 0
    for i, entry in enumerate(tensors):
        if not isinstance(entry, list) or len(entry) != len(TENSOR_CHECKS):
            raise ValueError(f"tensors[{i}] is not a list of {len(TENSOR_CHECKS)} fields")
        for value, (name, check) in zip(entry, TENSOR_CHECKS):
            if not check(value):
                raise ValueError(f"tensors[{i}] {name} {value!r:.40} is malformed")
        _, shape, dtype, kind, coding, mask_length, centroids, index_length = entry
        if kind == "codebook" and (dtype != "float32" or not coding or centroids > 1 << bits):
            raise ValueError(f"tensors[{i}] is a codebook of {centroids} centroids ({dtype}, coding {coding!r})")
        if kind == "plain" and (coding or mask_length or centroids or index_length):
            raise ValueError(f"tensors[{i}] is plain but has codebook sections")
        covered += mask_length + 4 * centroids + index_length
        if kind == "plain" and dtype != "float32":
            covered += math.prod(shape) * DTYPES[dtype].itemsize
    if not all(isinstance(p, list) and len(p) == 2 and p[0] in PLANE_CODECS and _count(p[1]) for p in planes):
        raise ValueError("malformed value planes")
    covered += sum(length for _, length in planes)
    if covered != payload_bytes:
        raise ValueError(f"sections cover {covered:,} bytes, the payload holds {payload_bytes:,}")


def is_codebook(blob: object) -> bool:
    """Whether a loaded .pt object is a codebook file (a packed-style blob whose header names this format)."""
    if not isinstance(blob, dict) or not isinstance(blob.get("header"), str):
        return False
    try:
        return json.loads(blob["header"]).get("format") == CODEBOOK_FORMAT
    except (ValueError, AttributeError):
        return False


def read_codebook_header(blob: dict, source: str) -> dict:
    """The checked header of a codebook blob; anything malformed is an ArtifactError naming `source`."""
    payload = blob.get("payload")
    try:
        header = json.loads(blob["header"])
        if not isinstance(payload, torch.Tensor) or payload.dtype != torch.uint8 or payload.dim() != 1:
            raise ValueError("the payload is not a 1-D uint8 tensor")
        if header.get("version") != CODEBOOK_VERSION:
            raise ValueError(f"version {header.get('version')!r}, this prunebench reads {CODEBOOK_VERSION}")
        _check_header(header, header.get("bits"), len(payload))
    except (ValueError, AttributeError, TypeError) as exc:
        raise ArtifactError(f"{source}: malformed codebook file ({exc}); re-export it") from None
    return header


def codebook_header_state(header: dict) -> dict[str, torch.Tensor]:
    """Meta tensors of a checked header's shapes and dtypes, to check against the model before decoding."""
    return {key: torch.empty(shape, dtype=DTYPES[dtype], device="meta") for key, shape, dtype, *_ in header["tensors"]}


def decode_codebook(blob: dict, header: dict, source: str) -> dict[str, torch.Tensor]:
    """The fp32 state_dict a checked codebook blob holds: each index mapped to its centroid, zeros where masked."""
    payload = blob["payload"].numpy().tobytes()
    if zlib.crc32(payload) != header["crc32"]:
        raise ArtifactError(f"{source}: payload checksum mismatch; the file is corrupt, re-export it")
    try:
        return _decode(header, payload, source)
    except (ValueError, lzma.LZMAError, isal_zlib.error) as exc:
        raise ArtifactError(f"{source}: corrupt codebook payload ({exc}); re-export it") from None


def _decode(header: dict, payload: bytes, source: str) -> dict[str, torch.Tensor]:
    offset, shared = 0, {}
    for key, shape, _, kind, coding, mask_length, count, index_length in header["tensors"]:
        if kind != "codebook":
            continue
        n = math.prod(shape)
        mask = decode_mask(coding, payload[offset:offset + mask_length], n)
        offset += mask_length
        centroids = np.frombuffer(payload[offset:offset + 4 * count], dtype=np.float32)
        offset += 4 * count
        nonzero = int(np.count_nonzero(mask))
        index = np.frombuffer(lzma_decompress(payload[offset:offset + index_length], nonzero), dtype=np.uint8)
        offset += index_length
        if index.size != nonzero:
            raise ValueError(f"{key}: {index.size} indices for {nonzero} nonzero weights")
        if index.size and int(index.max()) >= count:
            raise ArtifactError(f"{source}: {key} holds index {int(index.max())} outside its codebook of {count} "
                                "centroids; the file is corrupt, re-export it")
        flat = np.zeros(n, np.float32)
        flat[mask] = centroids[index]
        shared[key] = flat.reshape(shape)
    plain = [(key, shape, dtype) for key, shape, dtype, kind, *_ in header["tensors"] if kind == "plain"]
    floats = sum(math.prod(shape) for _, shape, dtype in plain if dtype == "float32")
    planes = []
    for codec, length in header["planes"]:
        planes.append((codec, payload[offset:offset + length]))
        offset += length
    values, used = fp32_from_planes(planes, floats), 0
    for key, shape, dtype in plain:
        size = math.prod(shape)
        if dtype == "float32":
            shared[key] = values[used:used + size].reshape(shape).copy()
            used += size
        else:
            nbytes = size * DTYPES[dtype].itemsize
            shared[key] = np.frombuffer(payload[offset:offset + nbytes], dtype=dtype).reshape(shape).copy()
            offset += nbytes
    return {key: torch.from_numpy(shared[key]) for key, *_ in header["tensors"]}
