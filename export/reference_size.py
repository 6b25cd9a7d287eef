"""The fp32 reference size: mask entropy plus fp32 values, what a lossless format costs if values stay 32-bit.

For a pruned tensor of n weights with z zeros, naming which positions are zero costs n * H2(z / n) bits when the
positions are independent (H2 the binary entropy), and each surviving value is charged its full 32 bits. It is
not a lower bound: real weight values compress below 32 bits, so a lossless format can land under it. Every other
floating-point parameter or buffer (biases, BatchNorm affine and running statistics, the classifier) costs 32 bits
per element. Integer bookkeeping buffers (BatchNorm's num_batches_tracked) hold no weights and are left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch


def binary_entropy(p: float) -> float:
    """H2(p) in bits: the entropy of a coin that lands heads with probability p."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def fp32_reference_bytes(state: Mapping[str, torch.Tensor], pruned: Iterable[str]) -> int:
    """Reference size in bytes for a permanent (zeros in place) state_dict whose `pruned` keys are the pruned weights."""
    pruned = set(pruned)
    bits = 0.0
    for key, tensor in state.items():
        if key in pruned:
            n = tensor.numel()
            nonzero = int(torch.count_nonzero(tensor))
            bits += n * binary_entropy((n - nonzero) / n) + 32 * nonzero
        elif tensor.is_floating_point():
            bits += 32 * tensor.numel()
    return math.ceil(bits / 8)
