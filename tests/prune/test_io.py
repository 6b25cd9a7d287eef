"""Atomic output: files land whole, with the usual mode, and equal objects give equal bytes."""

from __future__ import annotations

import errno
import os
import shutil
import stat

import pytest
import torch

from prune.errors import ArtifactError, DiskFull
from prune.io import FILE_MODE, read_json, torch_load, torch_save, write_json


def test_equal_objects_saved_twice_are_byte_identical(tmp_path):
    for name in ("a.pt", "b.pt"):
        torch_save(tmp_path / name, {"weight": torch.arange(12.0).reshape(3, 4)})
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


def test_compact_save_is_smaller_byte_identical_and_loads_the_same(tmp_path):
    blob = {"header": "{}", "payload": torch.arange(200, dtype=torch.uint8)}
    for name, compact in (("zip.pt", False), ("a.pt", True), ("b.pt", True)):
        torch_save(tmp_path / name, blob, compact=compact)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    assert (tmp_path / "a.pt").stat().st_size < (tmp_path / "zip.pt").stat().st_size - 200
    assert torch.equal(torch_load(tmp_path / "a.pt")["payload"], blob["payload"])


def test_written_file_has_the_mode_open_would_give_and_no_temp_file_is_left(tmp_path):
    write_json(tmp_path / "run.json", {"ok": True})
    assert stat.S_IMODE(os.stat(tmp_path / "run.json").st_mode) == FILE_MODE
    assert read_json(tmp_path / "run.json") == {"ok": True}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_a_failed_write_leaves_the_old_file_untouched(tmp_path):
    torch_save(tmp_path / "w.pt", {"w": torch.ones(2)})
    with pytest.raises(TypeError):
        torch_save(tmp_path / "w.pt", {"w": object.__new__(type("Unsaveable", (), {"__reduce__": None}))})
    assert torch.equal(torch_load(tmp_path / "w.pt")["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["w.pt"]


def test_loading_a_missing_file_is_an_artifact_error_naming_it(tmp_path):
    with pytest.raises(ArtifactError, match="nothing.pt: no such file"):
        torch_load(tmp_path / "nothing.pt")


def _fail_with(exc):
    def save(obj, f):
        f.write(b"partial")
        raise exc
    return save


@pytest.mark.parametrize("exc", [OSError(errno.ENOSPC, "No space left on device"),
                                 RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")],
                         ids=["enospc", "torch-runtime-error"])
def test_a_write_that_runs_out_of_space_is_a_disk_full_error_naming_the_file(tmp_path, monkeypatch, exc):
    monkeypatch.setattr(torch, "save", _fail_with(exc))
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 4096, 4096))
    with pytest.raises(DiskFull, match=r"w\.pt: no space left on the device \(4,096 bytes free\).*rerun to resume"):
        torch_save(tmp_path / "w.pt", {"w": torch.ones(2)})
    assert list(tmp_path.iterdir()) == []


def test_a_torch_error_with_space_left_is_not_taken_for_a_full_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(torch, "save", _fail_with(RuntimeError("some other failure")))
    with pytest.raises(RuntimeError, match="some other failure"):
        torch_save(tmp_path / "w.pt", {"w": torch.ones(2)})
    assert list(tmp_path.iterdir()) == []
