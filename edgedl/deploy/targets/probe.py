"""Which TFLite operator versions an interpreter can run, found by asking the interpreter itself.

    python -m edgedl.deploy.targets.probe tflite-runtime==2.14.0 'numpy<2'
    python -m edgedl.deploy.targets.probe ai-edge-litert==2.3.0

For every builtin operator and every version 1…MAX_VERSION this writes a
minimal model whose operator table holds that one (operator, version); an
interpreter resolves every entry of that table when it loads a model, so it
refuses the versions it has no kernel for ("Didn't find op for builtin
opcode ...", or "builtin_code out of range" for operators newer than its
schema). The interpreter runs in a fresh virtual environment holding
only the packages named (the wheel a device installs, for this machine's
architecture: the kernels registered do not depend on it). The highest
version each operator loads is written to ``edgedl/targets/ops/<package>-<version>.json``,
the table ``edgedl bundle`` checks artifacts against.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
import venv
from pathlib import Path

from runtime.cli import OneLineParser, run_cli
from runtime.errors import UserError
from runtime.files import write_json

MAX_VERSION = 20
# Operator codes that are not builtin kernels: CUSTOM names its kernel elsewhere, the others are markers.
NOT_KERNELS = ("CUSTOM", "DELEGATE", "PLACEHOLDER_FOR_GREATER_OP_CODES")
TABLES = Path(__file__).parent / "ops"

# Runs inside the probe venv: load every probe file, report which ones the interpreter refused.
_CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter
    refused, other = [], {}
    for f in sorted(Path(sys.argv[1]).glob("*.tflite")):
        try:
            Interpreter(model_path=str(f))
        except ValueError as exc:
            if "Didn't find op for builtin opcode" in str(exc) or "builtin_code out of range" in str(exc):
                refused.append(f.stem)
            else:
                other[f.stem] = str(exc)[:200]
    print(json.dumps({"refused": refused, "other": other}))
    """
)


def builtin_operators() -> dict[int, str]:
    from . import operator_names

    return {code: name for code, name in operator_names().items() if name not in NOT_KERNELS}


def probe_model(op: int, version: int) -> bytes:
    """A model with no tensors and no operators, whose operator table names (``op``, ``version``)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT()
    model.version = 3
    code = schema.OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode, code.version = op, min(op, 127), version  # 127: "see builtinCode"
    model.operatorCodes = [code]
    graph = schema.SubGraphT()
    graph.tensors, graph.inputs, graph.outputs, graph.operators = [], [], [], []
    model.subgraphs, model.buffers = [graph], [schema.BufferT()]
    builder = flatbuffers.Builder(256)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def probe(packages: list[str]) -> dict:
    """Install ``packages`` into a fresh venv and return the highest version of each operator it loads."""
    ops = builtin_operators()
    with tempfile.TemporaryDirectory(prefix="edgedl-probe-") as tmp:
        tmp = Path(tmp)
        models = tmp / "models"
        models.mkdir()
        for op, name in ops.items():
            for version in range(1, MAX_VERSION + 1):
                (models / f"{name}@{version}.tflite").write_bytes(probe_model(op, version))
        venv.create(tmp / "venv", with_pip=True)
        python = tmp / "venv" / "bin" / "python"
        pip = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *packages],
                             capture_output=True, text=True)  # fmt: skip
        if pip.returncode:
            raise UserError(f"pip could not install {' '.join(packages)}: {pip.stderr.strip().splitlines()[-1]}")
        child = subprocess.run([str(python), "-c", _CHILD, str(models)], capture_output=True, text=True)
        if child.returncode:
            raise UserError(f"the probe failed in the interpreter's venv: {child.stderr.strip().splitlines()[-1]}")
        result = json.loads(child.stdout.strip().splitlines()[-1])
        versions = subprocess.run([str(python), "-m", "pip", "list", "--format", "json"], capture_output=True, text=True)
    if result["other"]:
        first = next(iter(result["other"].items()))
        raise UserError(f"the probe model {first[0]} failed for another reason than a missing kernel: {first[1]}")
    refused = set(result["refused"])
    table = {}
    for name in ops.values():
        supported = [v for v in range(1, MAX_VERSION + 1) if f"{name}@{v}" not in refused]
        table[name] = max(supported, default=0)  # 0: this interpreter has no builtin kernel for it
    installed = {p["name"].lower(): p["version"] for p in json.loads(versions.stdout)}
    return {"packages": installed, "max_versions": table}


def main(argv=None) -> int:
    p = OneLineParser(prog="python -m edgedl.deploy.targets.probe", description=__doc__.splitlines()[0])
    p.add_argument("packages", nargs="+", help="the interpreter (and its numpy) as pip requirements")
    args = p.parse_args(argv)

    def body() -> int:
        interpreter = args.packages[0].split("==")
        if len(interpreter) != 2:
            raise UserError(f"pin the interpreter first, as name==version: got {args.packages[0]!r}")
        found = probe(args.packages)
        out = TABLES / f"{interpreter[0]}-{interpreter[1]}.json"
        write_json(out, {"interpreter": args.packages[0], "probed_with": args.packages,
                         "made_by": "python -m edgedl.deploy.targets.probe " + " ".join(args.packages), **found})  # fmt: skip
        print(f"{out}: {sum(v > 0 for v in found['max_versions'].values())} builtin operators")
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
