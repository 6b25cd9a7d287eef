"""The size ladder: dense, then one pruned model as packed, codebook and int8 files, chosen within tolerance."""

from pathlib import Path

from bench.report.ladder import ladder_table
from bench.records import ArtifactFile, attach_file_ratios
from bench.report.data import RunResults

DENSE = 1_000_000


def _file(ratio: float, artifact: str, size: int, accuracy: float, method: str = "l1-unstructured",
          recovery: str = "none") -> ArtifactFile:
    return ArtifactFile("lenet5", ratio, ratio, artifact.split(".")[0], artifact, size, None, size,
                        method=method, recovery=recovery, accuracy=accuracy)


def _results() -> RunResults:
    files = [_file(0, "dense.pt", DENSE, 97.0),
             _file(90, "packed.pt", 60_000, 96.5), _file(90, "codebook.pt", 25_000, 96.4),
             _file(90, "model.int8.onnx", 260_000, 96.3),
             _file(95, "packed.pt", 40_000, 93.0), _file(95, "codebook.pt", 15_000, 92.8),  # too inaccurate
             _file(95, "packed.pt", 41_000, 96.9, recovery="finetune"),
             _file(95, "codebook.pt", 18_000, 96.2, recovery="finetune")]
    attach_file_ratios(files)
    return RunResults(Path("results.json"), {}, {}, [], files)


def test_the_ladder_climbs_from_dense_through_the_smallest_codebook_within_tolerance():
    table = ladder_table(_results(), "lenet5", tolerance=1.0)
    assert table.rows == ["dense (dense.pt)", "pruned, lossless (packed.pt)", "pruned, shared weights (codebook.pt)"]
    bytes_ = next(c for c in table.columns if c.header == "x dense.pt")
    assert [c.text for c in bytes_.cells] == ["1.0x", "0.041x", "0.018x"]
    assert "l1-unstructured+finetune at 95%" in table.caption and "within 1 points" in table.caption


def test_each_rung_shows_its_own_accuracy():
    table = ladder_table(_results(), "lenet5", tolerance=1.0)
    accuracy = next(c for c in table.columns if c.header == "accuracy")
    assert [c.text for c in accuracy.cells] == ["97.00", "96.90", "96.20"]


def test_with_no_codebook_within_tolerance_the_smallest_is_shown_without_an_accuracy_claim():
    table = ladder_table(_results(), "lenet5", tolerance=0.1)
    assert table.rows[-1] == "pruned, shared weights (codebook.pt)"
    assert "no accuracy claim" in table.caption and "at 95%" in table.caption
