"""The compact `packed` format: per pruned tensor an entropy-coded mask, the nonzero values fp32 bit-exact.

File layout (loadable with torch.load(weights_only=True); saved unaligned, prune.io.torch_save(compact=True)):
{"header": JSON string, "payload": one uint8 tensor}. One payload instead of a tensor per layer because every
zip record costs a hundred bytes or more. The payload holds, in order: each pruned tensor's mask section
(LZMA2 raw stream of either the packed 1-bit bitmap or gap bytes, the smaller kept); a zero-sign section for
each pruned tensor holding -0.0 (its zeros' sign bits, coded the same way, so decoding is bit-exact; none
where every zero is +0.0); four byte planes of all fp32 values (the nonzeros of pruned tensors and every other
fp32 tensor, in tensor order, split into byte planes so the sign/exponent bytes compress), each raw, deflated
or LZMA2-coded, whichever is smallest; the raw bytes of non-float tensors. A CRC-32 of the payload in the
header catches corruption that the codecs would not; every header field is checked before anything is decoded.
"""

from __future__ import annotations

import json
import lzma
import math
import zlib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from isal import isal_zlib

from prune.errors import ArtifactError

PACKED_FORMAT = "prunebench-packed"
PACKED_VERSION = 3  # 2: signs of pruned zeros kept (version 1 decoded -0.0 as +0.0); 3: LZMA2 value planes
# Order-0 literal coding (lc=lp=pb=0) suits i.i.d. mask bits; normal mode with a hash-chain finder is within
# 1% of preset 9|EXTREME on masks at a third of its time (measured on 2.4M-weight masks at 1-70% density).
LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 6, "mode": lzma.MODE_NORMAL, "mf": lzma.MF_HC4,
                 "nice_len": 273, "depth": 4, "lc": 0, "lp": 0, "pb": 0}]
GAP_MAX_DENSITY = 1 / 3  # above this the gap stream (>= 1 byte per nonzero) never beat the bitmap in measurements
GAP_CONTINUE = 255  # a gap byte of 255 adds 255 zeros and continues; any other byte ends the gap
# isal level 2: 15-25x the speed of zlib -6 on weight byte planes, within 0.5% of its size (measured on
# LeNet-300-100 and ResNet-18 weights), so the packed format keeps isal.
DEFLATE_LEVEL = 2
# LZMA2 is tried only on a plane deflate shrinks by this fraction or more. The low mantissa planes of a trained
# model are near-random bytes that deflate shrinks by ~0.1%; LZMA2 gained nothing on them (ResNet-50, 4M values)
# at 0.5 s per million values: 62 of the 127 s that exporting its dense model took.
LZMA_MIN_SAVING = 0.02
DTYPES = {"float32": torch.float32, "int64": torch.int64}
MASK_CODINGS = ("bitmap", "gaps")
PLANES = 4  # bytes of an fp32 value


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


def lzma_compress(data: bytes) -> bytes:
    """A raw LZMA2 stream with order-0 literal coding: near the entropy of i.i.d. bytes (mask bits, indices)."""
    return lzma.compress(data, format=lzma.FORMAT_RAW, filters=LZMA_FILTERS)


def lzma_decompress(data: bytes, max_length: int) -> bytes:
    """One whole raw LZMA2 stream of at most max_length bytes, decompressed (a crafted one cannot balloon)."""
    decompressor = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=LZMA_FILTERS)
    raw = decompressor.decompress(data, max_length)
    if not decompressor.eof or decompressor.unused_data:
        raise ValueError("section is not one LZMA2 stream of its declared size")
    return raw


def encode_mask(mask: np.ndarray) -> tuple[str, bytes]:
    """The smaller of the compressed bitmap and (at low density) the compressed gap bytes, with its coding name."""
    candidates = [("bitmap", lzma_compress(np.packbits(mask).tobytes()))]
    if np.count_nonzero(mask) <= GAP_MAX_DENSITY * mask.size:
        candidates.append(("gaps", lzma_compress(gap_bytes(mask))))
    return min(candidates, key=lambda c: len(c[1]))


