"""Export and load time of every artifact format, timed by pytest-benchmark's fixture, and their ratios to
writing and loading the model's dense format at ratio 0, timed in alternating blocks (for `bench regress`)."""

from bench_build import BuiltSuite, write_fresh
from bench_pairing import record_pairing
from bench_plan import SEED, ArtifactCase, SuitePlan

from bench.runtimes import set_threads
from export.formats import FORMATS
from export.verify import LOGITS
from prune.models import example_input, get_model_spec


def test_export_time(benchmark, built: BuiltSuite, plan: SuitePlan, artifact_case: ArtifactCase, tmp_path):
    case, reference_case = artifact_case, artifact_case.reference()
    fmt, reference_fmt = FORMATS[case.format], FORMATS[reference_case.format]
    pruned = built.pruned(case.model, case.ratio)
    reference_pruned = built.pruned(case.model, reference_case.ratio)
    path, reference_path = tmp_path / fmt.filename, tmp_path / f"reference-{reference_fmt.filename}"
    set_threads(plan.threads)
    benchmark.group = f"{case.model} export"
    benchmark.extra_info.update(built.figures(plan, case.model, case.ratio, fmt.name).to_dict())
    benchmark(write_fresh, fmt, pruned, path)
    assert path.stat().st_size == built.entry(case.model, case.ratio, fmt.name)["bytes"]
    record_pairing(benchmark, reference_case.id(plan.preset), lambda: write_fresh(fmt, pruned, path),
                   lambda: write_fresh(reference_fmt, reference_pruned, reference_path), plan.pair_seconds)


def test_load_time(benchmark, built: BuiltSuite, plan: SuitePlan, artifact_case: ArtifactCase):
    case, reference_case = artifact_case, artifact_case.reference()
    fmt, reference_fmt = FORMATS[case.format], FORMATS[reference_case.format]
    entry = built.entry(case.model, case.ratio, fmt.name)
    reference_entry = built.entry(case.model, reference_case.ratio, reference_fmt.name)
    set_threads(plan.threads)
    benchmark.group = f"{case.model} load"
    benchmark.extra_info.update(built.figures(plan, case.model, case.ratio, fmt.name).to_dict())
    path = built.path(case.model, case.ratio, fmt.name)
    reference_path = built.path(case.model, reference_case.ratio, reference_fmt.name)
    loaded = benchmark(fmt.load, path, case.model, sha256=entry["sha256"])
    logits = LOGITS[fmt.kind](loaded, example_input(case.model, 2, SEED))
    assert tuple(logits.shape) == (2, get_model_spec(case.model).num_classes)
    record_pairing(benchmark, reference_case.id(plan.preset),
                   lambda: fmt.load(path, case.model, sha256=entry["sha256"]),
                   lambda: reference_fmt.load(reference_path, case.model, sha256=reference_entry["sha256"]),
                   plan.pair_seconds)
