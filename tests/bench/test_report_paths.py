"""report.md shows paths relative to the run directory or home, never one machine's absolute layout."""

from __future__ import annotations

from pathlib import Path

from bench.report.paths import path_roots, relative_paths, shown_out


def test_relative_out_is_shown_as_given_and_absolute_out_as_dot():
    assert shown_out(Path("reports/quick")) == "reports/quick"
    assert shown_out(Path("/tmp/run")) == "."
    assert shown_out(Path("../elsewhere")) == "."


def test_paths_under_the_run_directory_are_relative_to_it(tmp_path):
    roots = path_roots({"out": "/tmp/ref3"}, tmp_path)
    assert relative_paths("out: /tmp/ref3", roots) == "out: ."
    assert relative_paths(f"missing {tmp_path}/artifacts/lenet5/r90/dense.pt.", roots) == \
        "missing ./artifacts/lenet5/r90/dense.pt."


def test_paths_under_home_start_with_a_tilde(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    roots = path_roots({}, Path("runs/latest"))
    assert relative_paths(f"no {tmp_path}/me/.cache/data/cifar-10-batches-py;", roots) == \
        "no ~/.cache/data/cifar-10-batches-py;"


def test_another_machines_home_also_starts_with_a_tilde():
    assert relative_paths("in /root/.cache/prunebench/data)", {}) == "in ~/.cache/prunebench/data)"
    assert relative_paths("/home/ana/data", {}) == "~/data"


def test_other_absolute_paths_are_shown_by_name():
    assert relative_paths("wrote /var/tmp/x/results.json", {}) == "wrote results.json"


def test_relative_paths_urls_fractions_and_closing_tags_are_left_alone():
    text = "plots/a.png, n/a, train / test, https://example.org/x, images/s, </summary></details>"
    assert relative_paths(text, {}) == text
