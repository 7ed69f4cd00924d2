"""The catalogue of variants the pipeline can build: post-training exports and compression recipes.

A variant is named ``<recipe>_<format>_<precision>``, for example
``tflite_int8`` (post-training, from the original) or ``prune_tflite_int8``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..compress import (
    ClusterConfig,
    DistillConfig,
    FilterPruneConfig,
    FineTuneConfig,
    PruneConfig,
    QATConfig,
    technique_name,
)
from ..tasks import host_task

POST_TRAINING = (
    ("tflite", "float32"),
    ("tflite", "float16"),
    ("tflite", "dynamic"),
    ("tflite", "int8"),
    ("tflite", "int8_float"),  # int8 inside, float in and out
    ("tflite", "int8_pixels"),  # int8 inside, the camera's 8-bit pixels in
    ("tflite", "int8_mixed"),  # int8 with the layers that hurt most kept in float (when int8 alone hurts)
    ("onnx", "float32"),
    ("onnx", "dynamic"),
    ("onnx", "int8"),
    ("onnx", "int8_mixed"),  # int8 with the layers that hurt most kept in float (when int8 alone hurts)
)


@dataclass(frozen=True)
class Recipe:
    """Compress the original with ``configs`` (in order; ``parent``'s result first, if given),
    then export it as each of ``exports``. ``label`` replaces the techniques' names in the report."""

    name: str
    configs: tuple
    exports: tuple
    # What of its task the recipe needs (a ``HostTask`` field: "distiller", "student_from_labels", "labelled");
    # None: it applies to every task (generic: fine-tuned towards the original; segmentation: on its masks).
    needs: Optional[str] = None
    parent: Optional[str] = None
    label: Optional[tuple] = None
    default: bool = True  # built when no variant is named; a control only when asked for (``control``)


# The accuracy-aware search's candidates (``edgedl.pipeline.search``): the share of every layer's filters removed,
# beyond the 0.5 of ``filter_prune``, tried thinnest last.
SEARCH_RATIOS = (0.625, 0.75, 0.875)


def recipe_name(ratio: float) -> str:
    """A search candidate's recipe: ``filter_prune_62`` removes 62.5 % of every layer's filters."""
    return f"filter_prune_{round(ratio * 100)}"


RECIPES = {
    r.name: r
    for r in (
        Recipe("prune", (PruneConfig(0.8),), (("tflite", "float32"), ("tflite", "int8"), ("onnx", "float32"))),
        # Whole filters removed: a thinner network, faster in every format (tfmot's pruning only zeroes weights).
        Recipe("filter_prune", (FilterPruneConfig(0.5),), (("tflite", "float32"), ("tflite", "dynamic"),
                                                          ("tflite", "int8"), ("onnx", "float32"))),  # fmt: skip
        Recipe("prune_2_4", (PruneConfig(structure="2:4"),), (("tflite", "float32"), ("tflite", "int8"))),
        Recipe("cluster", (ClusterConfig(16),), (("tflite", "float32"), ("tflite", "int8"))),
        Recipe("qat", (QATConfig(),), (("tflite", "int8"),)),
        Recipe("prune_qat", (QATConfig(),), (("tflite", "int8"),), parent="prune"),
        Recipe("cluster_qat", (QATConfig(),), (("tflite", "int8"),), parent="cluster"),
        # tfmot's collaborative optimization: sparsity- and cluster-preserving QAT (PCQAT).
        Recipe("prune_cluster_qat", (ClusterConfig(16), QATConfig()), (("tflite", "int8"),), parent="prune"),
        Recipe("distill", (DistillConfig(),), (("tflite", "float32"), ("tflite", "int8"), ("onnx", "float32")),
               needs="distiller"),
        # The same student, same epochs and seed, trained on the labels (clean images) alone: what distillation
        # is measured against.
        Recipe("student", (DistillConfig(alpha=1.0),), (("tflite", "float32"),), needs="student_from_labels",
               label=("student_scratch",)),
    )
}


def _control(recipe: Recipe) -> Recipe:
    """The recipe's control: the original trained for the same extra epochs (learning rate, batch size, in
    the same steps, its parent's control first) without the technique, so that a recipe's delta against it
    isolates the technique. A distilled student's control is ``student``, trained without the teacher."""
    steps = tuple(FineTuneConfig(c.epochs, c.learning_rate, c.batch_size, isinstance(c, QATConfig))
                  for c in recipe.configs)  # fmt: skip
    return Recipe(f"control_{recipe.name}", steps, (("tflite", "float32"),), recipe.needs,
                  parent=f"control_{recipe.parent}" if recipe.parent else None, default=False)  # fmt: skip


RECIPES.update({f"control_{r.name}": _control(r) for r in list(RECIPES.values())
                if not any(isinstance(c, DistillConfig) for c in r.configs)})  # fmt: skip


RECIPES.update({recipe_name(r): Recipe(recipe_name(r), (FilterPruneConfig(r),), (("tflite", "float32"),
                ("tflite", "dynamic"), ("tflite", "int8")), default=False) for r in SEARCH_RATIOS})  # fmt: skip
# A searched width trained on the labels alone (same pruned start, epochs and seed): what its teacher buys.
RECIPES.update({f"{recipe_name(r)}_labels": Recipe(f"{recipe_name(r)}_labels", (FilterPruneConfig(r, teacher=False),),
                (("tflite", "float32"),), "labelled", default=False,
                label=("filter_prune", "no_teacher")) for r in SEARCH_RATIOS})  # fmt: skip


def search_candidates(task: str) -> list:
    """The search's candidate recipes that apply to ``task``, in the order they are tried."""
    return [recipe_name(r) for r in SEARCH_RATIOS if applies(RECIPES[recipe_name(r)], task)]


def applies(recipe: Recipe, task: str) -> bool:
    """Whether ``recipe`` serves a model of ``task`` (what it needs, the task's registry entry has)."""
    return recipe.needs is None or bool(getattr(host_task(task), recipe.needs))


def control_of(name: str) -> Optional[str]:
    """The name of a recipe's control, if it has one."""
    return f"control_{name}" if f"control_{name}" in RECIPES else None


def control_deltas(records: list, specs, task: str) -> list:
    """Each recipe variant's metric against its control's (``control_<recipe>``: the same extra training
    without the technique), as ``control_delta``, when the run has that control."""
    from runtime.report import is_ok, metric_delta, primary_metric

    metric = primary_metric(task)
    recipe_of = {s.name: s.recipe or "" for s in specs}
    controls = {recipe_of[r["name"]].removeprefix("control_"): r for r in records
                if is_ok(r) and recipe_of.get(r["name"], "").startswith("control_")}  # fmt: skip
    for r in records:
        control = controls.get(recipe_of.get(r["name"]))
        if control is not None and is_ok(r) and metric in r["metrics"] and metric in control["metrics"]:
            r["control_delta"] = metric_delta(r["metrics"][metric], control["metrics"][metric], metric)
    return records


def recipe_techniques(name: str) -> tuple:
    """What the report lists as a recipe's ``techniques`` (its parent's first)."""
    recipe = RECIPES[name]
    if recipe.label:
        return recipe.label
    inherited = recipe_techniques(recipe.parent) if recipe.parent else ()
    return inherited + tuple(technique_name(c) for c in recipe.configs)


@dataclass(frozen=True)
class VariantSpec:
    name: str
    recipe: Optional[str]  # None: post-training, from the original
    format: str
    precision: str

    @property
    def techniques(self) -> tuple:
        return recipe_techniques(self.recipe) if self.recipe else ()


def all_variants(task: str = "classification", recipes: Optional[tuple] = None, controls: bool = False) -> tuple:
    """Every variant that applies to ``task`` (and, given ``recipes``, only those recipes), in report order;
    the controls too with ``controls``."""
    specs = [VariantSpec(f"{fmt}_{p}", None, fmt, p) for fmt, p in POST_TRAINING]
    for recipe in RECIPES.values():
        zoo = recipes is None or recipe.name.removeprefix("control_") in recipes
        if applies(recipe, task) and zoo and (recipe.default or controls):
            specs += [VariantSpec(f"{recipe.name}_{fmt}_{p}", recipe.name, fmt, p) for fmt, p in recipe.exports]
    return tuple(specs)


def variant_names(task: str = "classification", recipes: Optional[tuple] = None) -> tuple:
    return tuple(s.name for s in all_variants(task, recipes))


def select_variants(requested: Optional[tuple], task: str, recipes: Optional[tuple] = None) -> tuple:
    """The specs for ``requested`` names (all but the controls when None); an unknown name lists the known ones.

    A recipe name alone (``prune``) selects all of that recipe's exports,
    ``post`` all post-training variants, and ``control`` the controls of the
    recipes chosen (of every recipe, when none is named).
    """
    from runtime.errors import UserError

    specs = all_variants(task, recipes, controls=True)
    if not requested:
        return tuple(s for s in specs if s.recipe is None or RECIPES[s.recipe].default)
    chosen = []
    for name in (n for n in requested if n != "control"):
        match = [s for s in specs if s.name == name or s.recipe == name or (name == "post" and s.recipe is None)]
        if not match:
            shown = [s for s in specs if s.recipe is None or RECIPES[s.recipe].default]  # the defaults, and "control"
            known = ", ".join(["post", *dict.fromkeys(s.recipe for s in shown if s.recipe), "control",
                               *(s.name for s in shown)])  # fmt: skip
            raise UserError(f"unknown variant {name!r} for this {task} model; known: {known}")
        chosen += [m for m in match if m not in chosen]
    if "control" in requested:
        asked = {s.recipe for s in chosen if s.recipe} or {r.name for r in RECIPES.values() if r.default}
        chosen += [s for s in specs if s.recipe and s.recipe.startswith("control_")
                   and s.recipe.removeprefix("control_") in asked and s not in chosen]  # fmt: skip
    return tuple(s for s in specs if s in chosen)
