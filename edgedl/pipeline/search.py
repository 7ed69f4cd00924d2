"""The accuracy-aware search: thinner and thinner filter-pruned candidates, each built and measured like any
variant, while the last one still stayed within the budget.

Removing more filters never makes a network more accurate at the same
training, so once a pruning ratio loses more than the budget in every
precision, the thinner ones cannot win and the search stops there. It also
stops when its time budget is spent. Every candidate is an ordinary variant
(``filter_prune_62_tflite_dynamic``, say; the candidates are ``recipes.search_candidates``),
built and measured by the pipeline's own stages, so the report, its Pareto front and
its plot show what was tried, and a re-run reuses what was built and measured.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence


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
