"""Options of the measure stage that the run configuration does not hold."""

from __future__ import annotations

from dataclasses import dataclass

from prune.errors import UsageError


@dataclass(frozen=True)
class MeasureConfig:
    """What to measure; None means the preset's choice (bench.harness.presets)."""

    runtimes: tuple[str, ...] | None = None  # names in bench.runtimes.RUNTIMES; None: every one available here
    batch_size: int | None = None  # the larger batch timed next to batch 1
    threads: int | None = None  # torch and onnxruntime intra-op threads; None: the preset's (2 on quick)

    def __post_init__(self) -> None:
        if self.batch_size is not None and self.batch_size < 1:
            raise UsageError(f"batch size {self.batch_size} must be >= 1")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"thread count {self.threads} must be >= 1")
