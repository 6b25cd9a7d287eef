"""Model sources: torchvision builders, the user's file or module, each bad input as one UsageError line, the
input-shape check, registration for every process, and the identity a record states."""

import sys

import pytest
import torch
from torch import nn
from torchvision.models import MobileNetV3
from user_models import MODEL_FILE

from bench.harness.child import run_in_child
from prune import models
from prune.errors import UsageError
from prune.io import file_sha256
from prune.methods import get_method
from prune.models import ModelSpec, build_model, get_model_spec
from prune.sources import (ModelSource, build_source, check_input_shape, parse_input_shape, register_source,
                           resolve_source, source_identity, split_models)

SHAPE = (3, 8, 8)


@pytest.fixture
def net_file(tmp_path) -> str:
    """The path of a user file defining the tiny models of user_models.MODEL_FILE."""
    path = tmp_path / "nets.py"
    path.write_text(MODEL_FILE)
    return str(path)


@pytest.fixture
def net_module(tmp_path, monkeypatch) -> str:
    """The name of an importable package module holding the same tiny models."""
    package = tmp_path / "pkg" / "prunebench_test_nets"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "tiny.py").write_text(MODEL_FILE)
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    yield "prunebench_test_nets.tiny"
    for name in ("prunebench_test_nets.tiny", "prunebench_test_nets"):
        sys.modules.pop(name, None)


def _error(source: ModelSource) -> str:
    with pytest.raises(UsageError) as caught:
        resolve_source(source)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_torchvision_source_builds_the_builder_with_num_classes():
    model = build_source(ModelSource("torchvision:mobilenet_v3_small", (3, 32, 32), num_classes=7))
    assert isinstance(model, MobileNetV3)
    assert model.classifier[-1].out_features == 7


def test_file_source_calls_the_function_in_the_file(net_file):
    model = build_source(ModelSource(f"{net_file}:linear_head", SHAPE))
    assert isinstance(model[-1], nn.Linear) and model[-1].out_features == 5


def test_module_source_calls_the_function_of_the_module(net_module):
    model = build_source(ModelSource(f"{net_module}:late_probe", SHAPE))
    assert type(model).__name__ == "LateProbe"


def test_unknown_torchvision_builder_lists_close_names():
    message = _error(ModelSource("torchvision:mobilenet_v3_smal", SHAPE))
    assert "unknown torchvision builder 'mobilenet_v3_smal'; close names: mobilenet_v3_small" in message


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "absent.py"
    assert _error(ModelSource(f"{missing}:build", SHAPE)) == f"model '{missing}:build': no file {missing}"


def test_missing_function_is_named_with_close_names(net_file):
    message = _error(ModelSource(f"{net_file}:linear_heads", SHAPE))
    assert message.endswith(f"{net_file} defines no function 'linear_heads'; close names: linear_head")


def test_missing_module_is_named():
    message = _error(ModelSource("prunebench_no_such_module:build", SHAPE))
    assert "importing prunebench_no_such_module raised ModuleNotFoundError" in message


def test_function_that_raises_names_the_model_and_the_first_line(net_file):
    message = _error(ModelSource(f"{net_file}:raises", SHAPE))
    assert message == f"model '{net_file}:raises': raises() raised RuntimeError: the weights are elsewhere"


def test_function_returning_a_non_module_is_refused(net_file):
    message = _error(ModelSource(f"{net_file}:not_a_module", SHAPE))
    assert message.endswith("not_a_module() returned a int, not an nn.Module")


def test_source_without_a_function_shows_the_forms():
    with pytest.raises(UsageError, match="is not torchvision:<builder>, path/to/file.py:function"):
        ModelSource("mobilenet.py", SHAPE)


def test_input_shape_the_model_rejects_names_the_shape_and_the_error(net_file):
    message = _error(ModelSource(f"{net_file}:linear_head", (1, 8, 8)))
    assert message.startswith(f"model '{net_file}:linear_head' rejects input shape 1,8,8: RuntimeError: ")


def test_output_that_is_not_logits_is_refused(net_file):
    message = _error(ModelSource(f"{net_file}:feature_map", SHAPE))
    assert message.endswith("maps input shape 3,8,8 to [1, 5, 8, 8], not (batch, classes) logits")


def test_input_shape_check_returns_the_number_of_classes(net_file):
    source = ModelSource(f"{net_file}:conv_head", SHAPE)
    assert check_input_shape(build_source(source), source) == 5


@pytest.mark.parametrize("text", ["3,224", "3,0,8", "3,a,8", "1,2,3,4"])
def test_malformed_input_shape_is_a_usage_error(text):
    with pytest.raises(UsageError, match="is not C,H,W"):
        parse_input_shape(text)


