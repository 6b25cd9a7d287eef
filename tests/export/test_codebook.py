"""The codebook format: shared centroids per weight tensor, zeros kept, every stream checked on load."""

import json
import zlib

import numpy as np
import pytest
import torch

from export.codebook import (CODEBOOK_VERSION, MAX_BITS, codebook_blob, decode_codebook, kmeans_1d,
                             quantize_state, quantized_keys, read_codebook_header, share_state)
from export.exporter import fewest_codebook_bits
from export.loaders import load_torch_model
from export.packed import lzma_compress
from export.source import PrunedModel
from export.verify import EvalData, torch_logits
from prune.errors import ArtifactError
from prune.io import torch_save
from prune.models import build_model, example_input
from prune.pruning import make_permanent, prune_l1


@pytest.fixture(scope="module")
def pruned_lenet300():
    torch.manual_seed(0)
    return make_permanent(prune_l1(build_model("lenet300_100"), 90)).eval()


def test_kmeans_keeps_at_most_2_to_the_bits_centroids_and_maps_each_value_to_its_nearest():
    values = np.random.default_rng(0).normal(size=5000).astype(np.float32)
    centroids, index = kmeans_1d(values, 3)
    assert centroids.size <= 8 and np.all(np.diff(centroids) > 0)
    nearest = np.abs(values[:, None] - centroids[None, :]).argmin(axis=1)
    assert np.array_equal(index, nearest)


def test_codebook_round_trip_maps_each_weight_to_its_centroid_and_keeps_every_zero(tmp_path, pruned_lenet300):
    state, keys = pruned_lenet300.state_dict(), quantized_keys(pruned_lenet300)
    path = tmp_path / "codebook.pt"
    shares = share_state(state, keys, 4)
    torch_save(path, codebook_blob(state, shares, "lenet300_100"))
    loaded = load_torch_model(path, "lenet300_100").state_dict()
    expected = quantize_state(state, shares)
    for key in state:
        assert torch.equal(loaded[key], expected[key])
    for key in keys:
        assert torch.equal(loaded[key] == 0, state[key] == 0)
        assert loaded[key][state[key] != 0].unique().numel() <= 16
    assert "3.bias" not in keys and torch.equal(loaded["3.bias"], state["3.bias"])  # biases stay fp32


def test_the_classifier_shares_a_codebook_too(pruned_lenet300):
    assert quantized_keys(pruned_lenet300) == ["1.weight", "3.weight", "5.weight"]


def _tiny_blob(index: bytes, centroids: int = 2) -> dict:
    """A one-tensor codebook file whose index stream is `index` (crc made to match)."""
    payload = lzma_compress(np.packbits(np.ones(4, bool)).tobytes())
    mask_length = len(payload)
    payload += np.arange(centroids, dtype=np.float32).tobytes() + lzma_compress(index)
    plain = [["raw", 0]] * 4  # no plain fp32 values
    header = {"format": "prunebench-codebook", "version": CODEBOOK_VERSION, "model": "tiny", "bits": 1,
              "crc32": zlib.crc32(payload),
              "tensors": [["w", [4], "float32", "codebook", "bitmap", mask_length, centroids,
                           len(payload) - mask_length - 4 * centroids]], "planes": plain}
    return {"header": json.dumps(header), "payload": torch.frombuffer(bytearray(payload), dtype=torch.uint8)}


def test_a_well_formed_tiny_file_decodes():
    blob = _tiny_blob(bytes([0, 1, 1, 0]))
    state = decode_codebook(blob, read_codebook_header(blob, "tiny.pt"), "tiny.pt")
    assert state["w"].tolist() == [0.0, 1.0, 1.0, 0.0]


def test_an_index_outside_its_codebook_is_an_artifact_error_naming_the_file():
    blob = _tiny_blob(bytes([0, 1, 2, 0]))
    with pytest.raises(ArtifactError, match=r"bad\.pt: w holds index 2 outside its codebook of 2 centroids"):
        decode_codebook(blob, read_codebook_header(blob, "bad.pt"), "bad.pt")


def test_a_truncated_index_stream_is_an_artifact_error_naming_the_file():
    blob = _tiny_blob(bytes([0, 1, 1, 0]))
    header = json.loads(blob["header"])
    payload = blob["payload"].numpy().tobytes()[:-3]
    header["tensors"][0][-1] -= 3
    header["crc32"] = zlib.crc32(payload)
    cut = {"header": json.dumps(header), "payload": torch.frombuffer(bytearray(payload), dtype=torch.uint8)}
    with pytest.raises(ArtifactError, match=r"cut\.pt: corrupt codebook payload"):
        decode_codebook(cut, read_codebook_header(cut, "cut.pt"), "cut.pt")


def test_more_centroids_than_the_bits_allow_is_an_artifact_error():
    blob = _tiny_blob(bytes([0, 1, 2, 0]), centroids=3)
    with pytest.raises(ArtifactError, match=r"big\.pt: malformed codebook file \(tensors\[0\] is a codebook of 3"):
        read_codebook_header(blob, "big.pt")


def test_the_chosen_bits_are_the_fewest_that_agree_with_the_pruned_model(pruned_lenet300):
    x = example_input("lenet300_100", 64, 1)
    pruned = PrunedModel("lenet300_100", 90, None, torch_logits(pruned_lenet300, x), pruned_lenet300, ())
    data = EvalData(x, None, None, "no labels")
    bits = fewest_codebook_bits(pruned, data, tolerance=0.0)
    keys = quantized_keys(pruned_lenet300)

    def agrees(b: int) -> bool:
        shared = build_model("lenet300_100").eval()
        shared.load_state_dict(quantize_state(pruned_lenet300.state_dict(),
                                                 share_state(pruned_lenet300.state_dict(), keys, b)))
        return torch.equal(torch_logits(shared, x).argmax(1), pruned.reference.argmax(1))

    assert 1 <= bits <= MAX_BITS and agrees(bits)
    assert bits == 1 or not agrees(bits - 1)
