"""The run configuration shared by every stage, and where each stage's outputs live under --out."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from prune.errors import UsageError
from prune.models import get_model_spec, is_source
from prune.presets import DEFAULT_METHODS, DEFAULT_RECOVERIES, get_preset
from prune.registry import position
from prune.sources import ModelSource, register_source
from prune.user_data import data_spec
from prune.user_checkpoint import load_user_checkpoint

STUDY_RATIOS: tuple[float, ...] = (0, 25, 50, 60, 70, 80, 90, 95, 97, 99)  # percent of each prunable layer zeroed
SCHEDULES = ("oneshot", "iterative")
DEFAULT_METHOD, DEFAULT_RECOVERY = "l1-unstructured", "none"  # the study's protocol, the default variant
DEVICES = ("auto", "cpu", "cuda")
MAX_CODEBOOK_BITS = 8  # codebook indices are stored a byte each before entropy coding


def default_data_dir() -> Path:
    """Datasets live in the user's cache directory unless --data-dir says otherwise."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "prunebench" / "data"


@dataclass(frozen=True, order=True)
class Variant:
    """How a model was pruned and recovered: a method of prune.methods and a recovery of prune.recovery."""

    method: str = DEFAULT_METHOD
    recovery: str = DEFAULT_RECOVERY

    @property
    def tag(self) -> str:
        """Directory and label form, e.g. 'l1-structured+bn'."""
        return f"{self.method}+{self.recovery}"

    @property
    def order(self) -> tuple[int, int]:
        """Where the variant stands in the defaults (methods, then recoveries, as registered); others last."""
        return (position(self.method, DEFAULT_METHODS), position(self.recovery, DEFAULT_RECOVERIES))

    @property
    def is_study(self) -> bool:
        """True for the study's protocol (l1-unstructured, no recovery): its ratio 0 is the dense model."""
        return self == STUDY


