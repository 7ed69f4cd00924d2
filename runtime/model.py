"""Load an artifact and run it: float arrays in, float arrays out, whatever its precision.

Only numpy and one interpreter are imported, and only when a model of that
format is loaded: ai-edge-litert (or tflite-runtime) for ``.tflite``,
onnxruntime for ``.onnx``.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .bundle import verify_for
from .errors import UserError
from .files import sha256_file
from .metadata import ONNX_METADATA_KEY, ModelMetadata, Quantization, parse_metadata, sidecar_path

FORMATS = {".tflite": "tflite", ".onnx": "onnx"}


def _import_first(candidates: list[tuple[str, str]], what: str):
    """Import the first module that exists; otherwise say which package to install."""
    for module, _ in candidates:
        try:
            return importlib.import_module(module)
        except ImportError:
            continue
    pips = " or ".join(f"'pip install {pkg}'" for _, pkg in candidates)
    raise UserError(f"no interpreter for {what} is installed: {pips}")


def _quantize(x: np.ndarray, q: Quantization, dtype: np.dtype) -> np.ndarray:
    """``clip(round(x / scale + zero_point))`` as ``dtype``; in place on one temporary (this runs per call)."""
    info = np.iinfo(dtype)
    t = np.multiply(x, np.float32(1.0 / q.scale))
    t += np.float32(q.zero_point)
    np.rint(t, out=t)
    np.minimum(t, info.max, out=t)
    np.maximum(t, info.min, out=t)
    return t.astype(dtype)


def _dequantize(x: np.ndarray, q: Quantization) -> np.ndarray:
    t = x.astype(np.float32)
    t -= np.float32(q.zero_point)
    t *= np.float32(q.scale)
    return t


class Model:
    """A loaded artifact. ``predict`` takes and returns float32 batches.

    Subclasses implement ``_run`` on arrays already in the artifact's own
    input dtype and return its raw output; this class does the quantization
    at the edges, with the parameters the artifact itself records.
    """

    path: Path
    metadata: ModelMetadata

    def __init__(self, path: Path, metadata: ModelMetadata, threads: Optional[int]):
        self.path = path
        self.metadata = metadata
        self.threads = threads
        self._in_dtype = np.dtype(metadata.input.dtype)
        self._in_quant = metadata.input.quantization
        self._out_quant = metadata.output.quantization
        self._checked_shape: Optional[tuple] = None  # the last input shape found valid

    @property
    def input_shape(self) -> tuple:
        return self.metadata.input.shape

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Run a batch of model-ready float inputs, shaped like ``input_shape``."""
        x = np.asarray(batch, dtype=np.float32)
        if x.shape != self._checked_shape:  # checked once per shape: predict is on the hot path
            self._check_shape(x)
            self._checked_shape = x.shape
        if self._in_quant is not None:
            x = _quantize(x, self._in_quant, self._in_dtype)
        y = self._run(x)
        if self._out_quant is not None:
            return _dequantize(y, self._out_quant)
        return y.astype(np.float32, copy=False)

    def _check_shape(self, x: np.ndarray) -> None:
        expected = self.metadata.input.shape
        ok = x.ndim == len(expected) and all(e is None or e == a for e, a in zip(expected[1:], x.shape[1:]))
        if not ok:
            shown = "×".join("N" if d is None else str(d) for d in expected)
            raise UserError(
                f"{self.path.name}: input has shape {'×'.join(map(str, x.shape))}, the model expects {shown}"
            )

    def _run(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class TFLiteModel(Model):
    """A ``.tflite`` file run by ai-edge-litert, or tflite-runtime where that is what the device has."""

    def __init__(self, path: Path, metadata: ModelMetadata, threads: Optional[int]):
        super().__init__(path, metadata, threads)
        module = _import_first(
            [("ai_edge_litert.interpreter", "ai-edge-litert"), ("tflite_runtime.interpreter", "tflite-runtime")],
            "TFLite models",
        )
        self._module = module
        self.delegate = "xnnpack"  # the interpreters' default; dropped if it cannot run the graph
        self._interp = self._interpreter(default_delegates=True)
        self._in = self._interp.get_input_details()[0]
        self._out_index = self._interp.get_output_details()[0]["index"]
        # A model converted with a fixed batch is fed one chunk of that size at a time.
        self._fixed_batch = int(self._in["shape_signature"][0]) if self._in["shape_signature"][0] > 0 else None
        self._shape = tuple(int(d) for d in self._in["shape"])
        self._interp.allocate_tensors()

    def _interpreter(self, default_delegates: bool):
        kwargs = {}
        if not default_delegates:
            kwargs["experimental_op_resolver_type"] = self._module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            return self._module.Interpreter(model_path=str(self.path), num_threads=self.threads, **kwargs)
        except ValueError as exc:
            raise UserError(f"{self.path}: not a valid TFLite model ({exc}); re-export it") from None

    def _without_delegate(self) -> None:
        """XNNPACK refuses some graphs (an unrolled int8 LSTM, for one): run them on the builtin kernels."""
        self._interp = self._interpreter(default_delegates=False)
        self._interp.resize_tensor_input(self._in["index"], list(self._shape))
        self._interp.allocate_tensors()
        self.delegate = "none"

    def _resize(self, shape: tuple) -> None:
        # Free dimensions (batch; height and width of a fully convolutional model) follow the input.
        self._interp.resize_tensor_input(self._in["index"], list(shape))
        self._interp.allocate_tensors()
        self._shape = shape

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        self._interp.set_tensor(self._in["index"], x)
        try:
            self._interp.invoke()
        except RuntimeError as exc:
            if self.delegate != "xnnpack" or "XNNPACK" not in str(exc):
                raise
            self._without_delegate()
            self._interp.set_tensor(self._in["index"], x)
            self._interp.invoke()
        return self._interp.get_tensor(self._out_index)

    def _run(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        if self._fixed_batch is None:
            if x.shape != self._shape:
                self._resize(x.shape)
            return self._invoke(x)
        step = self._fixed_batch
        if n % step:
            raise UserError(f"{self.path.name}: batch of {n} is not a multiple of the model's fixed batch {step}")
        if (step, *x.shape[1:]) != self._shape:
            self._resize((step, *x.shape[1:]))
        return np.concatenate([self._invoke(x[i : i + step]) for i in range(0, n, step)])


class OnnxModel(Model):
    """An ``.onnx`` file run by onnxruntime: TensorRT, then CUDA, then the CPU, whichever is installed."""

    def __init__(self, path: Path, metadata: ModelMetadata, threads: Optional[int], session):
        super().__init__(path, metadata, threads)
        self._session = session
        self.delegate = session.get_providers()[0]  # the provider that runs first (what the report shows)
        self._in_name = session.get_inputs()[0].name
        self._out_name = session.get_outputs()[0].name

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self._session.run([self._out_name], {self._in_name: x})[0]


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


def _onnx_session(path: Path, threads: Optional[int], providers: Optional[Sequence[str]] = None):
    ort = _import_first([("onnxruntime", "onnxruntime")], "ONNX models")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    chosen = choose_providers(ort.get_available_providers(), providers)
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=chosen,
                                    provider_options=[_provider_options(p, path) for p in chosen])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: not a valid ONNX model ({first}); re-export it") from None


def read_metadata(path: str | os.PathLike) -> ModelMetadata:
    """Read an artifact's metadata without loading an interpreter for ``.tflite``."""
    path = Path(path)
    fmt = _format_of(path)
    if fmt == "tflite":
        return _tflite_metadata(path)
    return _onnx_metadata(path, _onnx_session(path, 1, ["CPUExecutionProvider"]))  # no TensorRT engine build


def _format_of(path: Path) -> str:
    if not path.exists():
        raise UserError(f"{path}: no such model file")
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give a .tflite or .onnx file")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"{path}: unknown model format {path.suffix or '(no suffix)'!r}; expected .tflite or .onnx")
    return fmt


def _tflite_metadata(path: Path) -> ModelMetadata:
    side = sidecar_path(path)
    if not side.exists():
        raise UserError(f"{path}: its metadata file {side.name} is missing; copy it together with the model")
    meta = parse_metadata(side.read_text(), str(side))
    if meta.artifact_sha256 and meta.artifact_sha256 != sha256_file(path):
        raise UserError(f"{path}: file does not match its metadata {side.name} (sha256 differs); re-copy both files")
    return meta


def _onnx_metadata(path: Path, session) -> ModelMetadata:
    props = session.get_modelmeta().custom_metadata_map
    if ONNX_METADATA_KEY not in props:
        raise UserError(f"{path}: has no edgedl metadata; export it with 'edgedl export'")
    return parse_metadata(props[ONNX_METADATA_KEY], str(path))


def load(path: str | os.PathLike, threads: Optional[int] = None,
         providers: Optional[Sequence[str]] = None) -> Model:  # fmt: skip
    """Load a ``.tflite`` or ``.onnx`` artifact exported by edgedl.

    A model inside an unpacked bundle is loaded only if every file of the
    bundle matches its manifest. ``providers`` (ONNX only) overrides the
    execution providers' order of preference.

    >>> model = load("cnn_int8.tflite", threads=1)      # doctest: +SKIP
    >>> probs = model.predict(images)                   # float32 in [0, 1], N×28×28×1
    """
    path = Path(path)
    fmt = _format_of(path)
    verify_for(path)
    check_providers(path, providers)
    if fmt == "tflite":
        return TFLiteModel(path, _tflite_metadata(path), threads)
    session = _onnx_session(path, threads, providers)
    return OnnxModel(path, _onnx_metadata(path, session), threads, session)
