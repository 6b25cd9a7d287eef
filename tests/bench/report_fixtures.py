"""Realistic records for the report tests: 2 models x 3 ratios x 4 runtimes, ResNet-18 without accuracy."""

from __future__ import annotations

from pathlib import Path

from bench.records import (SCHEMA_VERSION, ArtifactFile, LatencyStats, Record, attach_file_ratios,
                           attach_ratios_to_dense)
from prune.io import write_json

RATIOS = (0.0, 50.0, 90.0)
RUNTIMES = {"torch-masked": "masked.pt", "torch-dense": "dense.pt", "torch-auto": "sparse_csr.pt",
            "ort-dense": "model.onnx"}
CIFAR_NOTE = "CIFAR-10 not on disk; pass --download"
TEST_IMAGES = 1000  # test images behind every measured accuracy
DENSE = {  # model -> (dense file bytes, dense p50 ms at batch 1, at batch 64, accuracy at each ratio or None)
    "lenet5": (246_000, 0.20, 4.0, (98.9, 98.7, 97.1)),
    "resnet18": (44_700_000, 7.0, 200.0, None),
}
# runtime -> ratio -> (file bytes, param bytes, p50) as multiples of the dense figure
SCALE = {
    "torch-masked": {0.0: (1.0, 1.0, 1.0), 50.0: (1.98, 2.0, 1.3), 90.0: (2.0, 2.0, 1.25)},
    "torch-dense": {0.0: (1.0, 1.0, 1.0), 50.0: (1.0, 1.0, 1.0), 90.0: (1.0, 1.0, 1.0)},
    "torch-auto": {0.0: (1.5, 1.0, 1.0), 50.0: (0.8, 0.8, 1.1), 90.0: (0.2, 0.25, 0.7)},
    "ort-dense": {0.0: (1.01, 1.0, 0.5), 50.0: (1.01, 1.0, 0.5), 90.0: (1.01, 1.0, 0.4)},
}
FP32_REF = {0.0: 0.99, 50.0: 0.55, 90.0: 0.14}  # fp32 reference as a multiple of dense file bytes
PACKED = {0.0: 1.0, 50.0: 0.57, 90.0: 0.15}  # packed.pt, which no runtime loads, as a multiple of dense bytes


def make_record(model: str, ratio: float, runtime: str) -> Record:
    """One measurement with figures scaled from the model's dense ones."""
    dense_bytes, p50_b1, p50_b64, accuracy = DENSE[model]
    size, params, latency = SCALE[runtime][ratio]
    stats = {str(b): LatencyStats(p50_ms=ms * latency, p90_ms=ms * latency * 1.1, p99_ms=ms * latency * 1.3,
                                  mean_ms=ms * latency * 1.05, std_ms=ms * 0.01, reps=20, warmup=3,
                                  p95_ms=ms * latency * 1.2, iqr_ms=ms * latency * 0.05,
                                  throughput_ips=int(b) * 1000 / (ms * latency), unstable=False)
             for b, ms in (("1", p50_b1), ("64", p50_b64))}
    return Record(
        model=model, dataset="mnist-embedded-5k" if accuracy else "none", ratio=ratio,
        sparsity=ratio * 0.98, runtime=runtime, artifact=RUNTIMES[runtime], device="cpu", threads=2,
        accuracy=accuracy[RATIOS.index(ratio)] if accuracy else None,
        accuracy_note=None if accuracy else CIFAR_NOTE, test_images=TEST_IMAGES if accuracy else None,
        file_bytes=round(dense_bytes * size), gzip_bytes=round(dense_bytes * size * 0.9),
        fp32_ref_bytes=round(dense_bytes * FP32_REF[ratio]), param_bytes=round(dense_bytes * 0.98 * params),
        peak_rss_bytes=300_000_000 + round(dense_bytes * params), baseline_rss_bytes=290_000_000,
        cuda_peak_bytes=None, latency_ms=stats, max_abs_diff=0.0 if runtime.startswith("torch") else 2e-6,
    )


def set_latency(record: Record, batch: str, p50_ms: float, paired_dense_ms: float | None = None,
                unstable: bool = False) -> None:
    """Give `record` a p50 at `batch`, the dense pair timed in its process, and the stability flag."""
    record.latency_ms[batch].p50_ms = p50_ms
    record.latency_ms[batch].unstable = unstable
    if paired_dense_ms is not None:
        record.paired_dense_ms[batch] = paired_dense_ms


def study_records() -> list[Record]:
    """Every model x ratio x runtime, with ratios to dense attached as the measure stage does."""
    records = [make_record(m, r, rt) for m in DENSE for r in RATIOS for rt in RUNTIMES]
    attach_ratios_to_dense(records)
    return records


def study_files(records: list[Record]) -> list[ArtifactFile]:
    """The size of every artifact the records loaded, plus packed.pt, as the measure stage lists them."""
    files = {(r.model, r.ratio, r.artifact): ArtifactFile(r.model, r.ratio, r.sparsity,
                                                          r.artifact.split(".")[0], r.artifact, r.file_bytes,
                                                          r.gzip_bytes, r.fp32_ref_bytes)
             for r in records}
    for model, ratio, _ in list(files):
        size = round(DENSE[model][0] * PACKED[ratio])
        files[model, ratio, "packed.pt"] = ArtifactFile(model, ratio, ratio * 0.98, "packed", "packed.pt",
                                                        size, size, round(DENSE[model][0] * FP32_REF[ratio]))
    items = list(files.values())
    attach_file_ratios(items)
    return items


def write_results(out: Path, records: list[Record], config: dict | None = None) -> Path:
    """Write records as the measure stage's results.json; `config` adds to or replaces its config entries."""
    path = out / "results.json"
    write_json(path, {
        "schema_version": SCHEMA_VERSION,
        "environment": {"python": "3.11.9", "torch": "2.14.1", "onnxruntime": "1.32.0", "cpu": "test cpu",
                        "cores": 2},
        "config": {"models": list(DENSE), "ratios": list(RATIOS), "preset": "quick", "seed": 0,
                   "schedule": "oneshot", "runtimes": list(RUNTIMES), **(config or {})},
        "records": [r.to_dict() for r in records],
        "artifacts": [f.to_dict() for f in study_files(records)],
    })
    return path
