"""The results.json record schema: every field survives a round trip; ratios to dense come from torch-dense at 0."""

from __future__ import annotations

import dataclasses

import pytest

from bench.records import LatencyStats, Record, attach_ratios_to_dense


def record(runtime: str = "torch-dense", ratio: float = 0, **changes) -> Record:
    """A record with every field set to a value other than its default."""
    values = dict(
        model="lenet300_100", dataset="mnist-embedded-5k", ratio=ratio, sparsity=89.9, runtime=runtime,
        artifact="dense.pt", device="cpu", threads=2, accuracy=97.5, accuracy_note="first 5000 images",
        file_bytes=1000, gzip_bytes=900, fp32_ref_bytes=300, param_bytes=800, peak_rss_bytes=4000,
        baseline_rss_bytes=3000, cuda_peak_bytes=123,
        latency_ms={"1": LatencyStats(1.0, 1.5, 2.0, 1.1, 0.2, 50, 5, 1.8, 0.1, 1000.0, False),
                    "64": LatencyStats(10.0, 12.0, 15.0, 10.5, 1.0, 20, 5, 14.0, 1.5, 6400.0, True)},
        max_abs_diff=1e-7, paired_dense_ms={"1": 0.9}, to_dense={"file_bytes": 1.0}, notes=["a note"],
        layer_choice={"64": {"1": "sparse", "3": "dense"}}, artifact_sha256="ab" * 32, error="boom",
        test_images=1000, gzip_note="not computed", macs=266_200,
        source={"source": "net.py:build", "source_sha256": "cd" * 32, "input_shape": [1, 28, 28]})
    return Record(**{**values, **changes})


def test_round_trip_keeps_every_field():
    original = record(method="l1-structured", recovery="bn")
    for f in dataclasses.fields(Record):
        assert getattr(original, f.name) != (f.default_factory() if f.default_factory is not dataclasses.MISSING
                                             else f.default), f"{f.name} left at its default"
    assert Record.from_dict(original.to_dict()) == original


def test_unknown_field_is_rejected():
    data = record().to_dict() | {"latency_s": 1}
    with pytest.raises(ValueError, match="latency_s"):
        Record.from_dict(data)


def test_failed_record_is_the_one_with_an_error():
    assert record().failed
    assert not record(error=None).failed


def test_ratios_to_dense_divide_by_torch_dense_at_ratio_0_of_the_same_model():
    dense = record(error=None, paired_dense_ms={})
    masked = record("torch-masked", 90, file_bytes=2000, param_bytes=1600, peak_rss_bytes=None,
                    latency_ms={"1": LatencyStats(2.0, 2, 2, 2, 0, 5, 1, 2, 0, 500.0, False)}, paired_dense_ms={})
    other_model = record("torch-masked", 90, model="lenet5", paired_dense_ms={})
    attach_ratios_to_dense([dense, masked, other_model])
    assert dense.to_dense["p50_ms@64"] == 1.0
    assert masked.to_dense == {"file_bytes": 2.0, "gzip_bytes": 1.0, "param_bytes": 2.0, "p50_ms@1": 2.0}
    assert other_model.to_dense == {}


def test_latency_ratio_divides_by_the_dense_p50_timed_in_the_same_process():
    dense = record(error=None, paired_dense_ms={"1": 1.0})
    masked = record("torch-masked", 90, latency_ms={"1": LatencyStats(2.0, 2, 2, 2, 0, 5, 1, 2, 0, 500.0, False)},
                    paired_dense_ms={"1": 0.5})
    attach_ratios_to_dense([dense, masked])
    assert masked.to_dense["p50_ms@1"] == 4.0  # 2.0 ms against the 0.5 ms its own process timed for dense
    assert dense.to_dense["p50_ms@64"] == 1.0  # no pair at batch 64: divided by the dense record's figure


def test_a_pair_without_a_dense_record_still_gives_the_latency_ratio():
    masked = record("torch-masked", 90, latency_ms={"1": LatencyStats(2.0, 2, 2, 2, 0, 5, 1, 2, 0, 500.0, False)},
                    paired_dense_ms={"1": 1.0})
    attach_ratios_to_dense([masked])
    assert masked.to_dense == {"p50_ms@1": 2.0}
