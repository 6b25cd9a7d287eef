"""manifest.json: the contracted fields, true sizes and hashes, validation, and resume on rerun."""

import gzip
import hashlib
import json
import os

import pytest

from export.exporter import export_one
from export.formats import FORMATS
from export.manifest import read_manifest
from export.packed import PACKED_VERSION
from export.stage import artifact_dir
from prune.errors import ArtifactError

ARTIFACT_FIELDS = {"format", "file", "bytes", "gzip_bytes", "gzip_note", "sha256", "sparsity", "max_abs_diff",
                   "accuracy", "kept", "removed_by"}


def test_manifest_has_the_contracted_fields(exported):
    manifest = read_manifest(artifact_dir(exported, "lenet300_100", 90))
    assert {"model", "ratio", "sparsity", "fp32_ref_bytes", "source", "artifacts"} <= manifest.keys()
    assert manifest["model"] == "lenet300_100" and manifest["ratio"] == 90
    assert manifest["source"]["path"] == "pruned/lenet300_100/r90.pt"
    assert [a["format"] for a in manifest["artifacts"]] == list(FORMATS)
    assert all(set(a) == ARTIFACT_FIELDS for a in manifest["artifacts"])


def test_manifest_sizes_and_hashes_match_the_files(exported):
    directory = artifact_dir(exported, "lenet5", 50)
    for entry in read_manifest(directory)["artifacts"]:
        data = (directory / entry["file"]).read_bytes()
        assert entry["bytes"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()


def test_every_lenet_artifact_has_its_gzip_size_at_zlib_level_6(exported):
    directory = artifact_dir(exported, "lenet300_100", 90)
    for entry in read_manifest(directory)["artifacts"]:
        data = (directory / entry["file"]).read_bytes()
        assert entry["gzip_bytes"] == len(gzip.compress(data, 6, mtime=0)), entry["file"]
        assert entry["gzip_note"] is None


def test_manifest_records_sparsity_verification_and_accuracy_of_every_artifact(exported):
    manifest = read_manifest(artifact_dir(exported, "lenet300_100", 99))
    assert manifest["sparsity"] == pytest.approx(99, abs=0.01)
    for entry in manifest["artifacts"]:
        assert entry["sparsity"] == pytest.approx(manifest["sparsity"])
        if not FORMATS[entry["format"]].lossy:
            assert entry["max_abs_diff"] <= 1e-5
            assert entry["accuracy"] == manifest["accuracy"]


def test_gzip_shrinks_the_masked_file_below_dense_gzip_bound(exported):
    entries = {a["format"]: a for a in read_manifest(artifact_dir(exported, "lenet300_100", 90))["artifacts"]}
    assert entries["masked"]["gzip_bytes"] < entries["masked"]["bytes"]
    assert entries["dense"]["gzip_bytes"] < entries["dense"]["bytes"]


def test_rerun_with_the_same_source_skips_the_directory(tmp_path, write_pruned, images):
    write_pruned(tmp_path, "lenet300_100", 90)
    first, skipped_first = export_one(tmp_path, "lenet300_100", 90, images("lenet300_100"))
    stamps = {p.name: p.stat().st_mtime_ns for p in artifact_dir(tmp_path, "lenet300_100", 90).iterdir()}
    second, skipped_second = export_one(tmp_path, "lenet300_100", 90, images("lenet300_100"))
    assert (skipped_first, skipped_second) == (False, True)
    assert second == first
    assert {p.name: p.stat().st_mtime_ns for p in artifact_dir(tmp_path, "lenet300_100", 90).iterdir()} == stamps


def test_rerun_after_an_artifact_changed_exports_again(tmp_path, write_pruned, images):
    write_pruned(tmp_path, "lenet300_100", 90)
    export_one(tmp_path, "lenet300_100", 90, images("lenet300_100"))
    dense = artifact_dir(tmp_path, "lenet300_100", 90) / "dense.pt"
    dense.write_bytes(dense.read_bytes()[:-10] + b"0123456789")
    _, skipped = export_one(tmp_path, "lenet300_100", 90, images("lenet300_100"))
    assert not skipped
    assert hashlib.sha256(dense.read_bytes()).hexdigest() == next(
        a["sha256"] for a in read_manifest(dense.parent)["artifacts"] if a["file"] == "dense.pt")


def test_rerun_after_the_source_changed_exports_again(tmp_path, write_pruned, images):
    write_pruned(tmp_path, "lenet300_100", 90, seed=0)
    first, _ = export_one(tmp_path, "lenet300_100", 90, images("lenet300_100"))
    write_pruned(tmp_path, "lenet300_100", 90, seed=1)
    second, skipped = export_one(tmp_path, "lenet300_100", 90, images("lenet300_100"))
    assert not skipped
    assert second["source"]["sha256"] != first["source"]["sha256"]


def test_missing_manifest_is_an_artifact_error_naming_it(tmp_path):
    with pytest.raises(ArtifactError, match=f"{tmp_path}/manifest.json: no manifest"):
        read_manifest(tmp_path)


def test_manifest_without_a_field_is_an_artifact_error_naming_it(tmp_path, exported):
    manifest = read_manifest(artifact_dir(exported, "lenet5", 90))
    del manifest["artifacts"][0]["sha256"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"manifest.json: invalid manifest \(artifacts\[0\] lacks 'sha256'\)"):
        read_manifest(tmp_path)


def test_manifest_pointing_outside_its_directory_is_rejected(tmp_path, exported):
    manifest = read_manifest(artifact_dir(exported, "lenet5", 90))
    manifest["artifacts"][0]["file"] = os.path.join("..", "elsewhere.pt")
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="file name with a directory"):
        read_manifest(tmp_path)


