"""The fp32 reference: mask entropy plus 4 bytes per surviving or unpruned float."""

import math

import pytest
import torch

from export.reference_size import binary_entropy, fp32_reference_bytes


def test_binary_entropy_is_one_bit_at_half_and_zero_at_the_ends():
    assert binary_entropy(0.5) == pytest.approx(1.0)
    assert binary_entropy(0.0) == 0.0
    assert binary_entropy(1.0) == 0.0
    assert binary_entropy(0.1) == pytest.approx(binary_entropy(0.9))


def test_reference_counts_mask_entropy_values_and_other_floats_but_not_integer_buffers():
    state = {
        "conv.weight": torch.tensor([0.0, 1.0, 0.0, 2.0, 0.0, 3.0, 0.0, 4.0]),  # 4 zeros of 8: 8 bits of mask
        "conv.bias": torch.ones(3),
        "bn.num_batches_tracked": torch.tensor(7),
    }
    assert fp32_reference_bytes(state, ["conv.weight"]) == 1 + 4 * 4 + 3 * 4


def test_reference_of_a_dense_tensor_is_four_bytes_per_element():
    state = {"fc.weight": torch.randn(10, 10)}
    assert fp32_reference_bytes(state, ["fc.weight"]) == 400


def test_reference_rounds_fractional_bits_up():
    weight = torch.zeros(10)
    weight[0] = 1.0
    expected = math.ceil((10 * binary_entropy(0.9) + 32) / 8)
    assert fp32_reference_bytes({"w": weight}, ["w"]) == expected
