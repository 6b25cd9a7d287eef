"""The compact `packed` format: per pruned tensor an entropy-coded mask, the nonzero values fp32 bit-exact.

File layout (loadable with torch.load(weights_only=True)): {"header": JSON string, "payload": one uint8 tensor}.
One payload instead of a tensor per layer because every zip record costs hundreds of bytes. The payload holds, in
order: each pruned tensor's mask section (LZMA2 raw stream of either the packed 1-bit bitmap or gap bytes, the
smaller kept), then four deflate (or raw) byte planes of all fp32 values (the nonzeros of pruned tensors and every
other fp32 tensor, in tensor order, split into byte planes so the sign/exponent bytes compress), then the raw bytes
of non-float tensors. A CRC-32 of the payload in the header catches corruption that the codecs would not.
"""

from __future__ import annotations

import json
import lzma
import zlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from isal import isal_zlib

from prune.errors import ArtifactError

PACKED_FORMAT = "prunebench-packed"
PACKED_VERSION = 1
# Order-0 literal coding (lc=lp=pb=0) suits i.i.d. mask bits; normal mode with a hash-chain finder is within
# 1% of preset 9|EXTREME on masks at a third of its time (measured on 2.4M-weight masks at 1-70% density).
LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 6, "mode": lzma.MODE_NORMAL, "mf": lzma.MF_HC4,
                 "nice_len": 273, "depth": 4, "lc": 0, "lp": 0, "pb": 0}]
GAP_MAX_DENSITY = 1 / 3  # above this the gap stream (>= 1 byte per nonzero) never beat the bitmap in measurements
GAP_CONTINUE = 255  # a gap byte of 255 adds 255 zeros and continues; any other byte ends the gap
DEFLATE_LEVEL = 2  # isal level 2: near zlib -6 ratio on weight bytes at ~600 MB/s
DTYPES = {"float32": np.float32, "int64": np.int64}


def gap_bytes(mask: np.ndarray) -> bytes:
    """Run lengths of zeros before each nonzero, one byte each, 255 meaning '255 more zeros, continue'."""
    positions = np.flatnonzero(mask)
    gaps = np.diff(positions, prepend=-1) - 1
    lengths = gaps // GAP_CONTINUE + 1
    out = np.full(int(lengths.sum()), GAP_CONTINUE, dtype=np.uint8)
    out[np.cumsum(lengths) - 1] = gaps % GAP_CONTINUE
    return out.tobytes()


def mask_from_gaps(data: bytes, n: int) -> np.ndarray:
    """Inverse of gap_bytes for a mask of n elements; inconsistent data raises ValueError."""
    codes = np.frombuffer(data, dtype=np.uint8).astype(np.int64)
    if len(codes) and codes[-1] == GAP_CONTINUE:
        raise ValueError("gap stream ends inside a gap")
    ends = np.flatnonzero(codes != GAP_CONTINUE)
    totals = np.cumsum(codes)[ends]
    gaps = np.diff(totals, prepend=0)
    positions = np.cumsum(gaps + 1) - 1
    if len(positions) and positions[-1] >= n:
        raise ValueError("gap stream runs past the end of the tensor")
    mask = np.zeros(n, dtype=bool)
    mask[positions] = True
    return mask


def _lzma(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_RAW, filters=LZMA_FILTERS)


def _unlzma(data: bytes) -> bytes:
    return lzma.decompress(data, format=lzma.FORMAT_RAW, filters=LZMA_FILTERS)


def encode_mask(mask: np.ndarray) -> tuple[str, bytes]:
    """The smaller of the compressed bitmap and (at low density) the compressed gap bytes, with its coding name."""
    candidates = [("bitmap", _lzma(np.packbits(mask).tobytes()))]
    if np.count_nonzero(mask) <= GAP_MAX_DENSITY * mask.size:
        candidates.append(("gaps", _lzma(gap_bytes(mask))))
    return min(candidates, key=lambda c: len(c[1]))


def decode_mask(coding: str, data: bytes, n: int) -> np.ndarray:
    """Inverse of encode_mask; raises ValueError (or lzma.LZMAError) on inconsistent data."""
    raw = _unlzma(data)
    if coding == "gaps":
        return mask_from_gaps(raw, n)
    if coding == "bitmap" and len(raw) == (n + 7) // 8:
        return np.unpackbits(np.frombuffer(raw, dtype=np.uint8), count=n).astype(bool)
    raise ValueError(f"mask coding {coding!r} with {len(raw)} bytes does not fit {n} elements")


def _planes(values: np.ndarray) -> list[tuple[str, bytes]]:
    """fp32 values split into 4 byte planes, each deflated unless that does not make it smaller."""
    planes = values.view(np.uint8).reshape(-1, 4).T
    out = []
    for plane in planes:
        raw = plane.tobytes()
        packed = isal_zlib.compress(raw, DEFLATE_LEVEL)
        out.append(("deflate", packed) if len(packed) < len(raw) else ("raw", raw))
    return out


