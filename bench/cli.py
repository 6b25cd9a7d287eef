"""Argument parsing and stage dispatch for `python -m bench`; user errors become one line and exit status 2."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from prune.config import DEFAULT_METHODS, DEFAULT_RECOVERIES, STUDY_RATIOS, RunConfig, default_data_dir
from prune.errors import PrunebenchError
from prune.models import MODELS
from prune.sources import parse_input_shape, split_models

EXIT_FAILED = 1  # the run finished, but some measurement failed (listed at the end of the output)
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _names(text: str) -> tuple[str, ...]:
    """Comma- or space-separated names, each once, in the order given."""
    return tuple(dict.fromkeys(part for part in text.replace(" ", ",").split(",") if part))


def _ratios(text: str) -> tuple[float, ...]:
    """Comma-separated percentages, each once (50 and 50.0 are one ratio), in the order given."""
    try:
        return tuple(dict.fromkeys(float(part) for part in _names(text)))
    except ValueError:
        raise argparse.ArgumentTypeError(f"ratios must be numbers such as 0,50,90, got {text!r}") from None


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", type=split_models, default=tuple(MODELS),
                        help=f"comma-separated model names (default: all of {', '.join(MODELS)}) or model "
                             "sources: torchvision:<builder>, path/to/file.py:function or "
                             "package.module:function (importing the file or module runs its code)")
    parser.add_argument("--input-shape", default=None,
                        help="C,H,W of one sample of the model sources, such as 3,224,224 (required with "
                             "one)")
    parser.add_argument("--num-classes", type=int, default=1000,
                        help="classes of a torchvision:<builder> source's classifier (default: 1000)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="weights of the one model source: a state_dict, or a dict holding one under "
                             "'state_dict' or 'model' (loaded with weights_only; default: random weights)")
    parser.add_argument("--exclude", default=None,
                        help="regular expression of layer names a model source keeps dense besides its "
                             "classifier")
    parser.add_argument("--data", default=None,
                        help="the model sources' data: npz:FILE with x (N,C,H,W) and y (N), or x_train, "
                             "y_train, x_test, y_test; or imagefolder:DIR, a folder per class (DIR/train and "
                             "DIR/test or DIR/val when present), resized and centre-cropped to the input "
                             "shape (default: none, accuracy not measured)")
    parser.add_argument("--ratios", type=_ratios, default=STUDY_RATIOS,
                        help="comma-separated pruning ratios in percent (default: the study's ten)")
    parser.add_argument("--out", type=Path, default=Path("runs/latest"), help="output directory")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(), help="dataset directory")
    parser.add_argument("--download", action="store_true", help="download missing datasets (needs network)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default="quick", help="smoke, quick or paper")
    parser.add_argument("--schedule", default="oneshot", help="oneshot or iterative pruning")
    parser.add_argument("--tolerance", type=float, default=1.0,
                        help="accuracy points below dense that the best pruned model may lose")
    parser.add_argument("--methods", type=_names, default=None,
                        help=f"comma-separated pruning methods (default: the preset's, on quick "
                             f"{','.join(DEFAULT_METHODS)}, for ResNet-50 without global-l1)")
    parser.add_argument("--recovery", dest="recoveries", type=_names, default=None,
                        help=f"comma-separated recoveries after pruning (default: the preset's, on quick "
                             f"{','.join(DEFAULT_RECOVERIES)} for the LeNets and none,bn for the ResNets)")
    parser.add_argument("--finetune-epochs", type=int, default=None,
                        help="epochs of the finetune recovery (default: the preset's)")
    parser.add_argument("--compare-ratios", type=_ratios, default=None,
                        help="ratios of every method and recovery but the study's l1-unstructured+none, which "
                             "runs at --ratios (default: the preset's, on quick 50,90,95 for the LeNets and 50 for "
                             "the ResNets)")
    parser.add_argument("--codebook-bits", type=int, default=None,
                        help="index bits of the codebook format, 1-8 (default: per model and ratio, the fewest "
                             "whose top-1 agrees with the pruned model's within --tolerance)")
    parser.add_argument("--latency-ratios", type=_ratios, default=None,
                        help="the study's ratios whose artifacts stay on disk and are timed, besides 0 and the "
                             "compare ratios; sizes and accuracy cover every ratio, the lossy formats' the timed ones "
                             "(default: the preset's, on quick all for the LeNets, 0,90,99 for ResNet-18 and 0,99 "
                             "for ResNet-50)")
    parser.add_argument("--keep-artifacts", action="store_true",
                        help="keep every artifact file after measuring it (default: only packed.pt, codebook.pt "
                             "and model.int8.onnx stay; export rebuilds the others from the pruned checkpoint, "
                             "and with this option rebuilds the ones an earlier measure removed)")


def _measure_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runtimes", type=_names, default=None, help="comma-separated runtimes (default: all)")
    parser.add_argument("--batch-size", type=int, default=None, help="larger batch timed next to batch 1")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads for torch and onnxruntime")


def build_parser() -> argparse.ArgumentParser:
    """The `python -m bench` parser: one subcommand per stage, plus `all`, `compare` and `regress`."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in [
        ("train", "train the dense models"),
        ("prune", "prune with every method and recovery (trains first when no checkpoint exists)"),
        ("export", "make pruning permanent and write every artifact format"),
        ("measure", "measure size, memory, latency and accuracy of every artifact"),
        ("report", "write report.md and plots and print the console report"),
        ("all", "train -> prune -> export -> measure -> report"),
    ]:
        stage = sub.add_parser(name, help=help_text)
        _common(stage)
        if name in ("measure", "all"):
            _measure_options(stage)
        if name in ("report", "all"):
            stage.add_argument("--detail", action="store_true",
                               help="also print every full table of report.md, not only the summary per model")
    compare = sub.add_parser("compare", help="compare two runs' results.json, record by record")
    from bench.compare.command import add_arguments as add_compare_arguments

    add_compare_arguments(compare)
    regress = sub.add_parser("regress", help="run the benchmark suite and compare with the newest saved run")
    from bench.regress import add_arguments

    add_arguments(regress)
    return parser


