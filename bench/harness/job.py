"""One measurement, run inside a fresh child process: load an artifact through a runtime and measure it.

Order matters for memory. The baseline RSS is read before loading, and the peak (VmHWM) covers loading, one
inference at every batch size and the logits check. Preparing every batch size comes between and is left out:
torch-auto chooses its layers' forms there, building and timing both forms of each layer, which a deployed model
never holds. Once the losing forms are freed the peak restarts (the peak of loading is kept), and the run then
puts each batch size's choice back before its inference. Only after the peak is read are the dense model at
ratio 0 (timed in alternation with the runtime, for a latency ratio free of process-to-process noise) and, when
needed, the test split loaded, so the peak holds the model and its inference, nothing else.

Accuracy is the file's, found at export over the test split, when the runtime reproduces the file's logits on
the check images within fp32 rounding: the same function on the same images. Only a runtime that does not (or
a lossy file, whose export accuracy no reference logits vouch for here) runs the test split itself; a ResNet-50
pass over it took half of each measurement's time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from bench.harness.latency import RepsPolicy, cuda_clock, measure_latency, measure_paired, perf_clock
from bench.harness.memory import larger, release_freed_memory, rss_bytes, tracked_peak
from bench.records import BASELINE_RUNTIME
from bench.runtimes import Session, get_runtime
from prune.models import ModelSpec, add_resolved, example_input


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
    pair: Path | None = None  # the model's dense.pt at ratio 0, timed alongside; None: not exported
    pair_sha256: str | None = None
    spec: ModelSpec | None = None  # a model source's, so the child knows `model` by name; None: registry
    file_accuracy: float | None = None  # a lossless file's accuracy found at export; None: the child measures it
    max_diff: float = 0.0  # |logits - reference| up to which the runtime computes the file's function


def top1_accuracy(session: Session, test_data: Path, batch_size: int) -> float:
    """Top-1 percent on the saved test images, run through the session in batches of `batch_size`."""
    data = torch.load(test_data, mmap=True, weights_only=True)
    correct = 0
    for x, y in zip(data["x"].split(batch_size), data["y"].split(batch_size), strict=True):
        correct += int((session.forward(x.contiguous()).argmax(dim=1).cpu() == y).sum())
    return 100.0 * correct / len(data["y"])


def run_job(job: Job) -> dict:
    """Measure one artifact (runs in the child); a dict of the Record fields a child can know."""
    if job.spec is not None:
        add_resolved(job.spec)
    baseline = rss_bytes()
    runtime = get_runtime(job.runtime)
    cuda = runtime.device == "cuda"
    with tracked_peak(cuda) as loading:
        session = runtime.load(job.artifact, job.model, job.threads, job.sha256)
    for batch in job.batch_sizes:
        session.prepare(batch)
    release_freed_memory()
    inputs = {}
    with tracked_peak(cuda) as running:
        for batch in job.batch_sizes:
            session.prepare(batch)
            inputs[batch] = example_input(job.model, batch, job.seed).to(session.device)
            session.forward(inputs[batch])
        logits = session.forward(torch.from_numpy(job.check_input)).cpu().double().numpy()
    result = {"baseline_rss_bytes": baseline, "peak_rss_bytes": larger(loading.rss, running.rss),
              "cuda_peak_bytes": larger(loading.cuda, running.cuda),
              "param_bytes": session.param_bytes(), "max_abs_diff": float(np.abs(logits - job.reference).max()),
              "layer_choice": {str(b): c for b, c in getattr(session, "choices", {}).items()}}
    result["latency_ms"], result["paired_dense_ms"] = time_batches(job, session, inputs)
    result["logits_differ"] = job.file_accuracy is not None and result["max_abs_diff"] > job.max_diff
    result["accuracy"] = runtime_accuracy(job, session, result["logits_differ"])
    return result


def runtime_accuracy(job: Job, session: Session, logits_differ: bool) -> float | None:
    """The file's accuracy when the job has it and the runtime reproduced the file's logits, else top-1 over the
    test split through the session (None without one)."""
    if job.file_accuracy is not None and not logits_differ:
        return job.file_accuracy
    if job.test_data is None:
        return None
    return top1_accuracy(session, job.test_data, job.batch_sizes[-1])


def time_batches(job: Job, session: Session, inputs: dict[int, torch.Tensor]) -> tuple[dict, dict]:
    """Latency stats per batch size, and the p50 of the dense pair timed in alternation (when there is one)."""
    clock = cuda_clock if session.device == "cuda" else perf_clock
    pair = None
    if job.pair is not None:
        name = BASELINE_RUNTIME if session.device == "cpu" else f"{BASELINE_RUNTIME}-{session.device}"
        pair = get_runtime(name).load(job.pair, job.model, job.threads, job.pair_sha256)
    latency, paired = {}, {}
    for batch, x in inputs.items():
        session.prepare(batch)
        if pair is None:
            stats = measure_latency(lambda x=x: session.forward(x), job.reps, clock, batch)
            latency[str(batch)] = asdict(stats)
            continue
        own, base = measure_paired(lambda x=x: session.forward(x), lambda x=x: pair.forward(x), job.reps, clock,
                                   batch)
        latency[str(batch)], paired[str(batch)] = asdict(own), base.p50_ms
    return latency, paired
