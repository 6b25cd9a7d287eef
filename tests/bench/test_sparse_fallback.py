"""torch-sparse and torch-auto on a model source with a depthwise convolution: the layer no CSR form computes
runs dense from the file's densified weight, the others as CSR, and the logits are the pruned model's."""

import pytest
import torch
from torch import nn

from bench.runtimes import csr_layer_names, sparse_module
from bench.runtimes.sparse_ops import CsrConv2d, CsrLinear
from export.sparse import sparse_file
from prune import models
from prune.pruning import make_permanent, prune_l1
from prune.sources import ModelSource, register_source

NET = '''
from torch import nn


def build():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, groups=8),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 8), nn.ReLU(),
                         nn.Linear(8, 4))
'''


@pytest.fixture
def source(tmp_path) -> str:
    """A registered model source whose second convolution is depthwise."""
    path = tmp_path / "depthwise_net.py"
    path.write_text(NET)
    return register_source(ModelSource(f"{path}:build", (3, 8, 8))).name


def test_only_the_layers_a_csr_form_computes_are_auto_candidates(source):
    assert csr_layer_names(source) == ["0", "6"]


def test_a_depthwise_conv_runs_dense_and_the_model_gives_the_pruned_logits(source):
    torch.manual_seed(0)
    pruned = make_permanent(prune_l1(models.build_model(source), 50, source), source).eval()
    pruned_keys = {f"{name}.weight" for name, _ in models.arch_layers(pruned, source)}
    state = sparse_file(pruned.state_dict(), pruned_keys, "sparse_csr", source)["state"]
    assert state["2.weight"].layout == torch.sparse_csr  # the file keeps the depthwise weight sparse
    module = sparse_module(state, source)
    assert [type(module[i]) for i in (0, 2, 6, 8)] == [CsrConv2d, nn.Conv2d, CsrLinear, nn.Linear]
    x = torch.randn(2, 3, 8, 8)
    with torch.inference_mode():
        assert torch.allclose(module(x), pruned(x), atol=1e-5)
