"""The task registry: one place that knows what a task is, and nothing else comparing task names."""
from pathlib import Path

import numpy as np
import pytest

from runtime.errors import UserError
from runtime.tasks import TASKS, get_task, score

ROOT = Path(__file__).resolve().parents[2]
REGISTRIES = {Path("runtime/tasks.py"), Path("edgedl/tasks/registry.py")}


def test_every_task_with_a_metric_scores_targets_and_generic_has_neither():
    for name, task in TASKS.items():
        # A task with a metric reads targets from its evaluation set, and scores them; generic has neither.
        assert (task.metric is None) == (task.score is None) == (not task.scored), name
        assert task.budget > 0, name


def test_an_unknown_task_is_refused_in_one_line_naming_the_known_ones():
    with pytest.raises(UserError, match=r"unknown task 'pose'; edgedl knows classification, denoising, segmentation, "
                                        r"detection, embedding, generic"):  # fmt: skip
        get_task("pose")
    with pytest.raises(UserError, match="has no metric"):
        score("generic", [np.zeros(3)], None)


def test_metadata_accepts_exactly_the_registered_tasks():
    from runtime.metadata import ModelMetadata, TensorSpec

    spec = (TensorSpec("x", (1, 4), "float32"),)
    for name in TASKS:
        assert ModelMetadata(task=name, format="tflite", precision="float32", inputs=spec, outputs=spec).task == name
    with pytest.raises(UserError, match="task"):
        ModelMetadata(task="pose", format="tflite", precision="float32", inputs=spec, outputs=spec)


def test_scores_follow_the_task():
    labels = np.array([0, 1, 1])
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert score("classification", scores, labels) == {"accuracy": pytest.approx(2 / 3)}
    clean = [np.full((8, 8, 1), 0.5, np.float32)]
    metrics = score("denoising", [clean[0] + 0.1], clean)
    assert metrics["psnr"] == pytest.approx(20.0, abs=1e-3)  # MSE 0.01


def _task_comparisons(source: str) -> list:
    """Lines where a task's name is compared (``==``, ``!=``, ``in``, ``is``), matched (``case``), or tested as a
    prefix or suffix: what a registry entry should say instead."""
    import ast

    def names(node) -> bool:
        values = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
        return any(isinstance(v, ast.Constant) and v.value in TASKS for v in values)

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and any(names(n) for n in [node.left, *node.comparators]):
            found.append(node.lineno)
        elif isinstance(node, ast.match_case) and isinstance(node.pattern, ast.MatchValue) and names(node.pattern.value):
            found.append(node.pattern.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
                "startswith", "endswith", "removeprefix") and any(names(a) for a in node.args):  # fmt: skip
            found.append(node.lineno)
    return found


def test_the_guard_sees_every_kind_of_comparison():
    source = 'a == "denoising"\nb in ("x", "detection")\nc.startswith("embedding")\nd = {"generic": 1}\n'
    source += 'match t:\n    case "segmentation":\n        pass\n'
    assert _task_comparisons(source) == [1, 2, 3, 6]


def test_no_module_outside_the_two_registries_compares_a_task_name():
    """The issue's rule: adding a task touches the registries, not string comparisons across the code."""
    found = []
    for package in ("runtime", "edgedl", "exporters", "benchmarks"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.relative_to(ROOT) in REGISTRIES:
                continue
            lines = path.read_text().splitlines()
            found += [f"{path.relative_to(ROOT)}:{n}: {lines[n - 1].strip()}" for n in _task_comparisons(path.read_text())]
    assert not found, "\n".join(found)


