"""Where a model's outputs live under --out: a model source becomes one safe directory name, never a path."""

from pathlib import Path

import pytest

from prune.config import STUDY, RunConfig, Variant, checkpoint_path, pruned_path, safe_dirname, sweep_path
from prune.errors import UsageError

OUT = Path("/runs/out")


@pytest.mark.parametrize(("name", "safe"), [
    ("torchvision:mobilenet_v3_small", "torchvision-mobilenet_v3_small"),
    ("lenet5", "lenet5"),
    ("nets/tiny.py:build", "nets-tiny.py-build"),
    ("../../etc/passwd.py:f", "etc-passwd.py-f"),
    ("/abs/dir/net.py:build", "abs-dir-net.py-build"),
    ("C:\\models\\a..b.py:f", "C-models-a.b.py-f"),
    ("pkg.mod:make net", "pkg.mod-make-net"),
])
def test_safe_dirname_has_no_separators_parent_steps_or_leading_dots(name, safe):
    assert safe_dirname(name) == safe


def test_safe_dirname_of_nothing_usable_is_a_usage_error():
    with pytest.raises(UsageError, match="gives no directory name"):
        safe_dirname("../..:/")


@pytest.mark.parametrize("model", ["../../x.py:build", "/etc/nets.py:build", "torchvision:resnet50"])
def test_every_output_path_of_a_model_source_stays_one_level_below_its_folder(model):
    variant = Variant("global-l1", "bn")
    paths = [checkpoint_path(OUT, model), sweep_path(OUT, model), sweep_path(OUT, model, variant),
             pruned_path(OUT, model, 50), pruned_path(OUT, model, 50, variant)]
    for path in paths:
        assert ".." not in path.parts and path.is_relative_to(OUT)
        assert path.relative_to(OUT).parts[1] == safe_dirname(model) or path.stem == safe_dirname(model)


def test_registry_models_keep_their_paths():
    assert checkpoint_path(OUT, "lenet5") == OUT / "checkpoints" / "lenet5.pt"
    assert sweep_path(OUT, "resnet18", STUDY) == OUT / "sweep" / "resnet18.json"
    assert pruned_path(OUT, "lenet5", 90) == OUT / "pruned" / "lenet5" / "r90.pt"


def test_two_sources_with_the_same_safe_name_are_a_usage_error(tmp_path):
    (tmp_path / "a").mkdir()
    for path in (tmp_path / "a" / "b.py", tmp_path / "a-b.py"):
        path.write_text("from torch import nn\n\n\ndef build():\n    return nn.Sequential(nn.Flatten(), "
                        "nn.Linear(12, 4), nn.Linear(4, 2))\n")
    sources = (f"{tmp_path}/a/b.py:build", f"{tmp_path}/a-b.py:build")
    with pytest.raises(UsageError, match="would both write under"):
        RunConfig(models=sources, input_shape=(3, 2, 2), out=tmp_path / "out")
