"""Export of a structured method's model: a smaller dense model in the dense formats only, reproducing its logits."""

import pytest
import torch

from export.exporter import artifact_dir, export_one
from export.formats import formats_for
from export.loaders import load_torch_model, onnx_session
from export.manifest import artifact_entry
from export.verify import onnx_logits, torch_logits
from prune.config import Variant, pruned_path
from prune.errors import ArtifactError
from prune.io import save_checkpoint
from prune.methods import get_method
from prune.models import build_model, parameter_count

STRUCTURED = Variant("l1-structured", "none")


@pytest.fixture(scope="module")
def structured_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return get_method("l1-structured").prune(build_model("lenet5").eval(), 50, 0, "lenet5").eval()


@pytest.fixture
def structured_export(tmp_path, structured_model, images) -> tuple:
    """lenet5 at 50% l1-structured, saved where the sweep writes it and exported; (out, manifest)."""
    save_checkpoint(pruned_path(tmp_path, "lenet5", 50, STRUCTURED), structured_model.state_dict(),
                    {"model": "lenet5", "ratio": 50, "method": STRUCTURED.method, "recovery": STRUCTURED.recovery})
    manifest, skipped = export_one(tmp_path, "lenet5", 50, images("lenet5"), STRUCTURED)
    assert not skipped
    return tmp_path, manifest


def test_a_structured_model_gets_the_dense_formats_only(structured_export):
    _, manifest = structured_export
    assert [a["format"] for a in manifest["artifacts"]] == formats_for(sparse=False) == [
        "dense", "packed", "codebook", "onnx", "onnx_int8"]
    assert manifest["structured"] is True
    assert (manifest["method"], manifest["recovery"]) == (STRUCTURED.method, STRUCTURED.recovery)


def test_a_structured_model_is_really_smaller_in_parameters_macs_and_bytes(structured_export, artifact):
    out, manifest = structured_export
    dense_parameters = parameter_count(build_model("lenet5"))
    assert manifest["parameters"] < 0.3 * dense_parameters
    dense_file = artifact("lenet5", 50, "dense.pt").stat().st_size
    assert artifact_entry(manifest, "dense")["bytes"] < 0.3 * dense_file
    assert manifest["macs"] < 0.3 * 2_293_000  # lenet5's dense MACs: 0.29M + 1.6M + 0.4M + 5k


@pytest.mark.parametrize("filename", ["dense.pt", "packed.pt"])
def test_structured_torch_artifacts_reload_narrow_and_reproduce_the_logits(structured_export, structured_model,
                                                                           images, filename):
    out, _ = structured_export
    loaded = load_torch_model(artifact_dir(out, "lenet5", 50, STRUCTURED) / filename, "lenet5")
    assert parameter_count(loaded) == parameter_count(structured_model)
    x = images("lenet5").x[:32]
    assert torch.equal(torch_logits(loaded, x), torch_logits(structured_model, x))


def test_structured_onnx_reproduces_the_logits(structured_export, structured_model, images):
    out, _ = structured_export
    session = onnx_session(artifact_dir(out, "lenet5", 50, STRUCTURED) / "model.onnx", model_name="lenet5")
    x = images("lenet5").x[:32]
    assert torch.allclose(onnx_logits(session, x), torch_logits(structured_model, x), atol=1e-4)


def test_a_state_whose_widths_do_not_chain_is_an_artifact_error_naming_the_file(tmp_path, structured_model):
    state = structured_model.state_dict()
    first_linear = next(key for key, t in state.items() if key.endswith("weight") and t.dim() == 2)
    state[first_linear] = state[first_linear][:, :-1].contiguous()  # one input fewer than the conv gives
    path = tmp_path / "dense.pt"
    torch.save(state, path)
    with pytest.raises(ArtifactError, match=f"{path}: .*does not fit the widths around it"):
        load_torch_model(path, "lenet5")
