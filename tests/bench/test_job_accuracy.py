"""Where a measurement's accuracy comes from: the file's, found at export, when the runtime reproduces the file's
logits; the runtime's own pass over the test split when it does not."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from bench.harness.job import run_job
from prune.io import torch_save

LABELS = torch.tensor([0, 0, 0, 1, 2, 3, 4, 5])  # a model answering class 0 everywhere is right on 3 of 8
EXPORT_ACCURACY = 42.0


@dataclass
class ZeroSession:
    """Logits of zeros: top-1 is class 0 for every image."""

    device: str = "cpu"

    def prepare(self, batch_size: int) -> None:
        """Nothing to prepare."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(x), 10)

    def param_bytes(self) -> int:
        return 0


def job_with_test_split(fake_job, tmp_path, reference_value: float):
    test_data = tmp_path / "test.pt"
    torch_save(test_data, {"x": torch.zeros(len(LABELS), 1, 28, 28), "y": LABELS})
    job = fake_job(lambda path, model, threads, device, sha256: ZeroSession())
    return dataclasses.replace(job, test_data=test_data, reference=np.full_like(job.reference, reference_value),
                               file_accuracy=EXPORT_ACCURACY, max_diff=1e-5)


def test_a_runtime_reproducing_the_files_logits_reports_the_files_accuracy(fake_job, tmp_path):
    result = run_job(job_with_test_split(fake_job, tmp_path, reference_value=0.0))
    assert (result["accuracy"], result["logits_differ"]) == (EXPORT_ACCURACY, False)


def test_a_runtime_whose_logits_differ_measures_accuracy_on_the_test_split(fake_job, tmp_path):
    result = run_job(job_with_test_split(fake_job, tmp_path, reference_value=1.0))
    assert (result["accuracy"], result["logits_differ"]) == (100.0 * 3 / 8, True)


def test_a_lossy_file_is_measured_on_the_test_split_whatever_its_logits(fake_job, tmp_path):
    job = dataclasses.replace(job_with_test_split(fake_job, tmp_path, reference_value=0.0), file_accuracy=None)
    result = run_job(job)
    assert (result["accuracy"], result["logits_differ"]) == (100.0 * 3 / 8, False)
