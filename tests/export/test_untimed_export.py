"""Cells whose latency is not timed keep sizes and checks but not files; other variants get no sparse formats."""

import torch

from export.exporter import artifact_dir, export_one
from export.formats import FORMATS, formats_for
from export.manifest import is_current, read_manifest, remove_measured
from prune.config import Variant, pruned_path
from prune.io import save_checkpoint
from prune.models import build_model
from prune.pruning import prune_l1

GLOBAL = Variant("global-l1", "none")


def test_an_untimed_cell_is_sized_and_checked_then_keeps_only_its_manifest(tmp_path, write_pruned, images):
    write_pruned(tmp_path, "lenet5", 90)
    manifest, _ = export_one(tmp_path, "lenet5", 90, images("lenet5"), timed=False)
    assert {p.name for p in artifact_dir(tmp_path, "lenet5", 90).iterdir()} == {"manifest.json"}
    assert [a["format"] for a in manifest["artifacts"]] == formats_for(sparse=True, lossy=False)
    assert all(not a["kept"] and a["bytes"] > 0 for a in manifest["artifacts"])


def test_an_untimed_cell_gets_no_lossy_format_so_no_pass_over_the_test_images(tmp_path, write_pruned, images):
    write_pruned(tmp_path, "lenet5", 90)
    manifest, _ = export_one(tmp_path, "lenet5", 90, images("lenet5"), timed=False)
    lossy = {name for name, fmt in FORMATS.items() if fmt.lossy}
    assert lossy == {"codebook", "onnx_int8"}
    assert lossy.isdisjoint(a["format"] for a in manifest["artifacts"])
    assert manifest["lossy_formats"] is False and manifest["codebook_bits"] is None


def test_an_untimed_cell_is_current_until_a_run_wants_it_timed_then_its_files_are_written(tmp_path, write_pruned,
                                                                                         images):
    write_pruned(tmp_path, "lenet5", 90)
    first, _ = export_one(tmp_path, "lenet5", 90, images("lenet5"), timed=False)
    _, skipped = export_one(tmp_path, "lenet5", 90, images("lenet5"), timed=False)
    assert skipped
    manifest, skipped = export_one(tmp_path, "lenet5", 90, images("lenet5"), timed=True)
    assert not skipped and all(a["kept"] for a in manifest["artifacts"])
    assert [a["format"] for a in manifest["artifacts"]] == list(FORMATS)
    sizes = {a["format"]: a["bytes"] for a in manifest["artifacts"]}
    assert {a["format"]: a["bytes"] for a in first["artifacts"]} == {f: sizes[f] for f in sizes if not FORMATS[f].lossy}
    assert is_current(artifact_dir(tmp_path, "lenet5", 90), manifest["source"]["sha256"], timed=True)


def test_an_untimed_cell_is_current_with_the_lossy_formats_a_timed_run_wrote(tmp_path, write_pruned, images):
    write_pruned(tmp_path, "lenet5", 90)
    manifest, _ = export_one(tmp_path, "lenet5", 90, images("lenet5"))
    _, skipped = export_one(tmp_path, "lenet5", 90, images("lenet5"), timed=False)
    assert skipped and is_current(artifact_dir(tmp_path, "lenet5", 90), manifest["source"]["sha256"], timed=False)


def test_another_method_is_exported_dense_packed_shared_and_int8_without_the_sparse_formats(tmp_path, images):
    torch.manual_seed(0)
    module = prune_l1(build_model("lenet5"), 90)
    save_checkpoint(pruned_path(tmp_path, "lenet5", 90, GLOBAL), module.state_dict(),
                    {"model": "lenet5", "ratio": 90, "method": GLOBAL.method, "recovery": GLOBAL.recovery})
    manifest, _ = export_one(tmp_path, "lenet5", 90, images("lenet5"), GLOBAL)
    assert [a["format"] for a in manifest["artifacts"]] == formats_for(sparse=False) == [
        "dense", "packed", "codebook", "onnx", "onnx_int8"]
    assert manifest["sparse_formats"] is False and manifest["structured"] is False


def test_a_timed_cell_whose_files_measure_removed_is_current_until_a_run_wants_them_kept(tmp_path, write_pruned,
                                                                                        images):
    write_pruned(tmp_path, "lenet5", 90)
    manifest, _ = export_one(tmp_path, "lenet5", 90, images("lenet5"))
    directory = artifact_dir(tmp_path, "lenet5", 90)
    written, freed = remove_measured(directory, ("masked", "dense"))
    assert written == read_manifest(directory)
    assert freed == sum(a["bytes"] for a in manifest["artifacts"] if a["format"] in ("masked", "dense"))
    assert not (directory / "dense.pt").exists() and (directory / "packed.pt").exists()
    assert is_current(directory, manifest["source"]["sha256"], timed=True)
    assert not is_current(directory, manifest["source"]["sha256"], timed=True, keep=True)
