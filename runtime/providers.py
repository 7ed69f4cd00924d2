"""onnxruntime's execution providers: which to ask for, in which order, and the session that uses them."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from .errors import UserError, import_first, one_line


# In order of preference; onnxruntime-gpu on a Jetson has the first two, every build the last.
PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def choose_providers(available: Sequence[str], requested: Optional[Sequence[str]] = None) -> list[str]:
    """The execution providers to ask onnxruntime for: ``requested`` (each must be installed) or every
    preferred one that is, best first; the CPU always closes the list as the fallback."""
    if requested:
        missing = [p for p in requested if p not in available]
        if missing:
            raise UserError(f"execution provider {missing[0]} is not in this onnxruntime "
                            f"(available: {', '.join(available)})")  # fmt: skip
        chosen = list(requested)
    else:
        chosen = [p for p in PREFERRED_PROVIDERS if p in available]
    return chosen + ([] if "CPUExecutionProvider" in chosen else ["CPUExecutionProvider"])


def check_providers(path: Path, providers: Optional[Sequence[str]]) -> None:
    """Execution providers are an onnxruntime notion: refuse them for anything else."""
    if providers and Path(path).suffix.lower() != ".onnx":
        raise UserError("--providers is for .onnx models; a .tflite model runs on its interpreter's CPU kernels")


def _provider_options(name: str, path: Path) -> dict:
    if name == "TensorrtExecutionProvider":
        # Building a TensorRT engine takes minutes on a Jetson: keep it next to the model for the next start.
        return {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(path.parent / ".trt_cache")}
    return {}


def onnx_session(path: Path, data: bytes, threads: Optional[int], providers: Optional[Sequence[str]] = None):
    ort = import_first([("onnxruntime", "onnxruntime")], "ONNX models")
    ort.set_default_logger_severity(4)  # errors reach the user as our one line, not as onnxruntime's log
    options = ort.SessionOptions()
    options.log_severity_level = 4
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    chosen = choose_providers(ort.get_available_providers(), providers)
    try:
        return ort.InferenceSession(data, sess_options=options, providers=chosen,
                                    provider_options=[_provider_options(p, path) for p in chosen])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/InvalidGraph types
        raise UserError(f"{path}: not a valid ONNX model ({one_line(exc, 240)}); re-export it") from None
