"""The house's rooms, read from the source (nothing is imported): imports run one way, between the four
packages (``edgedl`` -> ``exporters``, ``benchmarks`` -> ``runtime``) and between ``edgedl``'s stages
(cli -> pipeline -> compress -> training -> tasks, models -> data, deploy), with no circle anywhere, no
private module of another package and no import through a module-name string."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("edgedl", "exporters", "runtime", "benchmarks")
# What each package may import of the others.
ALLOWED = {
    "edgedl": {"edgedl", "exporters", "benchmarks", "runtime"},
    "exporters": {"exporters", "runtime"},
    "benchmarks": {"benchmarks", "runtime"},
    "runtime": {"runtime"},
}
# edgedl's stages, higher imports lower; two stages of one rank never import each other.
STAGES = {"cli": 6, "pipeline": 5, "compress": 4, "training": 3, "tasks": 2, "models": 2, "data": 1, "deploy": 1}
LOOSE_RANK = 0  # edgedl/terminal.py and the like: used by the stages, using none of them


def _modules() -> dict:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, int]]:
    """(the module of this project each import statement reaches, its line), for every import in the file."""
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            candidates = [f"{module}.{alias.name}" for alias in node.names]
            targets = [c for c in candidates if c in MODULES] or [module]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.append((target, node.lineno))
    return found


EDGES = {name: _imports(name, path) for name, path in MODULES.items()}


def _stage(module: str):
    """(rank, stage) of an ``edgedl`` module; the package itself imports lazily from every stage."""
    parts = module.split(".")
    if len(parts) == 1:
        return None
    if parts[1] in STAGES:
        return STAGES[parts[1]], parts[1]
    return LOOSE_RANK, parts[1]


def test_the_packages_import_one_way():
    wrong = [f"{name} imports {target} (line {line})" for name, edges in EDGES.items() for target, line in edges
             if target.split(".")[0] not in ALLOWED[name.split(".")[0]]]  # fmt: skip
    assert not wrong, "\n".join(wrong)


def test_edgedl_stages_import_only_the_stages_below_them():
    wrong = []
    for name, edges in EDGES.items():
        here = _stage(name) if name.startswith("edgedl.") else None
        for target, line in edges:
            there = _stage(target) if target.startswith("edgedl.") else None
            if here is None or there is None or here[1] == there[1]:
                continue
            if there[0] >= here[0]:
                wrong.append(f"{name} ({here[1]}) imports {target} ({there[1]}), line {line}")
    assert not wrong, "\n".join(wrong)


def test_there_is_no_import_circle():
    # Tarjan's strongly connected components over the module graph: any component of two or more is a circle.
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w, _ in EDGES[v]:
            if v.startswith(w + "."):
                continue  # a module reaching its own package (its __init__ runs first, whatever it imports)
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(" <-> ".join(sorted(component)))

    for module in MODULES:
        if module not in index:
            visit(module)
    assert not circles, "\n".join(circles)


def test_no_private_module_of_another_package_is_imported():
    wrong = []
    for name, edges in EDGES.items():
        for target, line in edges:
            owner, _, leaf = target.rpartition(".")
            if leaf.startswith("_") and not leaf.startswith("__") and not (name == owner or name.startswith(owner + ".")):
                wrong.append(f"{name} imports {target}, private to {owner} (line {line})")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("package", PACKAGES)
def test_nothing_is_imported_through_a_module_name_string(package):
    wrong = []
    for name, path in MODULES.items():
        if not name.startswith(package):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                called = ast.unparse(node.func)
                if called in ("importlib.import_module", "import_module", "__import__") and node.args and not (
                    name == "runtime.errors" and called == "importlib.import_module"  # import_first: interpreters
                ):  # fmt: skip
                    wrong.append(f"{name}: {ast.unparse(node)} (line {node.lineno})")
    assert not wrong, "\n".join(wrong)


def test_edgedl_keeps_its_top_to_a_few_modules_and_every_module_to_one_sitting():
    loose = sorted(p.name for p in (ROOT / "edgedl").glob("*.py") if p.name != "__init__.py")
    assert len(loose) <= 10, loose
    long = [f"{path.relative_to(ROOT)}: {n} lines" for path in MODULES.values()
            if (n := len(path.read_text().splitlines())) > 400]  # fmt: skip
    assert not long, "\n".join(long)


def test_the_graph_holds_the_imports_the_source_has():
    """The graph these tests read is the real one: edges known to be in the source are in it."""
    assert "runtime.tasks" in {t for t, _ in EDGES["runtime.metadata"]}
    assert "edgedl.training.model_io" in {t for t, _ in EDGES["edgedl.compress._techniques"]}
    assert _stage("edgedl.cli.commands") == (6, "cli") and _stage("edgedl.terminal") == (LOOSE_RANK, "terminal")
