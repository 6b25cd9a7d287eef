"""Loaders refuse truncated, corrupt, foreign, tampered and lying files with one line naming the file."""

import json
import shutil

import pytest
import torch

from export.formats import FORMATS
from export.loaders import load_torch_model, onnx_session, read_sparse_weights
from export.manifest import artifact_entry, read_manifest
from prune.errors import ArtifactError
from prune.pruning import global_sparsity

TORCH_FILES = [fmt.filename for fmt in FORMATS.values() if fmt.kind == "torch"]
ONNX_FILES = [fmt.filename for fmt in FORMATS.values() if fmt.kind == "onnx"]
ALL_FILES = TORCH_FILES + ONNX_FILES


def load(path, model="lenet5", sha256=None):
    """Load any artifact through the loader its format registers."""
    fmt = next(f for f in FORMATS.values() if f.filename == path.name)
    return fmt.load(path, model, sha256=sha256)


def copy(artifact, tmp_path, filename, model="lenet5", ratio=90):
    target = tmp_path / filename
    shutil.copy(artifact(model, ratio, filename), target)
    return target


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_masked_file_loads_as_a_masked_module_and_the_others_as_dense_modules(artifact):
    masked = load_torch_model(artifact("lenet5", 90, "masked.pt"), "lenet5")
    dense = load_torch_model(artifact("lenet5", 90, "dense.pt"), "lenet5")
    assert hasattr(masked[0], "weight_orig") and hasattr(masked[0], "weight_mask")
    assert not hasattr(dense[0], "weight_orig")


def test_masked_module_reports_its_sparsity_before_any_forward(artifact):
    masked = load_torch_model(artifact("lenet5", 90, "masked.pt"), "lenet5")
    assert global_sparsity(masked) == pytest.approx(90.0)


def test_read_sparse_weights_gives_int32_csr_matrices_for_pruned_weights(artifact):
    weights = read_sparse_weights(artifact("lenet5", 90, "sparse_csr.pt"), "lenet5")
    conv = weights["2.weight"]
    assert conv.layout == torch.sparse_csr and conv.shape == (50, 20 * 5 * 5)
    assert conv.crow_indices().dtype == torch.int32
    assert weights["2.bias"].layout == torch.strided
    assert weights["7.weight"].layout == torch.strided  # the classifier is not pruned


@pytest.mark.parametrize("filename", ALL_FILES)
def test_truncated_file_is_an_artifact_error_naming_it(artifact, tmp_path, filename):
    path = copy(artifact, tmp_path, filename)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ArtifactError) as error:
        load(path)
    assert one_line(error).startswith(str(path))


@pytest.mark.parametrize("filename", ALL_FILES)
def test_file_of_another_architecture_is_an_artifact_error_naming_it(artifact, tmp_path, filename):
    path = copy(artifact, tmp_path, filename, model="lenet300_100")
    with pytest.raises(ArtifactError) as error:
        load(path, model="lenet5")
    assert one_line(error).startswith(str(path))


@pytest.mark.parametrize("filename", ALL_FILES)
def test_file_of_random_bytes_is_an_artifact_error_naming_it(tmp_path, filename):
    path = tmp_path / filename
    path.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(ArtifactError) as error:
        load(path)
    assert one_line(error).startswith(str(path))


@pytest.mark.parametrize("filename", ALL_FILES)
def test_missing_file_is_an_artifact_error_naming_it(tmp_path, filename):
    with pytest.raises(ArtifactError, match="no such file") as error:
        load(tmp_path / filename)
    assert one_line(error).startswith(str(tmp_path / filename))


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_file_whose_sha256_differs_from_the_manifest_is_an_artifact_error(artifact, tmp_path, fmt):
    path = copy(artifact, tmp_path, FORMATS[fmt].filename)
    recorded = artifact_entry(read_manifest(artifact_dir_of(artifact)), fmt)["sha256"]
    load(path, sha256=recorded)  # the untouched copy matches its manifest entry
    with pytest.raises(ArtifactError, match="differs from the manifest") as error:
        load(path, sha256="0" * 64)
    assert one_line(error).startswith(str(path))


