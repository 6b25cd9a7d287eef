"""The packed format: entropy-coded masks and bit-exact values in one payload tensor."""

import json
from collections.abc import Callable

import numpy as np
import pytest
import torch

from export import packed
from export.packed import (PACKED_VERSION, decode_mask, encode_mask, gap_bytes, lzma_compress, mask_from_gaps,
                           pack_state, read_header, unpack_state)
from export.reference_size import binary_entropy
from prune.errors import ArtifactError


@pytest.mark.parametrize("positions", [[0], [254], [255], [256], [509, 510, 511], [0, 1, 2, 3000]])
def test_gap_bytes_round_trip_including_gaps_of_255_and_more(positions):
    mask = np.zeros(4000, dtype=bool)
    mask[positions] = True
    assert np.array_equal(mask_from_gaps(gap_bytes(mask), mask.size), mask)


def test_gap_stream_ending_inside_a_gap_is_rejected():
    with pytest.raises(ValueError, match="inside a gap"):
        mask_from_gaps(bytes([3, 255]), 1000)


def test_gap_stream_running_past_the_tensor_is_rejected():
    with pytest.raises(ValueError, match="past the end"):
        mask_from_gaps(bytes([200]), 100)


def test_mask_section_inflating_past_its_tensor_is_rejected():
    coding, data = encode_mask(np.ones(1_000_000, dtype=bool))  # a bitmap of 125,000 bytes once inflated
    with pytest.raises(ValueError, match="not one LZMA2 stream of its declared size"):
        decode_mask(coding, data, 100)


@pytest.mark.parametrize(("density", "coding"), [(0.5, "bitmap"), (0.01, "gaps")])
def test_mask_coding_picks_bitmap_at_half_density_and_gaps_when_sparse(density, coding):
    mask = np.random.default_rng(0).random(100_000) < density
    chosen, data = encode_mask(mask)
    assert chosen == coding
    assert np.array_equal(decode_mask(chosen, data, mask.size), mask)


@pytest.mark.parametrize("density", [0.5, 0.1, 0.01])
def test_mask_coding_is_within_five_percent_of_its_entropy(density):
    mask = np.random.default_rng(1).random(266_200) < density
    _, data = encode_mask(mask)
    entropy_bytes = mask.size * binary_entropy(mask.mean()) / 8
    assert len(data) <= 1.05 * entropy_bytes


def test_pack_then_unpack_is_bit_exact_for_every_dtype():
    weight = torch.randn(30, 40)
    weight[torch.rand(30, 40) < 0.9] = 0.0
    state = {"fc.weight": weight, "fc.bias": torch.randn(30), "bn.num_batches_tracked": torch.tensor(12)}
    blob = pack_state(state, {"fc.weight"}, "toy")
    restored = unpack_state(blob, read_header(blob, "toy.pt"), "toy.pt")
    assert restored.keys() == state.keys()
    for key, tensor in state.items():
        assert restored[key].dtype == tensor.dtype
        as_bits = tensor.view(torch.int32) if tensor.is_floating_point() else tensor
        restored_bits = restored[key].view(torch.int32) if tensor.is_floating_point() else restored[key]
        assert torch.equal(restored_bits, as_bits)


def test_sign_and_exponent_plane_is_lzma_coded_and_decodes_bit_exact():
    state = {"w": torch.randn(100_000) * 0.05}  # trained-like weights: few exponents
    blob = pack_state(state, set(), "toy")
    header = read_header(blob, "toy.pt")
    assert header["planes"][-1][0] == "lzma"
    restored = unpack_state(blob, header, "toy.pt")["w"]
    assert torch.equal(restored.view(torch.int32), state["w"].view(torch.int32))


def test_lzma_is_not_tried_on_the_near_random_mantissa_planes(monkeypatch):
    coded = []
    monkeypatch.setattr(packed, "lzma_compress", lambda data: coded.append(len(data)) or lzma_compress(data))
    rng = np.random.default_rng(0)
    values = (rng.standard_normal(100_000) * 0.05).astype(np.float32)
    skew = np.full(256, 1.0)
    skew[0] += 0.03 * 256  # deflate shrinks the lowest plane by ~0.5%, as it did ResNet-50's trained weights
    values.view(np.uint8)[::4] = rng.choice(256, size=values.size, p=skew / skew.sum())
    packed.fp32_planes(values)
    assert coded == [100_000]  # the sign/exponent plane only


def test_packed_file_is_one_header_string_and_one_uint8_payload():
    blob = pack_state({"w": torch.randn(8, 8), "b": torch.randn(8)}, {"w"}, "toy")
    assert set(blob) == {"header", "payload"}
    assert isinstance(blob["header"], str) and json.loads(blob["header"])["model"] == "toy"
    assert blob["payload"].dtype == torch.uint8 and blob["payload"].dim() == 1


def test_a_flipped_payload_byte_fails_the_checksum():
    blob = pack_state({"w": torch.randn(8, 8)}, {"w"}, "toy")
    blob["payload"][5] ^= 0xFF
    with pytest.raises(ArtifactError, match="toy.pt.*checksum"):
        unpack_state(blob, read_header(blob, "toy.pt"), "toy.pt")