STUDY = Variant()


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a run's outputs; stages record it next to what they write."""

    models: tuple[str, ...]
    ratios: tuple[float, ...] = STUDY_RATIOS
    out: Path = Path("runs/latest")
    data_dir: Path = field(default_factory=default_data_dir)
    download: bool = False  # fetch missing datasets through torchvision (needs network)
    device: str = "auto"  # auto: cuda when available, else cpu
    seed: int = 0
    preset: str = "quick"  # smoke | quick | paper (prune.presets)
    schedule: str = "oneshot"  # oneshot: each ratio from the dense model; iterative: from the previous ratio
    tolerance: float = 1.0  # accuracy points below dense that still count as "no loss" for the best ratio
    # pruning methods and recoveries compared (prune.methods, prune.recovery); the command line's defaults are
    # the preset's methods x recoveries per model, a RunConfig's the study's protocol alone
    methods: tuple[str, ...] | None = (DEFAULT_METHOD,)  # None: the preset's per model (compare_methods)
    recoveries: tuple[str, ...] | None = (DEFAULT_RECOVERY,)  # None: the preset's per model (compare_recoveries)
    finetune_epochs: int | None = None  # epochs of the finetune recovery; None: the preset's
    compare_ratios: tuple[float, ...] | None = None  # ratios of every variant but the study's; None: the preset's
    latency_ratios: tuple[float, ...] | None = None  # the study's ratios timed; None: the preset's (0 always is)
    codebook_bits: int | None = None  # index bits of the codebook format; None: the fewest within tolerance
    keep_artifacts: bool = False  # keep every timed file after measuring (else only those in bench KEPT_FORMATS)
    # model sources (prune.sources) among `models`: their example input, a torchvision builder's classes, the
    # weights of the one source (else random), and the layers they keep dense besides the classifier
    input_shape: tuple[int, int, int] | None = None  # (C, H, W); required when `models` holds a source
    num_classes: int = 1000  # torchvision's default
    checkpoint: Path | None = None
    exclude: str | None = None  # regular expression of layer names (re.search)
    data: str | None = None  # the sources' data, KIND:PATH (prune.user_data.DATA_KINDS); None: no accuracy

    def __post_init__(self) -> None:
        self._resolve_sources()
        for name in self.models:
            get_model_spec(name)
        if not self.models:
            raise UsageError("no models given; pass --models with at least one name")
        for ratio in (*self.ratios, *(self.compare_ratios or ()), *(self.latency_ratios or ())):
            if not 0 <= ratio < 100:
                raise UsageError(f"ratio {ratio:g} outside [0, 100); pass percentages such as --ratios 0,50,90")
        if self.schedule not in SCHEDULES:
            raise UsageError(f"unknown schedule {self.schedule!r}; choose from {', '.join(SCHEDULES)}")
        if self.device not in DEVICES:
            raise UsageError(f"unknown device {self.device!r}; choose from {', '.join(DEVICES)}")
        if self.finetune_epochs is not None and self.finetune_epochs < 1:
            raise UsageError(f"--finetune-epochs {self.finetune_epochs} is below 1; pass a whole number of "
                             "epochs >= 1 (or --recovery without finetune)")
        from prune.methods import get_method  # deferred: the registries import this module's neighbours
        from prune.recovery import get_recovery

        for name in self.methods or ():
            get_method(name)
        for name in self.recoveries or ():
            get_recovery(name)
        if self.methods == () or self.recoveries == ():
            raise UsageError("no methods or no recoveries given; pass at least one name to each")
        if self.codebook_bits is not None and not 1 <= self.codebook_bits <= MAX_CODEBOOK_BITS:
            raise UsageError(f"--codebook-bits {self.codebook_bits} outside 1-{MAX_CODEBOOK_BITS}; pass a whole "
                             "number of bits, or leave it out for the fewest within --tolerance")
        if self.tolerance < 0:
            raise UsageError(f"tolerance {self.tolerance:g} is negative; pass accuracy points >= 0")

    def _resolve_sources(self) -> None:
        """Build each model source once, check its input shape (and the checkpoint's keys and shapes) and make
        it known by name to every stage of this process, before anything runs."""
        sources = [name for name in self.models if is_source(name)]
        if (self.checkpoint or self.exclude or self.input_shape or self.data) and not sources:
            raise UsageError("--input-shape, --checkpoint, --exclude and --data apply to model sources only; "
                             "pass one in --models, such as torchvision:mobilenet_v3_small")
        if self.checkpoint is not None and len(sources) != 1:
            raise UsageError(f"--checkpoint holds one model's weights; --models names {len(sources)} sources")
        for name in sources:
            spec = register_source(self.model_source(name))
            if self.checkpoint is not None:
                load_user_checkpoint(spec.build(), self.checkpoint, f"model {name!r}")
        named: dict[str, str] = {}
        for name in self.models:
            other = named.setdefault(safe_dirname(name), name)
            if other != name:
                raise UsageError(f"models {other!r} and {name!r} would both write under "
                                 f"{safe_dirname(name)!r}; rename one file or function")

    def model_source(self, name: str) -> ModelSource:
        """The model source `name` of `models` with the options that shape it."""
        if self.input_shape is None:
            raise UsageError(f"model {name!r} needs --input-shape C,H,W, such as 3,224,224")
        data = None if self.data is None else data_spec(self.data, self.input_shape)
        return ModelSource(name, self.input_shape, self.num_classes, self.exclude, data)

    def skipped_recoveries(self, model: str) -> dict[str, str]:
        """The run's recoveries that do not apply to `model`'s architecture (bn without BatchNorm), each with
        why: left out of its variants, not exported and measured as a copy of none."""
        from prune.recovery import skipped_recoveries  # deferred: the registries import this module's neighbours

        asked = self.recoveries or get_preset(self.preset).settings(model).compare_recoveries
        skipped = skipped_recoveries(model)
        return {name: skipped[name] for name in asked if name in skipped}

    def variants(self, model: str) -> dict[Variant, tuple[float, ...]]:
        """Every method x recovery of the run on `model` with its ratios, the study's first.

        The study's variant runs at `ratios`; the others at `compare_ratios`, else the preset's for the model
        (ratio 0 left out: unpruned, every variant is the dense model). Without the study's variant in the grid,
        its ratio 0 still runs: it is the dense model every figure is compared with. A recovery that does not
        apply to the architecture (skipped_recoveries) is left out.
        """
        settings = get_preset(self.preset).settings(model)
        compare = tuple(r for r in self.compare_ratios or settings.compare_ratios if r > 0)
        skipped = self.skipped_recoveries(model)
        grid = {Variant(m, r): compare for m in self.methods or settings.compare_methods
                for r in self.recoveries or settings.compare_recoveries if r not in skipped}
        study = self.ratios if STUDY in grid else (0.0,)
        return {STUDY: study, **{v: ratios for v, ratios in grid.items() if v != STUDY}}

    def is_timed(self, model: str, variant: Variant, ratio: float) -> bool:
        """True when (model, variant, ratio) is timed: every variant but the study's, whose timed ratios are
        `latency_ratios` (else the preset's for the model; None: all), 0 (the dense model) and the ratios the
        other variants run at (so each has the study's model at its ratio beside it)."""
        timed = self.latency_ratios or get_preset(self.preset).settings(model).latency_ratios
        compared = {r for v, ratios in self.variants(model).items() if not v.is_study for r in ratios}
        return not variant.is_study or timed is None or ratio == 0 or ratio in timed or ratio in compared

    def to_dict(self) -> dict:
        """JSON-serialisable form (paths as strings)."""
        return {k: str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v
                for k, v in asdict(self).items()}


