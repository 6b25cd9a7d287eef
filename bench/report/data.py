"""The measurement records of one run, read from `<out>/results.json`, with the look-ups the reports need."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from bench.records import BASELINE_RUNTIME, DENSE_ARTIFACT, SCHEMA_VERSION, ArtifactFile, Record, is_study
from prune.config import STUDY, Variant, sweep_path
from prune.errors import ArtifactError
from prune.io import read_json

RESULTS_FILE = "results.json"
MASKED_RUNTIME = "torch-masked"  # the model as torch.nn.utils.prune leaves it (weight_orig + weight_mask)


@dataclass(frozen=True)
class RunResults:
    """The run file: environment and config as written by the measure stage, and its records."""

    path: Path
    environment: dict
    config: dict
    records: list[Record]
    files: list[ArtifactFile]  # every exported artifact's size, loaded by a runtime or not

    def models(self) -> list[str]:
        """Models in the order the measure stage wrote them."""
        return list(dict.fromkeys(r.model for r in self.records))

    def ratios(self, model: str) -> list[float]:
        """Pruning ratios of `model` with records or exported files, ascending."""
        return sorted({r.ratio for r in self.records if r.model == model} |
                      {f.ratio for f in self.files if f.model == model})

    def untimed_ratios(self, model: str) -> list[float]:
        """Ratios of `model` whose files were exported and sized but not timed (--latency-ratios)."""
        timed = {r.ratio for r in self.records if r.model == model}
        return [ratio for ratio in self.ratios(model) if ratio not in timed]

    def runtimes(self, model: str) -> list[str]:
        """Runtimes measured for `model`, in the order the measure stage wrote them."""
        return list(dict.fromkeys(r.runtime for r in self.records if r.model == model))

    def artifacts(self, model: str) -> list[str]:
        """Artifact files exported for `model`, in export order."""
        return list(dict.fromkeys(f.artifact for f in self.files if f.model == model))

    def batches(self, model: str) -> list[int]:
        """Batch sizes timed for `model`, ascending."""
        return sorted({int(b) for r in self.records if r.model == model for b in r.latency_ms})

    def study(self) -> RunResults:
        """The records and files of the study's variant only (l1-unstructured, no recovery): what the study's
        tables, findings and plots are built from."""
        return replace(self, records=[r for r in self.records if is_study(r)],
                       files=[f for f in self.files if is_study(f)])

    def variants(self, model: str) -> list[Variant]:
        """Methods x recoveries measured for `model`, the study's first."""
        return list(dict.fromkeys(Variant(r.method, r.recovery) for r in self.records if r.model == model))

    def get(self, model: str, ratio: float, runtime: str, variant: Variant = STUDY) -> Record | None:
        """The record of one measurement, or None when it is absent."""
        wanted = (model, variant.method, variant.recovery, ratio, runtime)
        return next((r for r in self.records if r.key == wanted), None)

    def file(self, model: str, ratio: float, artifact: str, variant: Variant = STUDY) -> ArtifactFile | None:
        """The size figures of one artifact file, or None when it was not exported."""
        wanted = (model, variant.method, variant.recovery, ratio, artifact)
        return next((f for f in self.files if (f.model, f.method, f.recovery, f.ratio, f.artifact) == wanted), None)

    def reference(self, model: str, ratio: float) -> Record | None:
        """The record that speaks for a model at a ratio (accuracy, sparsity): the baseline runtime's when it
        succeeded, else the first that succeeded, else any."""
        rows = [r for r in self.records if (r.model, r.ratio) == (model, ratio)]
        ok = [r for r in rows if not r.failed]
        return next((r for r in ok if r.runtime == BASELINE_RUNTIME), (ok or rows or [None])[0])

    def figures(self, model: str, ratio: float) -> tuple[float | None, float | None]:
        """(sparsity, accuracy) of a model at a ratio: the reference record's, else, at a ratio that was not
        timed, those export measured through dense.pt."""
        record = self.reference(model, ratio)
        if record is not None:
            return record.sparsity, None if record.failed else record.accuracy
        dense = self.file(model, ratio, DENSE_ARTIFACT)
        return (dense.sparsity, dense.accuracy) if dense else (None, None)

    def failures(self) -> list[Record]:
        """Records whose measurement failed."""
        return [r for r in self.records if r.failed]

    def runtime_notes(self) -> dict[str, list[str]]:
        """Notes every record of a runtime carries (facts about the runtime itself), by runtime."""
        notes: dict[str, list[str]] = {}
        for runtime in dict.fromkeys(r.runtime for r in self.records):
            lists = [r.notes for r in self.records if r.runtime == runtime]
            notes[runtime] = [n for n in lists[0] if all(n in other for other in lists)]
        return notes

    def record_notes(self, model: str) -> list[str]:
        """Notes particular to one measurement of `model` (torch-auto's per-layer choice), one line each."""
        common = self.runtime_notes()
        lines = []
        for r in self.records:
            extra = [n for n in r.notes if n not in common[r.runtime]]
            if r.model == model and extra:
                lines.append(f"{r.ratio:g}% {r.runtime}: {'; '.join(extra)}")
        return lines


def load_results(out: Path) -> RunResults:
    """Read `<out>/results.json`; a missing, foreign or drifted file is an ArtifactError naming the fix."""
    path = Path(out) / RESULTS_FILE
    if not path.is_file():
        raise ArtifactError(f"{path}: no measurement results; run python -m bench measure first")
    data = read_json(path)
    if not isinstance(data, dict) or not data.get("records") or not isinstance(data["records"], list):
        raise ArtifactError(f"{path}: no measurement records; rerun python -m bench measure")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ArtifactError(f"{path}: schema version {data.get('schema_version')!r}, this report reads "
                            f"{SCHEMA_VERSION}; rerun python -m bench measure")
    try:
        records = [Record.from_dict(item) for item in data["records"]]
        files = [ArtifactFile.from_dict(item) for item in data["artifacts"]]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ArtifactError(f"{path}: a record does not match the schema ({exc}); "
                            "rerun python -m bench measure") from None
    return RunResults(path, data.get("environment") or {}, data.get("config") or {}, records, files)


def load_sweeps(out: Path, models: list[str]) -> dict[str, dict]:
    """The study variant's sweep of the models that have one (training budget, dataset source, dense accuracy)."""
    return {m: read_json(sweep_path(out, m)) for m in models if sweep_path(out, m).is_file()}
