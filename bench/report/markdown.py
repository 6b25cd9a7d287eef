"""`<out>/report.md`: the verdict and contents first, then environment, preset, commands, findings, the comparison
of methods, plots and every table, built from the records."""

from __future__ import annotations

import json
from pathlib import Path

from bench.report.findings import Finding
from bench.report.int8 import int8_table
from bench.report.ladder import ladder_table
from bench.report.methods import batchnorm_lines, method_notes, methods_table
from bench.report.data import RESULTS_FILE, RunResults
from bench.report.detail import GZIP_NOTE, gzip_table, latency_detail_table
from bench.report.paths import path_roots, relative_paths, shown_out
from bench.report.tables import (MISSING, UNSTABLE_LEGEND, FigureTable, accuracy_images_text, accuracy_notes,
                                 fmt_ratio, model_tables)
from bench.report.verdict import ship_lines, ship_this
from prune.config import RunConfig

# results.json config keys -> `python -m bench` options, in the order the command line shows them
OPTIONS = (("models", "--models"), ("ratios", "--ratios"), ("preset", "--preset"), ("schedule", "--schedule"),
           ("seed", "--seed"), ("tolerance", "--tolerance"), ("device", "--device"), ("methods", "--methods"),
           ("recoveries", "--recovery"), ("compare_ratios", "--compare-ratios"),
           ("latency_ratios", "--latency-ratios"), ("finetune_epochs", "--finetune-epochs"),
           ("codebook_bits", "--codebook-bits"),
           ("runtimes", "--runtimes"), ("batch_size", "--batch-size"), ("threads", "--threads"))


def flat_config(config: dict) -> dict:
    """The config with nested sections (e.g. the measure options) lifted to `section.key` entries."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def _option_value(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(fmt_ratio(v) if isinstance(v, (int, float)) else str(v) for v in value)
    return fmt_ratio(value) if isinstance(value, float) else str(value)


def commands(config: dict, out: Path | str) -> list[str]:
    """The command lines that reproduce this run and this report, with `out` as the run directory."""
    flat = {key.rsplit(".", 1)[-1]: value for key, value in flat_config(config).items()}
    args = [f"{flag} {_option_value(flat[key])}" for key, flag in OPTIONS
            if flat.get(key) not in (None, [], "")]
    if flat.get("download"):
        args.append("--download")
    return [" ".join(["python -m bench all", *args, f"--out {out}"]), f"python -m bench report --out {out}"]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def key_value_table(data: dict) -> list[str]:
    """A two-column markdown table; nested values as compact JSON."""
    lines = ["| key | value |", "|---|---|"]
    for key, value in data.items():
        shown = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
        lines.append(f"| {_cell(str(key))} | {_cell(shown)} |")
    return lines


def markdown_table(table: FigureTable) -> list[str]:
    """A FigureTable in markdown; best cells in bold."""
    lines = [f"**{table.title}**", "",
             "| " + " | ".join([table.row_header, *(c.header for c in table.columns)]) + " |",
             "|" + "---:|" * (len(table.columns) + 1)]
    for i, row in enumerate(table.rows):
        cells = [f"**{c.cells[i].text}**" if c.cells[i].best else c.cells[i].text for c in table.columns]
        lines.append("| " + " | ".join([row, *cells]) + " |")
    if table.caption:
        lines += ["", f"_{table.caption}_"]
    return lines + [""]


def sweep_table(sweeps: dict[str, dict]) -> list[str]:
    """Training and data per model, from the sweep records."""
    lines = ["| model | dataset | train / test samples | trained | dense accuracy % | best ratio % | note |",
             "|---|---|---|---|---:|---:|---|"]
    for model, sweep in sweeps.items():
        data = sweep.get("dataset") or {}
        sizes = f"{data.get('train_size', MISSING)} / {data.get('test_size', MISSING)}" if data else MISSING
        dense = sweep.get("dense_accuracy")
        best = sweep.get("best_ratio")
        dense_text = MISSING if dense is None else f"{dense:.2f}"
        best_text = MISSING if best is None else fmt_ratio(best)
        lines.append(f"| {model} | {data.get('source', 'none')} | {sizes} | {sweep.get('trained')} | "
                     f"{dense_text} | {best_text} | {_cell(sweep.get('accuracy_note') or '')} |")
    return lines


def model_section(results: RunResults, model: str) -> list[str]:
    """One model's tables: the compact ones, gzip sizes, and the latency detail folded away."""
    lines = [f"## {model}", "", f"{accuracy_images_text(results, model).capitalize()}.", ""]
    lines += [f"Accuracy n/a: {note}" for note in accuracy_notes(results, model)]
    lines += [""] if accuracy_notes(results, model) else []
    for table in [*model_tables(results, model), gzip_table(results, model)]:
        lines += markdown_table(table)
    if results.batches(model):
        lines += ["<details><summary>Latency detail: p95, IQR and throughput of every record</summary>", "",
                  *markdown_table(latency_detail_table(results, model)), "</details>", ""]
    if results.record_notes(model):
        lines += ["Per-measurement notes:", ""]
        lines += [f"- {line}" for line in results.record_notes(model)] + [""]
    return lines


