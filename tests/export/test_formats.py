"""Every format round-trips the pruned model; the sizes show what each format costs."""

import pytest
import torch

from export.formats import FORMATS, get_format
from export.loaders import load_torch_model
from export.manifest import read_manifest
from export.stage import artifact_dir
from export.verify import LOGITS, top1_accuracy
from prune.config import base_path, pruned_path
from prune.errors import UsageError
from prune.pruned_io import load_pruned_state
from prune.models import prunable_layers
from prune.pruning import masked_model

CASES = [("lenet300_100", 0), ("lenet300_100", 50), ("lenet300_100", 90), ("lenet300_100", 99),
         ("lenet5", 50), ("lenet5", 90), ("lenet5", 99)]


def sizes(exported, model, ratio) -> dict[str, int]:
    return {a["format"]: a["bytes"] for a in read_manifest(artifact_dir(exported, model, ratio))["artifacts"]}


def test_registry_holds_the_contracted_formats_and_file_names():
    assert {name: fmt.filename for name, fmt in FORMATS.items()} == {
        "masked": "masked.pt", "dense": "dense.pt", "sparse_coo": "sparse_coo.pt", "sparse_csr": "sparse_csr.pt",
        "packed": "packed.pt", "codebook": "codebook.pt", "onnx": "model.onnx", "onnx_sparse": "model.sparse.onnx",
        "onnx_int8": "model.int8.onnx"}


def test_unknown_format_is_a_usage_error_listing_the_valid_names():
    with pytest.raises(UsageError, match="unknown format 'zip'.*masked, dense"):
        get_format("zip")


def test_sparse_onnx_format_notes_that_onnxruntime_densifies_it():
    assert any("densifies" in note for note in FORMATS["onnx_sparse"].notes)


@pytest.mark.parametrize(("model", "ratio"), CASES)
@pytest.mark.parametrize("fmt", [name for name, fmt in FORMATS.items() if not fmt.lossy])
def test_every_lossless_format_reproduces_the_pruned_models_logits_and_accuracy(exported, images, model, ratio, fmt):
    state, _ = load_pruned_state(pruned_path(exported, model, ratio), base_path(exported, model))
    data = images(model)
    expected = LOGITS["torch"](masked_model(model, state), data.x)
    loaded = FORMATS[fmt].load(artifact_dir(exported, model, ratio) / FORMATS[fmt].filename, model)
    logits = LOGITS[FORMATS[fmt].kind](loaded, data.x)
    assert (logits - expected).abs().max().item() <= 1e-5
    assert top1_accuracy(logits, data.y) == top1_accuracy(expected, data.y)


def test_masked_state_dict_is_larger_than_the_permanent_one(exported):
    for model, ratio in CASES:
        found = sizes(exported, model, ratio)
        assert found["masked"] > 1.9 * found["dense"]


def test_sparse_coo_is_larger_than_dense_below_eighty_percent_sparsity(exported):
    assert sizes(exported, "lenet300_100", 0)["sparse_coo"] > sizes(exported, "lenet300_100", 0)["dense"]
    assert sizes(exported, "lenet300_100", 50)["sparse_coo"] > sizes(exported, "lenet300_100", 50)["dense"]
    assert sizes(exported, "lenet300_100", 90)["sparse_coo"] < sizes(exported, "lenet300_100", 90)["dense"]


def test_csr_is_smaller_than_coo_at_every_ratio(exported):
    for model, ratio in CASES:
        found = sizes(exported, model, ratio)
        assert found["sparse_csr"] < found["sparse_coo"]


@pytest.mark.parametrize(("model", "ratio"), [case for case in CASES if case[1] >= 50])
def test_packed_is_within_five_percent_of_the_fp32_reference(exported, model, ratio):
    manifest = read_manifest(artifact_dir(exported, model, ratio))
    packed = next(a for a in manifest["artifacts"] if a["format"] == "packed")
    assert packed["bytes"] <= 1.05 * manifest["fp32_ref_bytes"]


def bits(tensor: torch.Tensor) -> torch.Tensor:
    """The bit patterns of an fp32 tensor (torch.equal calls -0.0 and +0.0 equal; these differ)."""
    return tensor.view(torch.int32)


@pytest.mark.parametrize(("model", "ratio"), [("lenet5", 90), ("lenet300_100", 99)])
def test_packed_decodes_to_exactly_the_dense_bits(exported, model, ratio):
    directory = artifact_dir(exported, model, ratio)
    dense = load_torch_model(directory / "dense.pt", model).state_dict()
    packed = load_torch_model(directory / "packed.pt", model).state_dict()
    assert packed.keys() == dense.keys()
    assert all(torch.equal(bits(packed[key]), bits(tensor)) for key, tensor in dense.items())


def test_pruned_weights_are_exported_with_positive_zeros(exported):
    directory = artifact_dir(exported, "lenet300_100", 90)
    dense = load_torch_model(directory / "dense.pt", "lenet300_100")
    for _, module in prunable_layers(dense):
        zeros = module.weight[module.weight == 0]
        assert zeros.numel() > 0 and not torch.signbit(zeros).any()
