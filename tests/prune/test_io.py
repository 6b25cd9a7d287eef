"""Atomic output: files land whole, with the usual mode, and equal objects give equal bytes."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from prune.errors import ArtifactError
from prune.io import FILE_MODE, read_json, torch_load, torch_save, write_json


def test_equal_objects_saved_twice_are_byte_identical(tmp_path):
    for name in ("a.pt", "b.pt"):
        torch_save(tmp_path / name, {"weight": torch.arange(12.0).reshape(3, 4)})
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


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
