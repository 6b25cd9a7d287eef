"""Read a run's results.json for `compare`, field by field, from any schema version prunebench has written: what
each compared field means in which version is written down here, so two versions compare where they agree."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.records import SCHEMA_VERSION
from bench.report.data import RESULTS_FILE
from prune.config import DEFAULT_METHOD, DEFAULT_RECOVERY
from prune.errors import ArtifactError, UsageError

FIRST_SCHEMA = 1
# compared figure -> (the first schema version in which it means what it means now, what it counted before)
MEANING_SINCE = {"param_bytes": (3, "parameters and buffers only, not every tensor the loaded model holds")}


@dataclass(frozen=True)
class Timing:
    """The latency of one record at one batch size, as compare reads it."""

    p50_ms: float
    paired_ratio: float | None  # p50 / the dense model's p50 timed alongside in the same process; None: no pair
    unstable: bool | None  # IQR over 10% of the median; None: the schema predates the flag


@dataclass(frozen=True)
class RunRecord:
    """The fields compare reads from one record; a figure absent from the record is None."""

    model: str
    method: str
    recovery: str
    ratio: float  # requested pruning ratio, percent
    runtime: str
    error: str | None  # why the measurement failed; None on success
    file_bytes: float | None
    param_bytes: float | None
    peak_rss_bytes: float | None
    accuracy: float | None  # top-1, percent
    latency: dict[int, Timing]  # by batch size

    @property
    def key(self) -> tuple[str, str, str, float, str]:
        """Identity of the measurement, the same in every schema version: model, method, recovery, ratio, runtime."""
        return (self.model, self.method, self.recovery, self.ratio, self.runtime)


@dataclass(frozen=True)
class Run:
    """One run as compare reads it: where it came from, its schema version, environment, config and records."""

    path: Path
    schema_version: int
    environment: dict
    config: dict
    records: list[RunRecord]
    record_fields: frozenset[str]  # every field its records carry; latency_ms.<name> for the latency figures


def results_file(path: Path) -> Path:
    """The results.json a RUN argument names: the file itself, or the one in a run directory."""
    path = Path(path)
    if path.is_dir():
        if not (path / RESULTS_FILE).is_file():
            raise ArtifactError(f"{path}: no {RESULTS_FILE}; give a --out directory of a measured run or a "
                                f"{RESULTS_FILE} file")
        return path / RESULTS_FILE
    if not path.exists():
        raise UsageError(f"{path}: no such file or directory; give a --out directory or a {RESULTS_FILE} file")
    return path


def _field(item: dict, name: str, kind: type | tuple[type, ...], where: str, required: bool = False) -> Any:
    """One field of a record, checked against its type; absent or null is None unless required."""
    value = item.get(name)
    if value is None:
        if required:
            raise ArtifactError(f"{where}: no {name!r}; not a prunebench results file")
        return None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ArtifactError(f"{where}: field {name!r} is {value!r}; not a prunebench results file")
    return value


def _timings(item: dict, where: str) -> dict[int, Timing]:
    """p50 per batch size, with the ratio to the dense p50 timed alongside where the record has one."""
    latency = _field(item, "latency_ms", dict, where) or {}
    pairs = _field(item, "paired_dense_ms", dict, where) or {}
    timings = {}
    for batch, stats in latency.items():
        if not isinstance(stats, dict) or not str(batch).isdigit():
            raise ArtifactError(f"{where}: latency at batch {batch!r} is not a figure; not a prunebench results file")
        p50 = _field(stats, "p50_ms", (int, float), where, required=True)
        pair = pairs.get(batch)
        paired = p50 / pair if isinstance(pair, (int, float)) and pair > 0 else None
        timings[int(batch)] = Timing(p50, paired, _field(stats, "unstable", bool, where))
    return timings


def read_record(item: object, where: str) -> RunRecord:
    """One record, field by field; a schema without variants reads as the study's (l1-unstructured+none)."""
    if not isinstance(item, dict):
        raise ArtifactError(f"{where}: not a record; not a prunebench results file")
    number = (int, float)
    return RunRecord(
        model=_field(item, "model", str, where, required=True),
        method=_field(item, "method", str, where) or DEFAULT_METHOD,
        recovery=_field(item, "recovery", str, where) or DEFAULT_RECOVERY,
        ratio=float(_field(item, "ratio", number, where, required=True)),
        runtime=_field(item, "runtime", str, where, required=True),
        error=_field(item, "error", str, where),
        file_bytes=_field(item, "file_bytes", number, where),
        param_bytes=_field(item, "param_bytes", number, where),
        peak_rss_bytes=_field(item, "peak_rss_bytes", number, where),
        accuracy=_field(item, "accuracy", number, where),
        latency=_timings(item, where),
    )


def load_run(path: Path) -> Run:
    """Read a run directory's results.json, or a results.json file; ArtifactError when it is missing, unreadable,
    not a prunebench results file, or of a schema version this prunebench does not know."""
    path = results_file(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ArtifactError(f"{path}: unreadable JSON ({exc}); give a {RESULTS_FILE} written by "
                            "python -m bench measure") from None
    if not isinstance(data, dict) or not isinstance(data.get("records"), list) or "schema_version" not in data:
        raise ArtifactError(f"{path}: not a prunebench results file (no schema_version and records list)")
    version = data["schema_version"]
    if not isinstance(version, int) or not FIRST_SCHEMA <= version <= SCHEMA_VERSION:
        raise ArtifactError(f"{path}: schema version {version!r}; compare reads versions {FIRST_SCHEMA} to "
                            f"{SCHEMA_VERSION}")
    records = [read_record(item, f"{path}: record {n}") for n, item in enumerate(data["records"])]
    fields = frozenset(name for item in data["records"] for name in item) | frozenset(
        f"latency_ms.{name}" for item in data["records"] for stats in (item.get("latency_ms") or {}).values()
        for name in stats)
    environment, config = data.get("environment"), data.get("config")
    return Run(path, version, environment if isinstance(environment, dict) else {},
               config if isinstance(config, dict) else {}, records, fields)
