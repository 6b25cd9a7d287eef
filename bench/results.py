"""results.json and results.csv of the measure stage: written atomically, read back to resume a run."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from bench.records import SCHEMA_VERSION, ArtifactFile, LatencyStats, Record
from prune.errors import ArtifactError
from prune.io import read_json, write_bytes, write_json

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
RESUME_IGNORES = ("out", "models", "ratios", "runtimes", "methods", "recoveries", "compare_ratios",
                  "latency_ratios", "finetune_epochs",
                  "codebook_bits")  # config keys saying where and what, not how, to measure (an artifact that
# changed with them is measured again: records are kept only for the same file)
REVISION_KEYS = ("git_commit", "git_dirty")  # environment keys of provenance, not of the machine or its settings
SCALAR_FIELDS = ("model", "dataset", "ratio", "sparsity", "runtime", "artifact", "device", "threads", "accuracy",
                 "accuracy_note", "file_bytes", "gzip_bytes", "fp32_ref_bytes", "param_bytes", "peak_rss_bytes",
                 "baseline_rss_bytes", "cuda_peak_bytes", "max_abs_diff", "artifact_sha256", "error", "test_images",
                 "gzip_note")
LATENCY_FIELDS = ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "iqr_ms", "mean_ms", "std_ms", "throughput_ips",
                  "unstable", "reps", "warmup", "loops")


def results_path(out: Path) -> Path:
    """Where the measure stage writes its records."""
    return Path(out) / RESULTS_JSON


def read_results(out: Path) -> dict:
    """results.json with its records as Record objects; malformed is an ArtifactError naming the file."""
    path = results_path(out)
    data = read_json(path)
    try:
        data["records"] = [Record.from_dict(r) for r in data["records"]]
        data["artifacts"] = [ArtifactFile.from_dict(f) for f in data["artifacts"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{path}: records do not match schema {SCHEMA_VERSION} ({exc}); "
                            "delete it and rerun `python -m bench measure`") from None
    return data


def reusable_records(out: Path, environment: dict, config: dict) -> dict[tuple, Record]:
    """Successful records of an earlier run into `out` made on the same environment and settings, by key."""
    path = results_path(out)
    if not path.is_file():
        return {}
    try:
        previous = read_results(out)
    except ArtifactError:
        return {}
    same = (previous.get("schema_version") == SCHEMA_VERSION
            and _machine(previous.get("environment") or {}) == _machine(environment)
            and _settings(previous.get("config", {})) == _settings(config))
    return {r.key: r for r in previous["records"] if not r.failed} if same else {}


def _machine(environment: dict) -> dict:
    """The environment without the source revision: a commit alone changes no figure, so records are kept."""
    return {k: v for k, v in environment.items() if k not in REVISION_KEYS}


def _settings(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in RESUME_IGNORES}


def write_results(out: Path, environment: dict, config: dict, records: list[Record],
                  files: list[ArtifactFile]) -> None:
    """Write results.json and results.csv atomically (each replaces the old file whole or not at all).

    `files` holds the size of every exported artifact, including those no runtime loads (packed.pt).
    """
    document = {"schema_version": SCHEMA_VERSION, "environment": environment, "config": config,
                "records": [r.to_dict() for r in records], "artifacts": [f.to_dict() for f in files]}
    write_json(results_path(out), document)
    write_bytes(Path(out) / RESULTS_CSV, records_csv(records).encode())


def csv_row(record: Record, batches: list[str], figures: list[str]) -> dict:
    """One flat row: scalar fields, latency figures per batch size, ratios to dense, choices and notes as text."""
    row = {name: getattr(record, name) for name in SCALAR_FIELDS}
    for batch in batches:
        stats: LatencyStats | None = record.latency_ms.get(batch)
        for name in LATENCY_FIELDS:
            row[f"{name}@{batch}"] = getattr(stats, name) if stats else None
    for figure in figures:
        row[f"to_dense:{figure}"] = record.to_dense.get(figure)
    row["layer_choice"] = json.dumps(record.layer_choice, sort_keys=True) if record.layer_choice else None
    row["notes"] = "; ".join(record.notes)
    row["source"] = json.dumps(record.source, sort_keys=True) if record.source else None
    return row


def records_csv(records: list[Record]) -> str:
    """The records as CSV text, one row per record; latency columns for every batch size any record has."""
    batches = sorted({b for r in records for b in r.latency_ms}, key=int)
    figures = list(dict.fromkeys(f for r in records for f in r.to_dense))
    header = [*SCALAR_FIELDS, *(f"{n}@{b}" for b in batches for n in LATENCY_FIELDS),
              *(f"to_dense:{f}" for f in figures), "layer_choice", "notes", "source"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow(csv_row(record, batches, figures))
    return buffer.getvalue()