def decode_mask(coding: str, data: bytes, n: int) -> np.ndarray:
    """Inverse of encode_mask; raises ValueError (or lzma.LZMAError) on inconsistent data."""
    raw = lzma_decompress(data, n + n // GAP_CONTINUE + 1)  # the longest gap stream of n elements (bitmaps: shorter)
    if coding == "gaps":
        return mask_from_gaps(raw, n)
    if coding == "bitmap" and len(raw) == (n + 7) // 8:
        return np.unpackbits(np.frombuffer(raw, dtype=np.uint8), count=n).astype(bool)
    raise ValueError(f"mask coding {coding!r} with {len(raw)} bytes does not fit {n} elements")


def fp32_planes(values: np.ndarray) -> list[tuple[str, bytes]]:
    """fp32 values split into 4 byte planes, each coded by the smallest of raw, deflate and LZMA2. LZMA2 is
    tried only on a plane deflate shrinks by LZMA_MIN_SAVING (the sign/exponent plane, the high mantissa bits of
    a small layer): it codes those 5-15% smaller than deflate."""
    planes = values.view(np.uint8).reshape(-1, PLANES).T
    out = []
    for plane in planes:
        raw = plane.tobytes()
        candidates = [("raw", raw), ("deflate", isal_zlib.compress(raw, DEFLATE_LEVEL))]
        if len(candidates[1][1]) <= (1 - LZMA_MIN_SAVING) * len(raw):
            candidates.append(("lzma", lzma_compress(raw)))
        out.append(min(candidates, key=lambda c: len(c[1])))
    return out


def _inflate(data: bytes, count: int) -> bytes:
    """One whole deflate (zlib) stream of at most `count` bytes."""
    decompressor = isal_zlib.decompressobj()
    raw = decompressor.decompress(data, count + 1)
    if not decompressor.eof or decompressor.unused_data:
        raise ValueError("value plane is not one deflate stream")
    return raw


PLANE_DECODERS: dict[str, Callable[[bytes, int], bytes]] = {
    "raw": lambda data, count: data, "deflate": _inflate, "lzma": lzma_decompress}
PLANE_CODECS = tuple(PLANE_DECODERS)


def fp32_from_planes(sections: list[tuple[str, bytes]], count: int) -> np.ndarray:
    """Inverse of fp32_planes for `count` values; inconsistent sections raise ValueError."""
    planes = [PLANE_DECODERS[codec](data, count) for codec, data in sections]
    if any(len(p) != count for p in planes):
        raise ValueError(f"value planes do not hold {count} fp32 values")
    return np.stack([np.frombuffer(p, dtype=np.uint8) for p in planes], axis=1).reshape(-1).view(np.float32)


def pack_state(state: Mapping[str, torch.Tensor], pruned: set[str], model: str) -> dict:
    """Encode a permanent state_dict; `pruned` names the tensors whose zeros are coded as a mask."""
    arrays = {key: t.detach().cpu().contiguous().numpy() for key, t in state.items()}
    for key, array in arrays.items():
        if str(array.dtype) not in DTYPES:
            raise ValueError(f"{key}: dtype {array.dtype} not supported by the packed format")
    masks = {key: arrays[key].ravel() != 0 for key in arrays if key in pruned}
    signs = {key: np.signbit(arrays[key].ravel()[~mask]) for key, mask in masks.items()}  # of the zeros
    signs = {key: negative for key, negative in signs.items() if negative.any()}
    with ThreadPoolExecutor(max_workers=2) as pool:  # lzma releases the GIL
        coded = dict(zip(masks, pool.map(encode_mask, masks.values())))
        coded_signs = dict(zip(signs, pool.map(encode_mask, signs.values())))
    floats = [a.ravel()[masks[k]] if k in masks else a.ravel() for k, a in arrays.items() if a.dtype == np.float32]
    planes = fp32_planes(np.concatenate(floats) if floats else np.zeros(0, np.float32))
    tensors = []
    for key, array in arrays.items():
        coding, data = coded.get(key, ("dense", b""))
        tensors.append([key, list(array.shape), str(array.dtype), coding, len(data)])
    others = [a.tobytes() for a in arrays.values() if a.dtype != np.float32]
    sections = [*coded.values(), *coded_signs.values(), *planes]
    payload = b"".join([*(data for _, data in sections), *others])
    header = {"format": PACKED_FORMAT, "version": PACKED_VERSION, "model": model, "crc32": zlib.crc32(payload),
              "tensors": tensors,
              "zero_signs": [[key, coding, len(data)] for key, (coding, data) in coded_signs.items()],
              "planes": [[codec, len(data)] for codec, data in planes]}
    return {"header": json.dumps(header, separators=(",", ":")),
            "payload": torch.frombuffer(bytearray(payload), dtype=torch.uint8)}


def _is_count(value: object) -> bool:
    """A non-negative int, not a bool (JSON true passes isinstance(value, int))."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _is_shape(value: object) -> bool:
    return isinstance(value, list) and all(_is_count(size) for size in value)


def _among(*names: str) -> Callable[[object], bool]:
    return lambda value: isinstance(value, str) and value in names


Field = tuple[str, Callable[[object], bool], str]  # name, check, what the check wants (for the message)
COUNT = "a non-negative int"
HEADER_FIELDS: tuple[Field, ...] = (
    ("version", _is_count, COUNT), ("model", _is_str, "a string"),
    ("crc32", lambda value: _is_count(value) and value < 1 << 32, "a 32-bit unsigned int"),
    ("tensors", lambda value: isinstance(value, list), "a list"),
    ("zero_signs", lambda value: isinstance(value, list), "a list"),
    ("planes", lambda value: isinstance(value, list) and len(value) == PLANES, f"a list of {PLANES}"))
ENTRY_FIELDS: dict[str, tuple[Field, ...]] = {
    "tensors": (("name", _is_str, "a string"), ("shape", _is_shape, "a list of non-negative ints"),
                ("dtype", _among(*DTYPES), f"one of {', '.join(DTYPES)}"),
                ("coding", _among("dense", *MASK_CODINGS), f"one of dense, {', '.join(MASK_CODINGS)}"),
                ("length", _is_count, COUNT)),
    "zero_signs": (("name", _is_str, "a string"),
                   ("coding", _among(*MASK_CODINGS), " or ".join(MASK_CODINGS)),
                   ("length", _is_count, COUNT)),
    "planes": (("codec", _among(*PLANE_CODECS), " or ".join(PLANE_CODECS)), ("length", _is_count, COUNT))}


def _check_fields(values: list, fields: tuple[Field, ...], where: str) -> None:
    for value, (name, check, wanted) in zip(values, fields):
        if not check(value):
            raise ValueError(f"{where}{name} {value!r:.60} is not {wanted}")


def _check_header(header: dict, payload_bytes: int) -> None:
    """Every field of a parsed header, then how its entries fit together; a ValueError names the problem."""
    missing = [name for name, _, _ in HEADER_FIELDS if name not in header]
    if missing:
        raise ValueError(f"no {', '.join(missing)}")
    _check_fields([header[name] for name, _, _ in HEADER_FIELDS], HEADER_FIELDS, "")
    for key, fields in ENTRY_FIELDS.items():
        for i, entry in enumerate(header[key]):
            if not isinstance(entry, list) or len(entry) != len(fields):
                raise ValueError(f"{key}[{i}] is not a list of {len(fields)} fields")
            _check_fields(entry, fields, f"{key}[{i}] ")
    _check_layout(header["tensors"], header["zero_signs"], header["planes"], payload_bytes)


def _check_layout(tensors: list, zero_signs: list, planes: list, payload_bytes: int) -> None:
    """Unique names, masks of float32 tensors only, zero signs of masked ones only, sections that fill the
    payload exactly."""
    names = [key for key, *_ in tensors]
    if len(set(names)) != len(names):
        raise ValueError("a tensor name repeats")
    for key, _, dtype, coding, length in tensors:
        if (coding == "dense") == bool(length) or (coding != "dense" and dtype != "float32"):
            raise ValueError(f"{key}: {dtype} tensor coded {coding} with a {length}-byte mask section")
    signed = [key for key, _, _ in zero_signs]
    masked = {key for key, _, _, coding, _ in tensors if coding != "dense"}
    if not set(signed) <= masked or len(set(signed)) != len(signed):
        raise ValueError("zero_signs names a tensor without a mask, or one twice")
    raw = sum(math.prod(shape) * DTYPES[dtype].itemsize
              for _, shape, dtype, _, _ in tensors if dtype != "float32")
    covered = raw + sum(entry[-1] for entry in [*tensors, *zero_signs, *planes])
    if covered != payload_bytes:
        raise ValueError(f"sections cover {covered:,} bytes, the payload holds {payload_bytes:,}")


def _parse(blob: object) -> dict | None:
    """The JSON header of a {"header": str, "payload": 1-D uint8 tensor} blob, or None for anything else."""
    if not isinstance(blob, dict) or not isinstance(blob.get("header"), str):
        return None
    payload = blob.get("payload")
    if not isinstance(payload, torch.Tensor) or payload.dtype != torch.uint8 or payload.dim() != 1:
        return None
    try:
        header = json.loads(blob["header"])
    except ValueError:
        return None
    return header if isinstance(header, dict) else None


def read_header(blob: object, source: str) -> dict:
    """The parsed header of a packed blob, every field checked (lengths against the payload); else an
    ArtifactError naming `source`."""
    header = _parse(blob)
    if header is None or header.get("format") != PACKED_FORMAT:
        raise ArtifactError(f"{source}: not a prunebench packed file; re-export it with `python -m bench export`")
    if _is_count(header.get("version")) and header["version"] != PACKED_VERSION:
        raise ArtifactError(f"{source}: packed format version {header['version']}, this prunebench reads "
                            f"{PACKED_VERSION}; re-export it")
    try:
        _check_header(header, len(blob["payload"]))
    except ValueError as exc:
        raise ArtifactError(f"{source}: malformed packed header ({exc}); re-export it") from None
    return header


def header_state(header: dict) -> dict[str, torch.Tensor]:
    """Meta tensors of a checked header's shapes and dtypes, to check against the model before decoding."""
    return {key: torch.empty(shape, dtype=DTYPES[dtype], device="meta")
            for key, shape, dtype, *_ in header["tensors"]}


def unpack_state(blob: dict, header: dict, source: str) -> dict[str, torch.Tensor]:
    """Decode a packed blob whose header was read (and checked against the model) into a dense state_dict."""
    payload = blob["payload"].numpy().tobytes()
    if zlib.crc32(payload) != header["crc32"]:
        raise ArtifactError(f"{source}: payload checksum mismatch; the file is corrupt, re-export it")
    try:
        return _decode(header, payload)
    except (ValueError, lzma.LZMAError, isal_zlib.error) as exc:
        raise ArtifactError(f"{source}: corrupt packed payload ({exc}); re-export it") from None


def _decode(header: dict, payload: bytes) -> dict[str, torch.Tensor]:
    """The state_dict of a checked header and its payload; inconsistent sections raise ValueError."""
    offset, masks, signs = 0, {}, {}
    for key, shape, _, coding, length in header["tensors"]:
        if coding != "dense":
            masks[key] = decode_mask(coding, payload[offset:offset + length], math.prod(shape))
        offset += length
    for key, coding, length in header["zero_signs"]:
        zeros = masks[key].size - int(np.count_nonzero(masks[key]))
        signs[key] = decode_mask(coding, payload[offset:offset + length], zeros)
        offset += length
    taken = {key: int(np.count_nonzero(masks[key])) if key in masks else math.prod(shape)
             for key, shape, dtype, _, _ in header["tensors"] if dtype == "float32"}
    sections = []
    for codec, length in header["planes"]:
        sections.append((codec, payload[offset:offset + length]))
        offset += length
    values, used, state = fp32_from_planes(sections, sum(taken.values())), 0, {}
    for key, shape, dtype, _, _ in header["tensors"]:
        if dtype == "float32":
            flat = _float_values(values[used:used + taken[key]], masks.get(key), signs.get(key))
            used += taken[key]
        else:
            size = math.prod(shape) * DTYPES[dtype].itemsize
            flat = np.frombuffer(payload[offset:offset + size], dtype=dtype).copy()
            offset += size
        state[key] = torch.from_numpy(flat.reshape(shape))
    return state


def _float_values(values: np.ndarray, mask: np.ndarray | None, negative: np.ndarray | None) -> np.ndarray:
    """One flat fp32 tensor: `values` where the mask is set (everywhere without a mask), zeros elsewhere, -0.0
    where `negative` (one flag per zero) says."""
    if mask is None:
        return values.copy()
    flat = np.zeros(mask.size, np.float32)
    flat[mask] = values
    if negative is not None:
        flat[np.flatnonzero(~mask)[negative]] = -0.0
    return flat
