"""The pruned model's accuracy in a manifest: prune's figure when prune tested the same images, else export's own."""

import json

import torch

from export.exporter import export_one
from export.formats import FORMATS
from export.verify import top1_accuracy, torch_logits
from prune.config import sweep_path
from prune.models import build_model
from prune.pruning import prune_l1

PRUNE_FIGURE = 12.5  # no seeded LeNet-5 reaches it on the test images: only the sweep can have said it


def write_sweep(out, model, ratio, source, test_size):
    """A sweep file recording PRUNE_FIGURE for `ratio`, tested on `test_size` images of `source`."""
    path = sweep_path(out, model)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"dataset": {"source": source, "train_size": 0, "test_size": test_size},
                                "records": [{"ratio": ratio, "accuracy": PRUNE_FIGURE}]}))


def lossless_accuracies(manifest):
    return {a["accuracy"] for a in manifest["artifacts"] if not FORMATS[a["format"]].lossy}


def test_export_takes_prunes_accuracy_when_prune_tested_the_same_images(tmp_path, write_pruned, images):
    data = images("lenet5")
    write_pruned(tmp_path, "lenet5", 90)
    write_sweep(tmp_path, "lenet5", 90, data.source, len(data.y))
    manifest, _ = export_one(tmp_path, "lenet5", 90, data)
    assert manifest["accuracy"] == PRUNE_FIGURE
    assert lossless_accuracies(manifest) == {PRUNE_FIGURE}


def test_export_tests_the_pruned_model_itself_when_prune_tested_other_images(tmp_path, write_pruned, images):
    data = images("lenet5")
    write_pruned(tmp_path, "lenet5", 90)
    write_sweep(tmp_path, "lenet5", 90, data.source, len(data.y) + 1)
    manifest, _ = export_one(tmp_path, "lenet5", 90, data)
    torch.manual_seed(0)
    expected = top1_accuracy(torch_logits(prune_l1(build_model("lenet5"), 90).eval(), data.x), data.y)
    assert manifest["accuracy"] == expected != PRUNE_FIGURE
    assert lossless_accuracies(manifest) == {expected}