def verdict_section(results: RunResults) -> list[str]:
    """What to ship per model, over every record: the section report.md opens with."""
    tolerance = float(results.config.get("tolerance", RunConfig.tolerance))
    lines = ["## Ship this", "",
             f"Per model: the lowest batch-1 p50 latency and the smallest file within {tolerance:g} accuracy points "
             "of the dense model, over every method, recovery, ratio and runtime measured.", ""]
    lines += [f"- {line}" for model in results.models() for line in ship_lines(ship_this(results, model, tolerance))]
    return lines + [""]


def anchor(heading: str) -> str:
    """The link target GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return "".join(ch for ch in heading.lower() if ch.isalnum() or ch in " -_").replace(" ", "-")


def contents(lines: list[str]) -> list[str]:
    """A table of contents: one link per second-level heading of `lines`."""
    return [f"- [{line[3:]}](#{anchor(line[3:])})" for line in lines if line.startswith("## ")]


def comparison_section(results: RunResults, out: Path, missing_plots: list[str]) -> list[str]:
    """The table of methods and recoveries, and the BatchNorm test, from every record."""
    lines = ["## Methods and recovery", ""]
    for model in results.models():
        lines += markdown_table(methods_table(results, model))
        notes = method_notes(results, out, model)
        lines += [*(f"- {model}, {note}" for note in notes), ""] if notes else []
    bn = batchnorm_lines(results, out)
    if bn:
        lines += ["BatchNorm statistics re-estimated after pruning (`bn`), against none:", ""]
        lines += [f"- {line}" for line in bn] + [""]
    if missing_plots:
        lines += ["Trade-off plots not drawn:", "", *[f"- {reason}" for reason in missing_plots], ""]
    return lines


def int8_section(results: RunResults) -> list[str]:
    """int8 ONNX against the fp32 graph of the same pruned model, per model the int8 runtime measured."""
    return tables_section("int8 ONNX", [int8_table(results, model) for model in results.models()])


def tables_section(heading: str, tables: list[FigureTable | None]) -> list[str]:
    """A second-level section of the tables that exist; nothing when none does."""
    found = [table for table in tables if table is not None]
    return [f"## {heading}", "", *(line for table in found for line in markdown_table(table))] if found else []


def ladder_section(results: RunResults) -> list[str]:
    """Per model, Deep Compression's ladder: dense, pruned lossless, shared weights, int8."""
    tolerance = float(results.config.get("tolerance", RunConfig.tolerance))
    return tables_section("Size ladder", [ladder_table(results, model, tolerance) for model in results.models()])


def render_markdown(results: RunResults, items: list[Finding], sweeps: dict[str, dict],
                    plots: list[Path], out: Path, missing_plots: list[str] = ()) -> str:
    """The whole report.md text, opening with the verdict and a table of contents; absolute paths shown relative
    to the run directory or home.

    `results` holds every variant: the comparison sections read all of it, the study's sections its own records.
    """
    verdict = verdict_section(results)
    comparison = comparison_section(results, out, list(missing_plots)) + ladder_section(results) + \
        int8_section(results)
    results = results.study()
    lines = [f"Built only from `{RESULTS_FILE}` ({len(results.records)} records) and the sweep records by "
             "`python -m bench report`. Bold marks the best cell of each column: lowest size, memory and "
             "latency (ranked by the ratio to dense); highest accuracy. `x` figures are ratios to the same "
             f"model's dense figure at ratio 0. {UNSTABLE_LEGEND}. {GZIP_NOTE}. Paths are relative to the "
             "run directory (`.` when it was given as an absolute path) or to home (`~`).",
             "",
             "## Environment", "", *key_value_table(results.environment), "",
             "## Configuration", "", f"Preset: **{results.config.get('preset', MISSING)}**", "",
             *key_value_table(flat_config(results.config)), "",
             "## Commands", "", "```sh", *commands(results.config, shown_out(out)), "```", "",
             "## Findings", ""]
    for n, finding in enumerate(items, 1):
        lines += [f"{n}. **{finding.topic.capitalize()}.** {finding.overhead}", f"   {finding.remedy}", ""]
    lines += comparison
    lines += ["## Plots", ""]
    lines += [f"![{p.stem.replace('_', ' ')}](plots/{p.name})" for p in plots] + [""]
    if sweeps:
        lines += ["## Training and data", "", *sweep_table(sweeps), ""]
    notes = {runtime: found for runtime, found in results.runtime_notes().items() if found}
    if notes:
        lines += ["## Runtime notes", ""]
        lines += [f"- **{rt}**: {'; '.join(found)}" for rt, found in notes.items()] + [""]
    if results.failures():
        lines += ["## Failed measurements", "", "Shown as `-` in the tables.", ""]
        lines += [f"- {r.model} at {fmt_ratio(r.ratio)}% {r.runtime}: {_cell(r.error or '')}"
                  for r in results.failures()] + [""]
    for model in results.models():
        lines += model_section(results, model)
    lines = ["# prunebench report", "", *verdict, "## Contents", "", *contents(lines), "", *lines]
    return relative_paths("\n".join(lines).rstrip() + "\n", path_roots(results.config, out))
