"""The devices edgedl bundles for, what each one installs, and what each one can run.

Each target names its interpreter (pinned, as the bundle's ``requirements.txt``
installs it) and checks an artifact before it is bundled: a ``.tflite`` file's
operator versions against the table probed from that very interpreter
(``python -m edgedl.deploy.targets.probe``), an ``.onnx`` file's opset and operator
domains against what the target's onnxruntime and TensorRT take.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from runtime.errors import UserError

OPS = Path(__file__).parent / "ops"


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    formats: tuple  # the artifact formats this target runs: tflite, onnx
    requirements: tuple  # pip requirement lines for the interpreter and numpy
    machines: tuple = ()  # what the board's platform.machine() says (empty: any)
    op_table: Optional[str] = None  # tflite: the probed table of operator versions (edgedl/targets/ops/)
    max_opset: Optional[int] = None  # onnx: the newest default-domain opset the target parses (None: any)
    notes: tuple = ()  # lines for the bundle's README
    by_format: dict = field(default_factory=dict)  # a target of several formats: the interpreter of each
    board: str = ""  # MACHINE/PYTHON/GLIBC of its usual system, for 'bundle --wheels' (empty: this machine's)

    def check(self, artifact: Path) -> Optional[str]:
        """Why ``artifact`` cannot run on this target, or None if it can."""
        suffix = artifact.suffix.lower().lstrip(".")
        if suffix not in self.formats:
            return f"{self.name} runs {self.kinds}, not {'.' + suffix if suffix else 'files without a suffix'}"
        return _tflite_problem(artifact, self) if suffix == "tflite" else _onnx_problem(artifact, self)

    @property
    def kinds(self) -> str:
        return " and ".join(f".{f}" for f in self.formats) + " models"

    def requirements_for(self, formats) -> tuple:
        """What ``pip install`` needs on the board for artifacts of ``formats``."""
        return self.requirements + tuple(line for f in self.formats if f in formats for line in self.by_format.get(f, ()))


TARGETS = {
    t.name: t
    for t in (
        Target(
            name="rpi-arm64",
            description="Raspberry Pi 4/5, Raspberry Pi OS 64-bit (bookworm, Python 3.11): ai-edge-litert",
            formats=("tflite",),
            requirements=("ai-edge-litert==2.3.0", "numpy>=2.0,<2.5"),
            machines=("aarch64",),
            board="aarch64/3.11/2.36",
            op_table="ai-edge-litert-2.3.0.json",
        ),
        Target(
            name="rpi-armv7",
            description="Raspberry Pi, 32-bit Raspberry Pi OS (armv7l, Python 3.11): tflite-runtime",
            formats=("tflite",),
            machines=("armv7l",),
            board="armv7l/3.11/2.36",
            # tflite-runtime is built against numpy 1.x and has no kernels newer than TensorFlow 2.14's.
            requirements=("tflite-runtime==2.14.0", "numpy>=1.23,<2"),
            op_table="tflite-runtime-2.14.0.json",
        ),
        Target(
            name="jetson",
            description="NVIDIA Jetson (JetPack 5/6, aarch64): onnxruntime, with TensorRT and CUDA when present",
            formats=("onnx",),
            machines=("aarch64",),
            board="aarch64/3.10/2.35",  # JetPack 6: Ubuntu 22.04
            # PyPI's aarch64 onnxruntime runs on the CPU; JetPack 6 has Python 3.10, whose last one is 1.23.2.
            requirements=("onnxruntime==1.23.2; python_version < '3.11'", "onnxruntime==1.31.1; python_version >= '3.11'",
                          "numpy>=1.23,<2.5"),  # fmt: skip
            # TensorRT 8.5 (JetPack 5.1) parses ONNX up to opset 17; onnxruntime there takes the same.
            max_opset=17,
            notes=(
                "For the GPU, install NVIDIA's onnxruntime-gpu for your JetPack instead of onnxruntime "
                "(https://elinux.org/Jetson_Zoo#ONNX_Runtime); edgedl-run then uses TensorRT, then CUDA, "
                "then the CPU, and caches TensorRT engines in models/.trt_cache.",
            ),
        ),
        Target(
            name="linux",
            description="any Linux board with Python 3.9 or later: ai-edge-litert for .tflite, onnxruntime for .onnx, "
                        "where its platform has their wheels",  # fmt: skip
            formats=("tflite", "onnx"),
            requirements=("numpy>=1.23,<2.5",),
            op_table="ai-edge-litert-2.3.0.json",
            by_format={"tflite": ("ai-edge-litert==2.3.0",),
                       "onnx": ("onnxruntime==1.23.2; python_version < '3.11'",
                                "onnxruntime==1.31.1; python_version >= '3.11'")},  # fmt: skip
        ),
    )
}


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise UserError(f"unknown target {name!r}; known targets: {', '.join(TARGETS)}")
    return TARGETS[name]


def load_op_table(name: str) -> dict:
    return json.loads((OPS / name).read_text())


def operator_names() -> dict[int, str]:
    """TFLite's builtin operator codes and their names, from the schema ai-edge-litert ships."""
    from ai_edge_litert import schema_py_generated as schema

    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}


def tflite_operators(path: Path) -> list[tuple[str, int]]:
    """(operator name, version) for every entry of a ``.tflite`` file's operator table."""
    from ai_edge_litert import schema_py_generated as schema

    names = operator_names()
    try:
        model = schema.Model.GetRootAs(path.read_bytes(), 0)
        ops = []
        for i in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(i)
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())  # see schema.fbs: the larger is right
            name = names.get(builtin, f"#{builtin}")
            if name == "CUSTOM":
                name = f"CUSTOM:{(code.CustomCode() or b'').decode()}"
            ops.append((name, code.Version()))
        return ops
    except Exception as exc:  # a truncated flatbuffer raises anything from struct.error to IndexError
        raise UserError(f"{path}: not a readable .tflite file ({type(exc).__name__}); re-export it") from None


# Custom operators every TFLite interpreter's builtin resolver registers (tensorflow/lite/kernels/register.cc):
# the SSD detectors' box decoding and non-maximum suppression, and the audio front end.
BUILTIN_CUSTOM_OPS = ("TFLite_Detection_PostProcess", "Mfcc", "AudioSpectrogram")


def _tflite_problem(path: Path, target: Target) -> Optional[str]:
    table = load_op_table(target.op_table)
    interpreter = table["interpreter"].replace("==", " ")
    for name, version in tflite_operators(path):
        if name.startswith("CUSTOM:") and name[7:] in BUILTIN_CUSTOM_OPS:
            continue
        if name.startswith("CUSTOM:"):
            kind = "the Flex delegate" if name.startswith("CUSTOM:Flex") else "a custom kernel"
            return f"operator {name[7:]} needs {kind}, which {interpreter} does not have"
        supported = table["max_versions"].get(name, 0)
        if supported == 0:
            return f"operator {name} has no kernel in {interpreter}"
        if version > supported:
            return f"operator {name} version {version} is newer than {interpreter} runs (up to version {supported})"
    return None


def _onnx_problem(path: Path, target: Target) -> Optional[str]:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and friends
        raise UserError(f"{path}: not a readable .onnx file ({type(exc).__name__}); re-export it") from None
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx") and target.max_opset and opset.version > target.max_opset:
            return f"opset {opset.version} is newer than {target.name} parses (up to opset {target.max_opset})"
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx", "com.microsoft"):
            return f"operator {node.domain}.{node.op_type} is from a domain onnxruntime on {target.name} does not have"
    return None