def test_manifest_entry_without_a_gzip_size_is_valid_with_a_note_saying_why(tmp_path, exported):
    manifest = read_manifest(artifact_dir(exported, "lenet5", 90))
    manifest["artifacts"][0].update(gzip_bytes=None, gzip_note="not computed: too large")
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert read_manifest(tmp_path)["artifacts"][0]["gzip_note"] == "not computed: too large"


@pytest.mark.parametrize(("gzip_bytes", "gzip_note"), [(None, None), (1000, "not computed: too large")])
def test_manifest_entry_needs_exactly_one_of_gzip_size_and_note(tmp_path, exported, gzip_bytes, gzip_note):
    manifest = read_manifest(artifact_dir(exported, "lenet5", 90))
    manifest["artifacts"][0].update(gzip_bytes=gzip_bytes, gzip_note=gzip_note)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"artifacts\[0\] needs exactly one of gzip_bytes and gzip_note"):
        read_manifest(tmp_path)


def test_directory_whose_manifest_predates_gzip_notes_is_exported_again(tmp_path, write_pruned, images):
    write_pruned(tmp_path, "lenet300_100", 90)
    first, _ = export_one(tmp_path, "lenet300_100", 90, images("lenet300_100"))
    old = json.loads(json.dumps(first))
    for entry in old["artifacts"]:
        del entry["gzip_note"]
        entry["gzip_bytes"] += 1  # a size from the former gzip settings
    (artifact_dir(tmp_path, "lenet300_100", 90) / "manifest.json").write_text(json.dumps(old))
    second, skipped = export_one(tmp_path, "lenet300_100", 90, images("lenet300_100"))
    assert not skipped
    assert second == first


def test_directory_exported_under_an_older_packed_layout_is_exported_again(tmp_path, write_pruned, images):
    write_pruned(tmp_path, "lenet300_100", 90)
    first, _ = export_one(tmp_path, "lenet300_100", 90, images("lenet300_100"))
    old = {**first, "format_versions": {**first["format_versions"], "packed": PACKED_VERSION - 1}}
    (artifact_dir(tmp_path, "lenet300_100", 90) / "manifest.json").write_text(json.dumps(old))
    second, skipped = export_one(tmp_path, "lenet300_100", 90, images("lenet300_100"))
    assert not skipped
    assert second["format_versions"]["packed"] == PACKED_VERSION
