"""Measurement records: fixed, documented fields with units; the run file and every report are built from them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from prune.config import DEFAULT_METHOD, DEFAULT_RECOVERY, Variant

SCHEMA_VERSION = 4
UNSTABLE_IQR = 0.10  # a latency whose interquartile range exceeds this fraction of its median is flagged unstable
BASELINE_RUNTIME = "torch-dense"  # ratios to dense are taken against this runtime at ratio 0 of the same model
DENSE_ARTIFACT = "dense.pt"  # the file BASELINE_RUNTIME loads: file sizes are compared with it at ratio 0


@dataclass
class LatencyStats:
    """Wall-clock latency of one forward pass at one batch size, over `reps` timed repetitions."""

    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    reps: int
    warmup: int
    p95_ms: float
    iqr_ms: float  # interquartile range, p75 - p25
    throughput_ips: float  # images per second at this batch size: batch / p50
    unstable: bool  # iqr_ms > UNSTABLE_IQR * p50_ms: too noisy to read as a finding
    loops: int = 1  # calls per timed sample, whose mean is one repetition (sub-millisecond calls are looped)


@dataclass
class Record:
    """One model x method x recovery x ratio x runtime measurement."""

    model: str
    dataset: str  # data source the accuracy came from: mnist, mnist-embedded-5k, cifar10, or "none"
    ratio: float  # requested pruning ratio, percent of each prunable layer
    sparsity: float  # measured global sparsity of the prunable weights, percent
    runtime: str  # name in bench.runtimes.RUNTIMES
    artifact: str  # file name of the artifact the runtime loaded, e.g. "dense.pt"
    device: str  # "cpu" or "cuda"
    threads: int  # torch intra-op threads and onnxruntime intra_op_num_threads alike
    accuracy: float | None  # top-1 on the test split through this runtime, percent; None when not measurable
    accuracy_note: str | None  # why accuracy is None (e.g. "CIFAR-10 not on disk; pass --download")
    file_bytes: int  # artifact size on disk
    gzip_bytes: int | None  # artifact size after zlib level 6 (gzip -6); None: not computed, see gzip_note
    fp32_ref_bytes: int  # mask entropy plus fp32 values of the pruned model (export.reference_size)
    param_bytes: int | None  # bytes of every tensor the loaded model holds; None when it failed
    peak_rss_bytes: int | None  # VmHWM of the child process that loaded the artifact and ran inference
    baseline_rss_bytes: int | None  # VmRSS of that child before it loaded the artifact (runtime libraries only)
    cuda_peak_bytes: int | None  # torch.cuda.max_memory_allocated on CUDA runtimes, else None
    latency_ms: dict[str, LatencyStats]  # keyed by batch size (as a string, for JSON)
    max_abs_diff: float | None  # max |logits - in-memory pruned model logits| on a fixed batch
    # batch -> p50 ms of the model's dense.pt at ratio 0 through BASELINE_RUNTIME, timed in this record's process
    # in blocks alternating with this runtime; the latency ratios to dense divide by it
    paired_dense_ms: dict[str, float] = field(default_factory=dict)
    to_dense: dict[str, float] = field(default_factory=dict)  # figure -> value / dense value (same model, ratio 0)
    notes: list[str] = field(default_factory=list)  # facts about this runtime worth showing (e.g. densified at load)
    layer_choice: dict[str, dict[str, str]] = field(default_factory=dict)  # torch-auto: batch -> layer -> form
    artifact_sha256: str | None = None  # the manifest's sha256 of the artifact measured (a resumed run checks it)
    error: str | None = None  # why the measurement failed (its figures are then None/empty); None on success
    test_images: int | None = None  # how many test images accuracy was computed on (the same in every stage)
    gzip_note: str | None = None  # why gzip_bytes is None
    method: str = DEFAULT_METHOD  # pruning method, name in prune.methods.METHODS
    recovery: str = DEFAULT_RECOVERY  # what ran after pruning, name in prune.recovery.RECOVERIES
    macs: int | None = None  # multiply-accumulates of one image's forward pass, counted from the architecture
    # a model source's identity (prune.sources.source_identity, as its sweep file holds it): the source, the
    # sha256 of its file and of the checkpoint, the input shape and the data; None for a registry model
    source: dict | None = None

    @property
    def failed(self) -> bool:
        """True when the child process measuring this record raised, crashed or timed out."""
        return self.error is not None

    def p50_ms(self, batch: int | str) -> float | None:
        """Median latency at `batch` in ms, or None when that batch size was not timed."""
        stats = self.latency_ms.get(str(batch))
        return stats.p50_ms if stats else None

    @property
    def key(self) -> tuple[str, str, str, float, str]:
        """Identity of the measurement within a run."""
        return (self.model, self.method, self.recovery, self.ratio, self.runtime)

    def to_dict(self) -> dict:
        """JSON-serialisable form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Record:
        """Inverse of to_dict; unknown keys are an error so schema drift fails loudly."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown record fields: {sorted(unknown)}")
        latency = {b: LatencyStats(**s) for b, s in data["latency_ms"].items()}
        return cls(**{**data, "latency_ms": latency})


@dataclass
class ArtifactFile:
    """Size on disk of one exported artifact, whether or not a runtime loads it (packed.pt, sparse_coo.pt)."""

    model: str
    ratio: float  # requested pruning ratio, percent
    sparsity: float  # measured global sparsity of the prunable weights, percent
    format: str  # key in export.formats.FORMATS
    artifact: str  # file name, e.g. "packed.pt"
    file_bytes: int
    gzip_bytes: int | None  # zlib level 6; None: not computed, see gzip_note
    fp32_ref_bytes: int  # mask entropy plus fp32 values of the pruned model (export.reference_size)
    to_dense: float | None = None  # file_bytes / dense.pt's at ratio 0 of the same model
    gzip_note: str | None = None  # why gzip_bytes is None
    method: str = DEFAULT_METHOD  # pruning method, name in prune.methods.METHODS
    recovery: str = DEFAULT_RECOVERY  # what ran after pruning, name in prune.recovery.RECOVERIES
    accuracy: float | None = None  # top-1 % through the file as export loaded it; None without test data
    kept: bool = True  # False: removed once export sized it (an untimed ratio) or measure timed it

    def to_dict(self) -> dict:
        """JSON-serialisable form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ArtifactFile:
        """Inverse of to_dict."""
        return cls(**data)


