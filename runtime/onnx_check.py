"""An ``.onnx`` checked by ``onnx.checker`` before onnxruntime sees it, where onnx is installed (the host; a
device without it relies on the session's own checks, which ``runtime.providers`` turns into one line)."""
from __future__ import annotations

from pathlib import Path

from .errors import UserError, one_line


def check_onnx(path: Path, data: bytes) -> None:
    """Parse and check the model's structure (graph, nodes, types, opsets); one line naming what is wrong."""
    try:
        import onnx
    except ImportError:
        return
    try:
        proto = onnx.load_from_string(data)
    except Exception as exc:  # protobuf's DecodeError, or onnx's own
        raise UserError(f"{path}: not a valid ONNX model (not a readable protobuf: {one_line(exc, 120)}); "
                        "re-export it") from None  # fmt: skip
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:  # ValidationError, and what damaged strings raise on the way (UnicodeDecodeError)
        raise UserError(f"{path}: not a valid ONNX model (onnx.checker: {one_line(exc, 200, typed=True)}); re-export it, "
                        "or check it with onnx.checker.check_model") from None  # fmt: skip