def _unplanes(sections: list[tuple[str, bytes]], count: int) -> np.ndarray:
    planes = [isal_zlib.decompress(data) if codec == "deflate" else data for codec, data in sections]
    if any(len(p) != count for p in planes) or any(codec not in ("deflate", "raw") for codec, _ in sections):
        raise ValueError(f"value planes do not hold {count} fp32 values")
    return np.stack([np.frombuffer(p, dtype=np.uint8) for p in planes], axis=1).reshape(-1).view(np.float32)


def pack_state(state: Mapping[str, torch.Tensor], pruned: set[str], model: str) -> dict:
    """Encode a permanent state_dict; `pruned` names the tensors whose zeros are coded as a mask."""
    arrays = {key: t.detach().cpu().contiguous().numpy() for key, t in state.items()}
    masks = {key: arrays[key].ravel() != 0 for key in arrays if key in pruned}
    with ThreadPoolExecutor(max_workers=2) as pool:  # lzma releases the GIL
        coded = dict(zip(masks, pool.map(encode_mask, masks.values())))
    floats = [a.ravel()[masks[k]] if k in masks else a.ravel() for k, a in arrays.items() if a.dtype == np.float32]
    values = np.concatenate(floats) if floats else np.zeros(0, np.float32)
    planes = _planes(values)
    others = [a.tobytes() for a in arrays.values() if a.dtype != np.float32]
    tensors = []
    for key, array in arrays.items():
        if str(array.dtype) not in DTYPES:
            raise ValueError(f"{key}: dtype {array.dtype} not supported by the packed format")
        coding, data = coded.get(key, ("dense", b""))
        tensors.append([key, list(array.shape), str(array.dtype), coding, len(data)])
    payload = b"".join([*(data for _, data in coded.values()), *(data for _, data in planes), *others])
    header = {"format": PACKED_FORMAT, "version": PACKED_VERSION, "model": model, "crc32": zlib.crc32(payload),
              "tensors": tensors, "planes": [[codec, len(data)] for codec, data in planes]}
    return {"header": json.dumps(header, separators=(",", ":")),
            "payload": torch.frombuffer(bytearray(payload), dtype=torch.uint8)}


def read_header(blob: object, source: str) -> dict:
    """The parsed, structurally checked header of a packed blob; anything else is an ArtifactError."""
    try:
        header = json.loads(blob["header"])
        ok = (header["format"] == PACKED_FORMAT and isinstance(blob["payload"], torch.Tensor)
              and all(len(entry) == 5 for entry in header["tensors"]) and len(header["planes"]) == 4)
    except (TypeError, KeyError, ValueError):
        ok = False
    if not ok:
        raise ArtifactError(f"{source}: not a prunebench packed file; re-export it with `python -m bench export`")
    if header["version"] != PACKED_VERSION:
        raise ArtifactError(f"{source}: packed format version {header['version']}, this prunebench reads "
                            f"{PACKED_VERSION}; re-export it")
    return header


def unpack_state(blob: dict, header: dict, source: str) -> dict[str, torch.Tensor]:
    """Decode a packed blob whose header was read (and checked against the model) into a dense state_dict."""
    payload = blob["payload"].numpy().tobytes()
    if zlib.crc32(payload) != header["crc32"]:
        raise ArtifactError(f"{source}: payload checksum mismatch; the file is corrupt, re-export it")
    try:
        return _decode(header, payload)
    except (ValueError, KeyError, IndexError, lzma.LZMAError, zlib.error, isal_zlib.error) as exc:
        raise ArtifactError(f"{source}: corrupt packed payload ({exc}); re-export it") from None


def _decode(header: dict, payload: bytes) -> dict[str, torch.Tensor]:
    offset, masks = 0, {}
    for key, shape, _, coding, length in header["tensors"]:
        if coding != "dense":
            masks[key] = decode_mask(coding, payload[offset:offset + length], int(np.prod(shape)))
        offset += length
    count = sum(int(masks[k].sum()) if k in masks else int(np.prod(s))
                for k, s, dtype, _, _ in header["tensors"] if dtype == "float32")
    sections = []
    for codec, length in header["planes"]:
        sections.append((codec, payload[offset:offset + length]))
        offset += length
    values, used, state = _unplanes(sections, count), 0, {}
    for key, shape, dtype, _, _ in header["tensors"]:
        n = int(np.prod(shape))
        if dtype == "float32":
            take = int(masks[key].sum()) if key in masks else n
            flat = np.zeros(n, np.float32)
            flat[masks[key] if key in masks else slice(None)] = values[used:used + take]
            used += take
        else:
            size = n * np.dtype(DTYPES[dtype]).itemsize
            flat = np.frombuffer(payload[offset:offset + size], dtype=DTYPES[dtype]).copy()
            offset += size
        state[key] = torch.from_numpy(flat.reshape(shape))
    if offset != len(payload):
        raise ValueError(f"{len(payload) - offset} payload bytes left over")
    return state
