"""``compress(model, [config, ...], data)``: apply techniques in order and say what they did."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from runtime.errors import UserError

from ..data.datasets import Dataset
from . import _distill, _filters, _stats, _techniques
from ._configs import ClusterConfig, DistillConfig, FilterPruneConfig, FineTuneConfig, PruneConfig, QATConfig


@dataclass(frozen=True)
class CompressResult:
    """The compressed model (ready to export), the techniques applied, and what it costs."""

    model: object
    techniques: tuple
    stats: dict = field(default_factory=dict)

    @property
    def quantized(self) -> bool:
        """Quantization-aware trained: export it as int8."""
        return "qat" in self.techniques


@dataclass(frozen=True)
class Technique:
    """One technique: its name in reports, its config class, the function that applies it, and, for those
    ``edgedl compress --technique`` offers, how its options make a config (None: the pipeline's own)."""

    name: str
    config: type
    apply: Callable  # (model, config, data, task, before, backup) -> compressed model
    from_options: Optional[Callable] = None  # (CLI options, {"epochs": N} or {}) -> config
    about: str = ""


TECHNIQUES: dict[str, Technique] = {t.name: t for t in (
    Technique("prune", PruneConfig, _techniques.prune,
              lambda o, e: PruneConfig(target_sparsity=o.sparsity, **e), "magnitude pruning to --sparsity"),
    Technique("prune_2_4", PruneConfig, _techniques.prune,
              lambda o, e: PruneConfig(structure="2:4", **e), "2:4 structured sparsity"),
    Technique("filter_prune", FilterPruneConfig, _filters.filter_prune,
              lambda o, e: FilterPruneConfig(ratio=o.ratio, **e), "whole filters removed (--ratio)"),
    Technique("cluster", ClusterConfig, _techniques.cluster,
              lambda o, e: ClusterConfig(clusters=o.clusters, **e), "weight clustering (--clusters)"),
    Technique("qat", QATConfig, _techniques.qat, lambda o, e: QATConfig(**e), "quantization-aware training"),
    Technique("distill", DistillConfig, _distill.distill,
              lambda o, e: DistillConfig(student=o.student, temperature=o.temperature, alpha=o.alpha, **e),
              "knowledge distillation into --student"),
    Technique("finetune", FineTuneConfig, _techniques.finetune),  # a recipe's control: the same training, no technique
)}  # fmt: skip


def technique_name(config) -> str:
    """The name a config's technique has in reports (``prune``, ``prune_2_4``, ``cluster``, ``qat``, ``distill``)."""
    if isinstance(config, PruneConfig) and config.structure == "2:4":
        return "prune_2_4"
    for technique in TECHNIQUES.values():
        if type(config) is technique.config:
            return technique.name
    raise UserError(f"unknown compression config {type(config).__name__}; use one of "
                    f"{', '.join(dict.fromkeys(t.config.__name__ for t in TECHNIQUES.values()))}")  # fmt: skip


def configs_from_options(names: str, options) -> list:
    """The configs of ``edgedl compress --technique`` (comma-separated names) with the command's options."""
    offered = {name: t for name, t in TECHNIQUES.items() if t.from_options is not None}
    epochs = {"epochs": options.epochs} if options.epochs is not None else {}
    configs = []
    for name in names.split(","):
        if name not in offered:
            raise UserError(f"unknown technique {name!r}; known: {', '.join(offered)} (combine with commas)")
        configs.append(offered[name].from_options(options, epochs))
    return configs


def model_stats(model, techniques: Sequence[str] = ()) -> dict:
    """``params``, ``macs`` (``macs_per_pixel`` for any-size models) and, for pruned models, ``sparsity``
    overall and per layer."""
    # A fully convolutional model's cost grows with the image: counted at 1×1, it is the cost per pixel.
    free_size = None in tuple(model.inputs[0].shape[1:-1])
    macs = _stats.count_macs(model)
    stats = {"params": _stats.count_params(model),
             ("macs_per_pixel" if free_size else "macs"): "unknown" if macs is None else macs}  # fmt: skip
    if any(t.startswith("prune") for t in techniques):
        stats["sparsity"] = round(_stats.overall_sparsity(model), 4)
        stats["layer_sparsity"] = {k: round(v, 4) for k, v in _stats.layer_sparsity(model).items()}
    if "cluster" in techniques:
        stats["distinct_weights"] = _stats.distinct_kernel_values(model)
    return stats


def _check_order(names: list) -> None:
    if "qat" in names and names.index("qat") != len(names) - 1:
        raise UserError("quantization-aware training must come last: nothing can be applied after it")
    if "distill" in names and names.index("distill") != 0:
        raise UserError("distillation must come first: it trains a new (student) model")


def _backup_name(name: str, config, before: tuple, seed: int) -> str:
    """A technique's checkpoint folder, named by what it does: a re-run with other settings starts afresh
    instead of resuming from checkpoints of different work."""
    import hashlib

    return f"{name}-{hashlib.sha256(repr((config, before, seed)).encode()).hexdigest()[:10]}"


def compress(model, configs: Sequence, data: Dataset, task: str = "classification", seed: int = 0,
             before: tuple = (), workdir: Optional[Path] = None) -> CompressResult:  # fmt: skip
    """Apply each technique of ``configs`` in order (``before``: what was already applied to ``model``),
    each fine-tuned under this process's strategy and, with ``workdir``, checkpointed in
    ``workdir/<technique>-<hash of its settings>`` (a re-run resumes the technique it was in). Every worker
    of a cluster calls it.

    >>> result = compress(model, [PruneConfig(0.8), QATConfig()], train_data)   # doctest: +SKIP
    >>> result.techniques, result.stats["sparsity"]                             # doctest: +SKIP
    (('prune', 'qat'), 0.8)
    """
    from ..training import distribute
    from ..training.train import set_seeds

    if not configs:
        raise UserError("no compression technique given")
    names = [technique_name(c) for c in configs]
    _check_order(list(before) + names)
    done: tuple = tuple(before)
    dist = distribute.current()
    widths: dict = {}
    for name, config in zip(names, configs):
        set_seeds(seed)
        backup = None if workdir is None else Path(workdir) / _backup_name(name, config, done, seed)
        with dist.strategy.scope():  # the technique's variables (wrappers, a student) are the strategy's
            # A copy: tfmot wraps the very layer objects it is given, so pruning would zero the caller's weights.
            thinner = TECHNIQUES[name].apply(_stats.copy_model(model), config, data, task, done, backup=backup)
        thinner = distribute.detached(thinner)
        if name == "filter_prune":
            widths = _filters.layer_widths(model, thinner)
        model, done = thinner, done + (name,)
    return CompressResult(model, done, {**model_stats(model, done), **({"layer_widths": widths} if widths else {})})
