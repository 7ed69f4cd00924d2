"""The accuracy-aware search: thinner and thinner filter-pruned candidates, each built and measured like any
variant, while the last one still stayed within the budget.

Removing more filters never makes a network more accurate at the same
training, so once a pruning ratio loses more than the budget in every
precision, the thinner ones cannot win and the search stops there. It also
stops when its time budget is spent. Every candidate is an ordinary variant
(``filter_prune_62_tflite_dynamic``, say), so the report, its Pareto front and
its plot show what was tried, and a re-run reuses what was built and measured.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

# Share of every layer's filters removed; 0.5 is the pipeline's own `filter_prune`, tried first.
RATIOS = (0.625, 0.75, 0.875)


def recipe_name(ratio: float) -> str:
    return f"filter_prune_{round(ratio * 100)}"


@dataclass(frozen=True)
class Outcome:
    tried: tuple  # the candidates built and measured, in order
    stopped: str  # why the search ended


def search(candidates: Sequence[str], try_one: Callable[[str], Optional[float]], max_drop: float,
           seconds: Optional[float] = None, clock: Callable[[], float] = time.monotonic) -> Outcome:  # fmt: skip
    """Try ``candidates`` in order (thinnest last). ``try_one(name)`` builds and measures one and returns its
    best loss against the original (≥ 0 is a loss; None when nothing of it could be measured); the search
    stops after the first that loses more than ``max_drop``, or when ``seconds`` have passed."""
    start, tried = clock(), []
    for name in candidates:
        if seconds is not None and clock() - start > seconds:
            return Outcome(tuple(tried), f"the time budget ({seconds:g} s) was spent before {name}")
        loss = try_one(name)
        tried.append(name)
        if loss is None or loss > max_drop:
            shown = "could not be measured" if loss is None else f"loses {loss:.2f}, more than {max_drop:g}"
            return Outcome(tuple(tried), f"{name} {shown}: thinner candidates cannot win")
    return Outcome(tuple(tried), "every candidate was tried")


def run_search(pipeline, original_record: dict, original, data, info, eval_path) -> tuple[list, tuple]:
    """The search in a pipeline's run (``edgedl.pipeline.Pipeline``): candidates built and measured like its
    variants, into the same folder; returns their records and specs."""
    from benchmarks import measure_all
    from runtime.report import fidelity_metric, is_ok, metric_delta, primary_metric

    from .compress._techniques import is_tf_keras
    from .recipes import RECIPES, select_variants

    cfg = pipeline.config
    if not is_tf_keras(original):
        pipeline.log("search: skipped (filter pruning needs a tf-keras model)")
        return [], ()
    metric = primary_metric(data.task) or fidelity_metric([original_record])
    base = original_record["metrics"].get(metric)
    records, specs = [], []

    def try_one(name: str) -> Optional[float]:
        chosen = select_variants((name,), data.task)
        pipeline.terminal.steps.plan(2 * len(chosen))
        built, failed = pipeline.build_variants(chosen, original, data, info)
        measured = measure_all(built, eval_path, cfg.bench, root=pipeline.out, cache_dir=pipeline.out / "measurements",
                               progress=lambda n, reused: pipeline.step(f"benchmark: {n}{' (reused)' * reused}"))
        records.extend(measured + failed)
        specs.extend(chosen)
        losses = [-metric_delta(r["metrics"][metric], base, metric) for r in measured
                  if is_ok(r) and metric in r["metrics"]]  # fmt: skip
        return min(losses, default=None)

    candidates = [recipe_name(r) for r in RATIOS if data.task in RECIPES[recipe_name(r)].tasks]
    pipeline.log(f"search: filter pruning beyond 50 % ({', '.join(candidates)}) within {cfg.search_drop:g} of the "
                 f"original's {metric}")  # fmt: skip
    outcome = search(candidates, try_one, cfg.search_drop, cfg.search_seconds)
    pipeline.log(f"search: stopped: {outcome.stopped}")
    return records, tuple(specs)
