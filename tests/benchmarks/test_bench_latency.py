"""Inference latency of every model x ratio x runtime x batch size, timed by pytest-benchmark's fixture, and
its ratio to the model's dense model at ratio 0, timed in alternating blocks (what `bench regress` reads)."""

from bench_build import BuiltSuite
from bench_pairing import record_pairing
from bench_plan import SEED, LatencyCase, SuitePlan

from bench.runtimes import Runtime, Session, get_runtime
from prune.models import example_input, get_model_spec


def open_session(built: BuiltSuite, plan: SuitePlan, case: LatencyCase, runtime: Runtime) -> Session:
    """`runtime` loaded on the artifact of `case` and prepared for its batch size."""
    entry = built.entry(case.model, case.ratio, runtime.format)
    session = runtime.load(built.path(case.model, case.ratio, runtime.format), case.model, plan.threads,
                           entry["sha256"])
    session.prepare(case.batch)
    return session


def test_inference_latency(benchmark, built: BuiltSuite, plan: SuitePlan, latency_case: LatencyCase):
    case, reference_case = latency_case, latency_case.reference()
    runtime = get_runtime(plan.timed_runtime(case.runtime))
    record = built.records[case.model, case.ratio, runtime.name]
    assert record.error is None, f"the harness failed to measure {runtime.name}: {record.error}"
    session = open_session(built, plan, case, runtime)
    reference = open_session(built, plan, reference_case, get_runtime(reference_case.runtime))
    x = example_input(case.model, case.batch, SEED).to(session.device)
    session.forward(x)  # warm-up: first-call allocations are no part of the latency
    benchmark.group = f"{case.model} batch {case.batch}"
    benchmark.extra_info.update(built.figures(
        plan, case.model, case.ratio, runtime.format, runtime=case.runtime, batch=case.batch,
        param_bytes=session.param_bytes(), peak_rss_bytes=record.peak_rss_bytes,
        accuracy=record.accuracy).to_dict())
    logits = benchmark(session.forward, x)
    assert tuple(logits.shape) == (case.batch, get_model_spec(case.model).num_classes)
    record_pairing(benchmark, reference_case.id(plan.preset), lambda: session.forward(x),
                   lambda: reference.forward(x), plan.pair_seconds)