def test_packed_file_with_a_flipped_payload_byte_is_an_artifact_error(artifact, tmp_path):
    blob = torch.load(artifact("lenet5", 90, "packed.pt"), weights_only=True)
    blob["payload"][len(blob["payload"]) // 2] ^= 0x01
    path = tmp_path / "packed.pt"
    torch.save(blob, path)
    with pytest.raises(ArtifactError, match="checksum mismatch") as error:
        load_torch_model(path, "lenet5")
    assert one_line(error).startswith(str(path))


def rewritten(artifact, tmp_path, filename: str, change) -> object:
    """A copy of lenet5 r90's `filename` in tmp_path after `change(blob)` edited its loaded content."""
    blob = torch.load(artifact("lenet5", 90, filename), weights_only=True)
    change(blob)
    path = tmp_path / filename
    torch.save(blob, path)
    return path


@pytest.mark.parametrize(("filename", "key", "dtype"), [
    ("dense.pt", "0.weight", torch.float64), ("dense.pt", "0.bias", torch.int64),
    ("dense.pt", "5.weight", torch.float16), ("masked.pt", "0.weight_orig", torch.float64),
    ("masked.pt", "0.weight_mask", torch.bool)])
def test_state_tensor_of_another_dtype_is_an_artifact_error_naming_file_and_key(artifact, tmp_path, filename,
                                                                              key, dtype):
    path = rewritten(artifact, tmp_path, filename, lambda blob: blob.update({key: blob[key].to(dtype)}))
    with pytest.raises(ArtifactError, match=f"{key} is {dtype}, lenet5 holds torch.float32") as error:
        load_torch_model(path, "lenet5")
    assert one_line(error).startswith(str(path))


@pytest.mark.parametrize("value", [0.5, 2.0, -1.0, float("nan")])
def test_mask_holding_a_value_other_than_0_or_1_is_an_artifact_error(artifact, tmp_path, value):
    def set_one_mask_value(blob):
        blob["2.weight_mask"].view(-1)[7] = value

    path = rewritten(artifact, tmp_path, "masked.pt", set_one_mask_value)
    with pytest.raises(ArtifactError, match="2.weight_mask holds values other than 0 and 1") as error:
        load_torch_model(path, "lenet5")
    assert one_line(error).startswith(str(path))


def test_packed_file_with_a_malformed_header_is_an_artifact_error_naming_it(artifact, tmp_path):
    def negative_length(blob):
        header = json.loads(blob["header"])
        header["tensors"][0][4] = -1
        blob["header"] = json.dumps(header)

    path = rewritten(artifact, tmp_path, "packed.pt", negative_length)
    with pytest.raises(ArtifactError, match=r"malformed packed header \(tensors\[0\] length -1") as error:
        load_torch_model(path, "lenet5")
    assert one_line(error).startswith(str(path))


@pytest.mark.filterwarnings("ignore:Validating sparse tensor invariants")
@pytest.mark.parametrize("filename", ["sparse_coo.pt", "sparse_csr.pt"])
def test_sparse_tensor_declaring_a_shape_the_model_lacks_is_rejected_before_densifying(artifact, tmp_path,
                                                                                      filename):
    blob = torch.load(artifact("lenet300_100", 90, filename), weights_only=True)
    honest = blob["state"]["1.weight"]  # (300, 784)
    if honest.layout == torch.sparse_csr:
        crow = torch.cat([honest.crow_indices(), honest.crow_indices()[-1:].repeat(300)])
        lie = torch.sparse_csr_tensor(crow, honest.col_indices(), honest.values(), (600, 784))
    else:
        lie = torch.sparse_coo_tensor(honest.indices(), honest.values(), (600, 784)).coalesce()
    blob["state"]["1.weight"] = lie  # valid index invariants, so torch.load accepts it
    path = tmp_path / filename
    torch.save(blob, path)
    for reader in (read_sparse_weights, load_torch_model):
        with pytest.raises(ArtifactError, match=r"1.weight .*shape \(600, 784\), expected \(300, 784\)") as error:
            reader(path, "lenet300_100")
        assert one_line(error).startswith(str(path))


def test_onnx_session_checks_the_architecture_recorded_in_the_graph(artifact):
    with pytest.raises(ArtifactError, match="exported from model 'lenet5', not lenet300_100"):
        onnx_session(artifact("lenet5", 90, "model.onnx"), model_name="lenet300_100")


def artifact_dir_of(artifact):
    return artifact("lenet5", 90, "manifest.json").parent