def test_a_header_that_is_not_json_is_an_artifact_error():
    with pytest.raises(ArtifactError, match="toy.pt: not a prunebench packed file"):
        read_header({"header": "{not json", "payload": torch.zeros(1, dtype=torch.uint8)}, "toy.pt")


def bits(tensor: torch.Tensor) -> torch.Tensor:
    """The bit patterns of an fp32 tensor (torch.equal calls -0.0 and +0.0 equal; these differ)."""
    return tensor.view(torch.int32)


def toy_state() -> dict[str, torch.Tensor]:
    """A pruned weight whose zeros are half -0.0 (as prune.remove leaves them), a bias with a -0.0, an int."""
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(30, 40, generator=generator)
    weight = torch.where(torch.rand(30, 40, generator=generator) < 0.9, weight * 0.0, weight)
    bias = torch.randn(30, generator=generator)
    bias[3] = -0.0
    return {"fc.weight": weight, "fc.bias": bias, "bn.num_batches_tracked": torch.tensor(12)}


def round_trip(blob: dict, source: str = "toy.pt") -> dict[str, torch.Tensor]:
    return unpack_state(blob, read_header(blob, source), source)


def test_pack_then_unpack_keeps_negative_zeros_bit_for_bit():
    state = toy_state()
    assert torch.signbit(state["fc.weight"][state["fc.weight"] == 0]).any()
    restored = round_trip(pack_state(state, {"fc.weight"}, "toy"))
    assert torch.equal(bits(restored["fc.weight"]), bits(state["fc.weight"]))
    assert torch.equal(bits(restored["fc.bias"]), bits(state["fc.bias"]))


def test_positive_zeros_cost_no_sign_section():
    state = toy_state()
    state["fc.weight"] = state["fc.weight"].masked_fill(state["fc.weight"] == 0, 0.0)
    assert json.loads(pack_state(state, {"fc.weight"}, "toy")["header"])["zero_signs"] == []


def test_a_file_of_another_format_version_is_refused_telling_to_re_export():
    blob = pack_state(toy_state(), {"fc.weight"}, "toy")
    blob["header"] = json.dumps({**json.loads(blob["header"]), "version": 1})
    with pytest.raises(ArtifactError, match=f"toy.pt: packed format version 1, this prunebench reads "
                                            f"{PACKED_VERSION}; re-export it"):
        read_header(blob, "toy.pt")


def replaced(value, *path) -> Callable[[dict], None]:
    """A corruption setting header[path[0]][path[1]]... to `value`."""
    def corrupt(header: dict) -> None:
        for step in path[:-1]:
            header = header[step]
        header[path[-1]] = value
    return corrupt


def swap_plane_lengths(header: dict) -> None:
    low, high = header["planes"][0], header["planes"][-1]  # a raw plane and a deflated one: lengths differ
    low[1], high[1] = high[1], low[1]


CORRUPTIONS = {
    "version is a string": replaced("2", "version"),
    "version is true": replaced(True, "version"),
    "model is not a string": replaced(7, "model"),
    "crc32 is a string": replaced("123", "crc32"),
    "crc32 is negative": replaced(-1, "crc32"),
    "crc32 is missing": lambda header: header.pop("crc32"),
    "tensors is not a list": replaced({"fc.weight": 1}, "tensors"),
    "tensor entry lacks a field": lambda header: header["tensors"][0].pop(),
    "tensor name is not a string": replaced(5, "tensors", 1, 0),
    "tensor name repeats": replaced("fc.weight", "tensors", 1, 0),
    "shape is a string": replaced("30x40", "tensors", 0, 1),
    "shape is negative": replaced([-30, -40], "tensors", 0, 1),
    "shape holds a float": replaced([30.0, 40], "tensors", 0, 1),
    "dtype is unknown": replaced("float16", "tensors", 1, 2),
    "dtype is not a string": replaced(["float32"], "tensors", 1, 2),
    "mask coding is unknown": replaced("zip", "tensors", 0, 3),
    "an int64 tensor claims a mask": replaced("bitmap", "tensors", 2, 3),
    "mask length is negative": replaced(-1, "tensors", 0, 4),
    "mask length is a string": replaced("12", "tensors", 0, 4),
    "mask length runs past the payload": replaced(10**9, "tensors", 0, 4),
    "dense tensor has a mask length": replaced(4, "tensors", 1, 4),
    "zero_signs is not a list": replaced("fc.weight", "zero_signs"),
    "zero_signs names an unmasked tensor": replaced("fc.bias", "zero_signs", 0, 0),
    "zero_signs length is negative": replaced(-5, "zero_signs", 0, 2),
    "three planes": lambda header: header["planes"].pop(),
    "plane codec is unknown": replaced("brotli", "planes", 0, 0),
    "plane length is a float": replaced(1.5, "planes", 0, 1),
    "plane lengths are swapped": swap_plane_lengths,
    "planes are missing": lambda header: header.pop("planes"),
}


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_a_malformed_header_field_is_an_artifact_error_naming_the_file(corrupt):
    blob = pack_state(toy_state(), {"fc.weight"}, "toy")
    header = json.loads(blob["header"])
    corrupt(header)
    blob["header"] = json.dumps(header)
    with pytest.raises(ArtifactError, match=r"^toy\.pt: ") as error:
        round_trip(blob)
    assert "\n" not in str(error.value)
