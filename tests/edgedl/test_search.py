"""The accuracy-aware search on a hand-made space: it goes thinner while a candidate stays within the budget,
stops at the first that does not, and at its time budget."""
from edgedl.pipeline.recipes import recipe_name
from edgedl.pipeline.search import search


def test_the_search_stops_at_the_first_candidate_beyond_the_budget():
    losses = {"a": 0.1, "b": 0.4, "c": 0.9, "d": 0.2}  # d would fit, but thinner than c it cannot win in truth
    tried = []

    def try_one(name):
        tried.append(name)
        return losses[name]

    outcome = search(["a", "b", "c", "d"], try_one, max_drop=0.5)
    assert outcome.tried == ("a", "b", "c") and tried == ["a", "b", "c"]
    assert outcome.stopped == "c loses 0.90, more than 0.5: thinner candidates cannot win"
    assert search(["a", "b"], try_one, max_drop=0.5).stopped == "every candidate was tried"
    assert search(["a", "b"], lambda name: None, max_drop=0.5).tried == ("a",)  # nothing measured: stop


def test_the_search_keeps_to_its_time_budget():
    ticks = iter([0.0, 5.0, 11.0, 30.0])
    outcome = search(["a", "b", "c"], lambda name: 0.0, max_drop=0.5, seconds=10, clock=lambda: next(ticks))
    assert outcome.tried == ("a",) and outcome.stopped == "the time budget (10 s) was spent before b"


def test_the_candidates_are_recipes_built_only_by_the_search():
    from edgedl.pipeline.recipes import RECIPES, select_variants

    assert recipe_name(0.75) == "filter_prune_75" and RECIPES["filter_prune_75"].configs[0].ratio == 0.75
    default = {s.recipe for s in select_variants(None, "classification") if s.recipe}
    assert "filter_prune" in default and not any(r.startswith("filter_prune_") for r in default)
