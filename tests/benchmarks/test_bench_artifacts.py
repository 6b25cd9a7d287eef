"""Export time and load time of every artifact format, timed by pytest-benchmark's fixture."""

from bench_build import BuiltSuite, write_fresh
from bench_plan import SEED, ArtifactCase, SuitePlan

from bench.runtimes import set_threads
from export.formats import FORMATS
from export.verify import LOGITS
from prune.models import example_input


def test_export_time(benchmark, built: BuiltSuite, plan: SuitePlan, artifact_case: ArtifactCase, tmp_path):
    case, fmt = artifact_case, FORMATS[artifact_case.format]
    pruned = built.pruned(case.model, case.ratio)
    path = tmp_path / fmt.filename
    set_threads(plan.threads)
    benchmark.group = f"{case.model} export"
    benchmark.extra_info.update(built.figures(plan, case.model, case.ratio, fmt.name).to_dict())
    benchmark(write_fresh, fmt, pruned, path)
    assert path.stat().st_size == built.entry(case.model, case.ratio, fmt.name)["bytes"]


def test_load_time(benchmark, built: BuiltSuite, plan: SuitePlan, artifact_case: ArtifactCase):
    case, fmt = artifact_case, FORMATS[artifact_case.format]
    entry = built.entry(case.model, case.ratio, fmt.name)
    set_threads(plan.threads)
    benchmark.group = f"{case.model} load"
    benchmark.extra_info.update(built.figures(plan, case.model, case.ratio, fmt.name).to_dict())
    path = built.path(case.model, case.ratio, fmt.name)
    loaded = benchmark(fmt.load, path, case.model, sha256=entry["sha256"])
    logits = LOGITS[fmt.kind](loaded, example_input(case.model, 2, SEED))
    assert tuple(logits.shape) == (2, 10)