def safe_dirname(name: str) -> str:
    """`name` as a single directory name: separators, ':' and other characters become '-', '..' and leading
    dots go, so a model source cannot point outside --out (torchvision:resnet50 -> torchvision-resnet50)."""
    parts = (re.sub(r"\.{2,}", ".", part).strip(".-") for part in re.split(r"[^A-Za-z0-9_.-]+", name))
    safe = "-".join(part for part in parts if part)
    if not safe:
        raise UsageError(f"model {name!r} gives no directory name; name the file and function with letters")
    return safe


def ratio_tag(ratio: float) -> str:
    """Directory/file tag of a ratio: 90 -> 'r90', 99.5 -> 'r99.5'."""
    return f"r{ratio:g}"


def variant_dir(root: Path, model: str, variant: Variant) -> Path:
    """`root`/model for the study's variant (the layout before methods existed), else `root`/model/<tag>."""
    directory = Path(root) / safe_dirname(model)
    return directory if variant.is_study else directory / variant.tag


def checkpoint_path(out: Path, model: str) -> Path:
    """Trained dense weights of `model`."""
    return Path(out) / "checkpoints" / f"{safe_dirname(model)}.pt"


def sweep_path(out: Path, model: str, variant: Variant = STUDY) -> Path:
    """Per-ratio records of the pruning sweep of `model` under `variant`."""
    if variant.is_study:
        return Path(out) / "sweep" / f"{safe_dirname(model)}.json"
    return Path(out) / "sweep" / safe_dirname(model) / f"{variant.tag}.json"


def pruned_path(out: Path, model: str, ratio: float, variant: Variant = STUDY) -> Path:
    """The pruned model of `model` at `ratio` under `variant`: a masked state_dict (weight_orig and weight_mask)
    or a structured method's smaller dense state_dict, stored against `base_path` (prune.pruned_io)."""
    return variant_dir(Path(out) / "pruned", model, variant) / f"{ratio_tag(ratio)}.pt"


def base_path(out: Path, model: str) -> Path:
    """The dense weights every pruned checkpoint of `model` was pruned from and refers to."""
    return Path(out) / "pruned" / safe_dirname(model) / "dense.pt"