def is_study(item: Record | ArtifactFile) -> bool:
    """True for a record or file of the study's method and recovery (whose ratio 0 is the dense model)."""
    return Variant(item.method, item.recovery).is_study


def attach_file_ratios(files: list[ArtifactFile]) -> None:
    """Fill each file's `to_dense` from the same model's dense.pt at ratio 0."""
    baselines = {f.model: f.file_bytes for f in files if f.artifact == DENSE_ARTIFACT and f.ratio == 0 and is_study(f)}
    for item in files:
        base = baselines.get(item.model)
        item.to_dense = item.file_bytes / base if base else None


def dense_figures(record: Record) -> dict[str, float | None]:
    """The figures that get a ratio to dense, by name: sizes, memory, and p50 latency per batch size."""
    figures: dict[str, float | None] = {
        "file_bytes": record.file_bytes,
        "gzip_bytes": record.gzip_bytes,
        "param_bytes": record.param_bytes,
        "peak_rss_bytes": record.peak_rss_bytes,
    }
    for batch, stats in record.latency_ms.items():
        figures[f"p50_ms@{batch}"] = stats.p50_ms
    return figures


def attach_ratios_to_dense(records: list[Record]) -> None:
    """Fill each record's `to_dense` from the same model's torch-dense record at ratio 0 in the same run.

    p50 latency is divided by the dense p50 timed alongside it in the same process when the record has one:
    between two processes of a shared machine the same computation measured up to 2x apart.
    """
    baselines = {r.model: dense_figures(r) for r in records
                 if r.runtime == BASELINE_RUNTIME and r.ratio == 0 and is_study(r)}
    for record in records:
        base = baselines.get(record.model, {})
        record.to_dense = {
            name: value / base[name]
            for name, value in dense_figures(record).items()
            if value is not None and base.get(name)
        }
        for batch, pair_ms in record.paired_dense_ms.items():
            if batch in record.latency_ms and pair_ms:
                record.to_dense[f"p50_ms@{batch}"] = record.latency_ms[batch].p50_ms / pair_ms