def run_config(args: argparse.Namespace) -> RunConfig:
    """The RunConfig the parsed options describe (validated)."""
    from prune.presets import get_preset

    get_preset(args.preset)
    return RunConfig(models=args.models, ratios=args.ratios, out=args.out, data_dir=args.data_dir,
                     download=args.download, device=args.device, seed=args.seed, preset=args.preset,
                     schedule=args.schedule, tolerance=args.tolerance, methods=args.methods,
                     recoveries=args.recoveries, finetune_epochs=args.finetune_epochs,
                     compare_ratios=args.compare_ratios, latency_ratios=args.latency_ratios,
                     codebook_bits=args.codebook_bits, keep_artifacts=args.keep_artifacts,
                     num_classes=args.num_classes,
                     checkpoint=args.checkpoint, exclude=args.exclude, data=args.data,
                     input_shape=None if args.input_shape is None else parse_input_shape(args.input_shape))


def measure_config(args: argparse.Namespace):
    """The MeasureConfig the parsed options describe (validated)."""
    from bench.config import MeasureConfig

    return MeasureConfig(runtimes=args.runtimes, batch_size=args.batch_size, threads=args.threads)


def dispatch(args: argparse.Namespace, console: Console) -> int:
    """Run the chosen subcommand; returns the exit status (1 when any measurement failed, listed last)."""
    if args.command == "regress":
        from bench.regress import run_regress

        return run_regress(args, console)
    if args.command == "compare":
        from bench.compare.command import run_compare

        return run_compare(args, console)
    cfg = run_config(args)
    stages = {"train": ("train",), "prune": ("prune",), "export": ("export",), "measure": ("measure",),
              "report": ("report",), "all": ("prune", "export", "measure", "report")}[args.command]
    failed = [line for stage in stages for line in STAGES[stage](cfg, args, console)]
    if not failed:
        return 0
    console.print(f"[bold red]{len(failed)} measurement(s) failed[/] (their records hold the error):")
    for line in failed:
        console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
    return EXIT_FAILED


def _train(cfg: RunConfig, args: argparse.Namespace, console: Console) -> list[str]:
    from prune.train import run_train

    run_train(cfg, console)
    return []


def _prune(cfg: RunConfig, args: argparse.Namespace, console: Console) -> list[str]:
    from prune.sweep import run_sweep

    run_sweep(cfg, console)
    return []


def _export(cfg: RunConfig, args: argparse.Namespace, console: Console) -> list[str]:
    from export.stage import run_export

    run_export(cfg, console)
    return []


def _measure(cfg: RunConfig, args: argparse.Namespace, console: Console) -> list[str]:
    from bench.harness.measure import failures, run_measure

    return failures(run_measure(cfg, measure_config(args), console), cfg.out)


def _report(cfg: RunConfig, args: argparse.Namespace, console: Console) -> list[str]:
    from bench.report.stage import run_report

    run_report(cfg.out, console)
    if args.detail:
        from bench.report.console import print_detail
        from bench.report.data import load_results

        print_detail(load_results(cfg.out), console)
    return []


STAGES = {"train": _train, "prune": _prune, "export": _export, "measure": _measure, "report": _report}


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, dispatch, and turn user errors into one line on stderr with exit status 2."""
    console = Console()
    errors = Console(stderr=True)
    try:
        args = build_parser().parse_args(argv)
        return dispatch(args, console)
    except PrunebenchError as exc:
        errors.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        errors.print("interrupted; finished stages and artifacts are kept - rerun the same command to resume")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
