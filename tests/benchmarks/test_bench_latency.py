"""Inference latency of every model x ratio x runtime x batch size, timed by pytest-benchmark's fixture."""

from bench_build import BuiltSuite
from bench_plan import SEED, LatencyCase, SuitePlan

from bench.runtimes import get_runtime
from prune.models import example_input


def test_inference_latency(benchmark, built: BuiltSuite, plan: SuitePlan, latency_case: LatencyCase):
    case = latency_case
    runtime = get_runtime(plan.timed_runtime(case.runtime))
    entry = built.entry(case.model, case.ratio, runtime.format)
    record = built.records[case.model, case.ratio, runtime.name]
    assert record.error is None, f"the harness failed to measure {runtime.name}: {record.error}"
    session = runtime.load(built.path(case.model, case.ratio, runtime.format), case.model, plan.threads,
                           entry["sha256"])
    session.prepare(case.batch)
    x = example_input(case.model, case.batch, SEED).to(session.device)
    session.forward(x)  # warm-up: first-call allocations are no part of the latency
    benchmark.group = f"{case.model} batch {case.batch}"
    benchmark.extra_info.update(built.figures(
        plan, case.model, case.ratio, runtime.format, runtime=case.runtime, batch=case.batch,
        param_bytes=session.param_bytes(), peak_rss_bytes=record.peak_rss_bytes,
        accuracy=record.accuracy).to_dict())
    logits = benchmark(session.forward, x)
    assert tuple(logits.shape) == (case.batch, 10)
