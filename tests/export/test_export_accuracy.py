"""The pruned model's accuracy in a manifest: prune's figure when prune tested the same images, else export's own."""

import json

import torch

from export.exporter import export_one
from export.formats import FORMATS
from export.verify import top1_accuracy, torch_logits
from prune.config import sweep_path
from prune.io import file_sha256
from prune.models import build_model
from prune.pruning import prune_l1

PRUNE_FIGURE = 12.5  # no seeded LeNet-5 reaches it on the test images: only the sweep can have said it


def write_sweep(out, model, ratio, checkpoint, source, test_size):
    """A sweep file recording PRUNE_FIGURE for the `checkpoint` at `ratio`, tested on `test_size` images of
    `source`."""
    path = sweep_path(out, model)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"ratio": ratio, "accuracy": PRUNE_FIGURE, "sha256": file_sha256(checkpoint)}
    path.write_text(json.dumps({"dataset": {"source": source, "train_size": 0, "test_size": test_size},
                                "records": [record]}))


def own_accuracy(data):
    """The accuracy of the seeded pruned LeNet-5 that write_pruned saves, over `data`."""
    torch.manual_seed(0)
    return top1_accuracy(torch_logits(prune_l1(build_model("lenet5"), 90).eval(), data.x), data.y)


def lossless_accuracies(manifest):
    return {a["accuracy"] for a in manifest["artifacts"] if not FORMATS[a["format"]].lossy}


def test_export_takes_prunes_accuracy_when_prune_tested_the_same_checkpoint_on_the_same_images(tmp_path, write_pruned,
                                                                                                images):
    data = images("lenet5")
    checkpoint = write_pruned(tmp_path, "lenet5", 90)
    write_sweep(tmp_path, "lenet5", 90, checkpoint, data.source, len(data.y))
    manifest, _ = export_one(tmp_path, "lenet5", 90, data)
    assert manifest["accuracy"] == PRUNE_FIGURE
    assert lossless_accuracies(manifest) == {PRUNE_FIGURE}


def test_export_tests_the_pruned_model_itself_when_prune_tested_other_images(tmp_path, write_pruned, images):
    data = images("lenet5")
    checkpoint = write_pruned(tmp_path, "lenet5", 90)
    write_sweep(tmp_path, "lenet5", 90, checkpoint, data.source, len(data.y) + 1)
    manifest, _ = export_one(tmp_path, "lenet5", 90, data)
    assert manifest["accuracy"] == own_accuracy(data) != PRUNE_FIGURE
    assert lossless_accuracies(manifest) == {own_accuracy(data)}


def test_export_tests_the_pruned_model_itself_when_the_sweep_recorded_another_checkpoint(tmp_path, write_pruned,
                                                                                        images):
    data = images("lenet5")
    earlier = write_pruned(tmp_path, "lenet5", 90, seed=1)
    write_sweep(tmp_path, "lenet5", 90, earlier, data.source, len(data.y))
    write_pruned(tmp_path, "lenet5", 90)  # a prune stopped after saving the checkpoint, before its sweep record
    manifest, _ = export_one(tmp_path, "lenet5", 90, data)
    assert manifest["accuracy"] == own_accuracy(data) != PRUNE_FIGURE
