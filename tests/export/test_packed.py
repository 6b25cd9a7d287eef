"""The packed format: entropy-coded masks and bit-exact values in one payload tensor."""

import json

import numpy as np
import pytest
import torch

from export.reference_size import binary_entropy
from export.packed import decode_mask, encode_mask, gap_bytes, mask_from_gaps, pack_state, read_header, unpack_state
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
