"""One measurement, run inside a fresh child process: load an artifact through a runtime and measure it.

Order matters for memory: the baseline RSS is read before loading, the peak (VmHWM) after loading, timing at every
batch size and the logits check, and only then is the test split mapped in for accuracy, so the peak holds the
model and its inference, not the test images.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from bench.latency import RepsPolicy, cuda_clock, measure_latency, perf_clock
from bench.memory import peak_rss_bytes, reset_peak, rss_bytes
from bench.runtimes import Session, get_runtime
from prune.models import example_input


@dataclass(frozen=True)
class Job:
    """Everything a child needs to measure one model x ratio x runtime (picklable)."""

    model: str
    runtime: str  # name in bench.runtimes.RUNTIMES
    artifact: Path
    sha256: str | None  # the manifest's, checked by the loader
    threads: int
    batch_sizes: tuple[int, ...]  # timed batch sizes; the last is also the accuracy batch
    reps: RepsPolicy
    check_input: np.ndarray  # fixed images whose logits are compared with the reference
    reference: np.ndarray  # logits of the in-memory (masked) pruned model on check_input
    test_data: Path | None  # torch file {"x", "y"} with the test images for accuracy; None: not measurable
    seed: int  # seeds the timing inputs


def top1_accuracy(session: Session, test_data: Path, batch_size: int) -> float:
    """Top-1 percent on the saved test images, run through the session in batches of `batch_size`."""
    data = torch.load(test_data, mmap=True, weights_only=True)
    correct = 0
    for x, y in zip(data["x"].split(batch_size), data["y"].split(batch_size), strict=True):
        correct += int((session.forward(x.contiguous()).argmax(dim=1).cpu() == y).sum())
    return 100.0 * correct / len(data["y"])


def run_job(job: Job) -> dict:
    """Measure one artifact (runs in the child); a dict of the Record fields a child can know."""
    baseline = rss_bytes()
    reset_peak()
    runtime = get_runtime(job.runtime)
    cuda = runtime.device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    session = runtime.load(job.artifact, job.model, job.threads, job.sha256)
    clock = cuda_clock if cuda else perf_clock
    latency = {}
    for batch in job.batch_sizes:
        session.prepare(batch)
        x = example_input(job.model, batch, job.seed).to(session.device)
        latency[str(batch)] = asdict(measure_latency(lambda: session.forward(x), job.reps, clock))
    logits = session.forward(torch.from_numpy(job.check_input)).cpu().double().numpy()
    max_abs_diff = float(np.abs(logits - job.reference).max())
    result = {"baseline_rss_bytes": baseline, "peak_rss_bytes": peak_rss_bytes(),
              "cuda_peak_bytes": torch.cuda.max_memory_allocated() if cuda else None,
              "param_bytes": session.param_bytes(), "latency_ms": latency, "max_abs_diff": max_abs_diff,
              "layer_choice": {str(b): c for b, c in getattr(session, "choices", {}).items()}}
    result["accuracy"] = None if job.test_data is None else top1_accuracy(session, job.test_data,
                                                                          job.batch_sizes[-1])
    return result