def test_input_shape_parses_three_whole_numbers():
    assert parse_input_shape("3, 224,224") == (3, 224, 224)


def test_invalid_exclude_pattern_is_a_usage_error():
    with pytest.raises(UsageError, match=r"--exclude '\(' is not a regular expression"):
        ModelSource("torchvision:mobilenet_v3_small", SHAPE, exclude="(")


def test_exclude_that_keeps_every_layer_dense_is_refused(net_file):
    message = _error(ModelSource(f"{net_file}:linear_head", SHAPE, exclude="."))
    assert "has no Conv2d or Linear layer to prune besides its classifier '4'" in message


def test_resolved_spec_carries_shape_classes_classifier_and_source(net_file):
    spec = resolve_source(ModelSource(f"{net_file}:conv_head", SHAPE))
    assert (spec.input_shape, spec.num_classes, spec.classifier, spec.dataset) == (SHAPE, 5, "2", None)
    assert spec.source == spec.name == f"{net_file}:conv_head"
    assert [name for name, _ in spec.prunable_layers(spec.build())] == ["0"]


def test_registered_source_is_found_by_name(net_file):
    spec = register_source(ModelSource(f"{net_file}:linear_head", SHAPE))
    assert get_model_spec(f"{net_file}:linear_head") is spec


def test_same_source_registered_with_another_shape_is_a_usage_error(net_file):
    register_source(ModelSource(f"{net_file}:linear_head", SHAPE))
    with pytest.raises(UsageError, match="given twice with different input shapes"):
        register_source(ModelSource(f"{net_file}:linear_head", (3, 16, 16)))


def _prunable_in_child(spec: ModelSpec) -> list[str]:
    """What a measurement child does with the spec it is sent: add it, then build the model by name."""
    models.add_resolved(spec)
    return [name for name, _ in get_model_spec(spec.name).prunable_layers(build_model(spec.name))]


def test_a_fresh_child_process_rebuilds_the_model_from_the_spec_it_is_sent(net_file):
    spec = resolve_source(ModelSource(f"{net_file}:late_probe", SHAPE))
    result = run_in_child(_prunable_in_child, spec, timeout=120)
    assert result.ok, result.error
    assert result.value == ["features", "probe"]


def test_identity_names_the_source_its_file_the_checkpoint_and_the_shape(net_file, tmp_path):
    checkpoint = tmp_path / "weights.pt"
    torch.save(build_source(ModelSource(f"{net_file}:linear_head", SHAPE)).state_dict(), checkpoint)
    identity = source_identity(ModelSource(f"{net_file}:linear_head", SHAPE), checkpoint)
    assert identity == {"source": f"{net_file}:linear_head", "kind": "file",
                        "source_sha256": file_sha256(net_file),
                        "checkpoint": str(checkpoint), "checkpoint_sha256": file_sha256(checkpoint),
                        "input_shape": [3, 8, 8], "data": None, "data_sha256": None}


def test_identity_of_a_torchvision_source_without_checkpoint_has_no_hashes():
    identity = source_identity(ModelSource("torchvision:resnet18", (3, 32, 32)))
    assert identity["kind"] == "torchvision"
    assert identity["source_sha256"] is None and identity["checkpoint_sha256"] is None


def test_l1_structured_keeps_the_outputs_of_the_layers_exclude_keeps_dense(net_file):
    kept = register_source(ModelSource(f"{net_file}:wide", SHAPE, exclude="^0$")).name
    method = get_method("l1-structured")
    assert method.prune(build_model(kept).eval(), 50, 0, kept)[0].out_channels == 8
    models.RESOLVED.clear()
    plain = register_source(ModelSource(f"{net_file}:wide", SHAPE)).name
    assert method.prune(build_model(plain).eval(), 50, 0, plain)[0].out_channels == 4


def test_models_are_split_at_commas_and_spaces_each_once():
    assert split_models("lenet5,torchvision:resnet18 lenet5,,nets.py:build") == (
        "lenet5", "torchvision:resnet18", "nets.py:build")


@pytest.mark.parametrize("folder", ["my,nets", "my nets"])
def test_a_file_source_whose_path_holds_a_separator_is_a_usage_error_naming_it(tmp_path, folder):
    (tmp_path / folder).mkdir()
    (tmp_path / folder / "nets.py").write_text(MODEL_FILE)
    model = f"{tmp_path / folder / 'nets.py'}:linear_head"
    with pytest.raises(UsageError, match="its path holds a comma or space") as error:
        split_models(f"lenet5,{model}")
    assert str(error.value).startswith(f"model {model!r}:")
