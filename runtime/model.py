"""Load any ``.tflite`` or ``.onnx`` file and run it: arrays in, every output out, whatever its precision.

Only numpy and one interpreter are imported, and only when a model of that
format is loaded: ai-edge-litert (or tflite-runtime) for ``.tflite``,
onnxruntime for ``.onnx``. The tensors always come from the file itself;
edgedl's metadata (or, for another tool's model, ``runtime.introspect``)
adds the task, the preprocessing and the labels. Every error the interpreter
raises is turned into one ``UserError`` line here, at the one place the
runtime calls it.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

import numpy as np

from . import introspect
from .bundle import verify_for
from .errors import UserError, import_first, one_line
from .feeds import run_whole, shape_failure, stride_rule, whole_inputs
from .files import MAX_MODEL_BYTES, check_regular, read_limited
from .introspect import edgedl_record
from .metadata import ModelMetadata, Normalization
from .providers import check_providers, onnx_session
from .quantization import input_converter, output_converter
from .quiet import native_noise_filtered
from .onnx_check import check_onnx
from .signing import check_trusted
from .tflite_check import check_tflite

FORMATS = {".tflite": "tflite", ".onnx": "onnx"}
Inputs = Union[np.ndarray, Sequence[np.ndarray], Mapping[str, np.ndarray]]


def interpreter_failure(path: Path, doing: str, exc: BaseException) -> UserError:
    """Whatever the interpreter raised (RuntimeError, ValueError, onnxruntime's Fail...) as one line."""
    if isinstance(exc, UserError):
        return exc
    if isinstance(exc, MemoryError):
        return UserError(f"{path.name}: out of memory while {doing}; use a smaller input or batch")
    return UserError(f"{path.name}: the interpreter failed while {doing} ({one_line(exc, 240)}); the file may be "
                     "damaged, need operators this interpreter does not have, or take other inputs than these "
                     "(token ids beyond its vocabulary, say)")  # fmt: skip


@contextlib.contextmanager
def interpreter_errors(path: Path, doing: str):
    """``interpreter_failure`` around a block (the hot path of ``predict`` catches inline: no generator)."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the one boundary with the interpreter
        raise interpreter_failure(path, doing, exc) from None


def memory_bytes() -> int:
    """This machine's physical memory in bytes (0 where the OS does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


class Model:
    """A loaded model. ``run`` takes one array, a list, or a mapping by input name and returns every output
    by name, dequantized to float32; ``predict`` returns the array itself when there is one output.

    Subclasses implement ``_run`` on arrays already in the tensors' own dtypes.
    """

    path: Path
    metadata: ModelMetadata

    def __init__(self, path: Path, metadata: ModelMetadata, threads: Optional[int]):
        self.path = path
        self.metadata = metadata
        self.threads = threads
        self._in_specs = metadata.inputs
        self._out_specs = metadata.outputs
        self._in_dtypes = [np.dtype(s.dtype) for s in metadata.inputs]
        self._to_inputs = [input_converter(s, d) for s, d in zip(metadata.inputs, self._in_dtypes)]
        self._from_outputs = [output_converter(s) for s in metadata.outputs]
        self._whole = whole_inputs(metadata.inputs)  # taken whole on every call: a scalar, a fixed state
        self._single = len(metadata.inputs) == 1 and len(metadata.outputs) == 1 and not self._whole
        self._checked: Optional[tuple] = None  # the last input shapes found valid
        self._ran: Optional[list] = None  # the last input shapes the model ran at
        self.stride: Optional[int] = None  # what its free height and width must be multiples of, where it says

    @property
    def input_shape(self) -> tuple:
        return self.metadata.input.shape

    @property
    def fixed_batch(self) -> Optional[int]:
        """The batch size the model was made for, when it is not free (many exported detectors take 1)."""
        first = self._in_specs[0].shape
        return first[0] if first and first[0] else None

    @property
    def input_names(self) -> list[str]:
        return [s.name for s in self._in_specs]

    @property
    def output_names(self) -> list[str]:
        return [s.name for s in self._out_specs]

    def _arrange(self, inputs: Inputs) -> list:
        names = self.input_names
        if isinstance(inputs, Mapping):
            unknown = [k for k in inputs if k not in names]
            missing = [n for n in names if n not in inputs]
            if unknown or missing:
                raise UserError(f"{self.path.name}: inputs are {', '.join(names)}"
                                + (f"; unknown {', '.join(map(str, unknown))}" if unknown else "")
                                + (f"; missing {', '.join(missing)}" if missing else ""))  # fmt: skip
            return [inputs[n] for n in names]
        if len(names) == 1:
            return [inputs]
        if isinstance(inputs, (list, tuple)) and len(inputs) == len(names):
            return list(inputs)
        raise UserError(f"{self.path.name}: the model takes {len(names)} inputs ({', '.join(names)}); give a "
                        "mapping by name or a list in that order")  # fmt: skip

    def native(self, inputs: Inputs):
        """``inputs`` in the tensors' own dtypes (quantized where the model takes integers), in the form given:
        what a deployment feeds (a camera's 8-bit frame to an ``int8_pixels`` model), for timing the model
        without the conversion of a float batch on every call."""
        xs = [convert(x) for x, convert in zip(self._arrange(inputs), self._to_inputs)]
        if isinstance(inputs, Mapping):
            return dict(zip(self.input_names, xs))
        return xs[0] if len(xs) == 1 else xs

    def _check_shapes(self, xs: list) -> None:
        shapes = tuple(np.shape(x) for x in xs)
        if shapes == self._checked:  # checked once per shape: this is the hot path
            return
        for spec, shape in zip(self._in_specs, shapes):
            ok = len(shape) == len(spec.shape) and all(e is None or e == a for e, a in zip(spec.shape[1:], shape[1:]))
            if not ok:
                raise UserError(f"{self.path.name}: input {spec.name!r} has shape {'×'.join(map(str, shape))}, "
                                f"the model expects {spec.shown()}")  # fmt: skip
        if self.stride and self.metadata.image_input is not None:
            i = self._in_specs.index(self.metadata.image_input)
            stride_rule(self.path.name, self._in_specs[i], self.metadata.layout, shapes[i], self.stride)
        if len({s[0] for s in shapes}) > 1:
            raise UserError(f"{self.path.name}: the inputs' batch sizes differ ({', '.join(str(s[0]) for s in shapes)})")
        self._checked = shapes

    def run(self, inputs: Inputs) -> dict[str, np.ndarray]:
        """Every output, by name, for a batch of model-ready inputs."""
        xs = self._arrange(inputs)
        if self._whole:  # one call per sample (``feeds.run_whole``)
            feeds = [convert(np.asarray(x)) for x, convert in zip(xs, self._to_inputs)]
            with interpreter_errors(self.path, "running the model"):
                raw = run_whole(self._run, self._in_specs, self._out_specs, feeds, self.path.name)
        else:
            self._check_shapes(xs)
            feeds = [convert(x) for x, convert in zip(xs, self._to_inputs)]
            try:
                raw = self._run(feeds)
            except Exception as exc:  # noqa: BLE001 - a size the graph cannot take, said as such
                shapes = [np.shape(x) for x in xs]
                raise shape_failure(self.path.name, self._in_specs, shapes, self._ran, exc) or \
                    interpreter_failure(self.path, "running the model", exc) from None  # fmt: skip
            self._ran = [np.shape(x) for x in xs]
        return {s.name: y if convert is None else convert(y)
                for s, y, convert in zip(self._out_specs, raw, self._from_outputs)}  # fmt: skip

    def predict(self, inputs: Inputs):
        """``run``, but a model with one output gives that array (float32 batches for edgedl's models)."""
        if self._single:  # the hot path (within 3 % of the bare interpreter: benchmarks/speed.py): no dicts
            x = inputs if type(inputs) is np.ndarray else np.asarray(inputs)
            if (x.shape,) != self._checked:
                self._check_shapes([x])
            if x.dtype != self._in_dtypes[0]:
                x = self._to_inputs[0](x)
            try:
                y = self._run_one(x)
            except Exception as exc:  # noqa: BLE001 - inline, not a context manager: this runs per call
                raise interpreter_failure(self.path, "running the model", exc) from None
            convert = self._from_outputs[0]
            return y if convert is None else convert(y)
        out = self.run(inputs)
        return next(iter(out.values())) if len(out) == 1 else out

    def _run(self, feeds: list) -> list:  # pragma: no cover - abstract
        raise NotImplementedError

    def _run_one(self, feed: np.ndarray) -> np.ndarray:
        """The one output of a one-input model (subclasses shorten this: it is the hot path)."""
        return self._run([feed])[0]


class TFLiteModel(Model):
    """A ``.tflite`` file run by ai-edge-litert, or tflite-runtime where that is what the device has."""

    def __init__(self, path: Path, data: bytes, record: Optional[ModelMetadata], threads: Optional[int]):
        module = import_first(
            [("ai_edge_litert.interpreter", "ai-edge-litert"), ("tflite_runtime.interpreter", "tflite-runtime")],
            "TFLite models",
        )
        try:  # the interpreter trusts the file: a broken structure can crash the process inside it
            check_tflite(data)
        except ValueError as exc:
            raise UserError(f"{path}: not a valid TFLite model ({exc}); re-export it or copy it again") from None
        self._module, self._data, self.path, self.threads = module, data, path, threads
        self.delegate = "xnnpack"  # the interpreters' default; dropped if it cannot run the graph
        with interpreter_errors(path, "loading the model"), native_noise_filtered():
            self._interp = self._interpreter(default_delegates=True)
            self._ins = self._interp.get_input_details()
            self._in_index = self._ins[0]["index"]
            self._outs = [d["index"] for d in self._interp.get_output_details()]
            specs_in, specs_out = introspect.tflite_specs(module, self._interp)
        if not specs_in or not specs_out:
            raise UserError(f"{path}: the model has no inputs or no outputs; it cannot be run")
        meta = _merge(record, "tflite", specs_in, specs_out, data)
        super().__init__(path, meta, threads)
        # A model converted with a fixed batch is fed chunks of that size.
        batch = [int(d["shape_signature"][0]) if len(d.get("shape_signature", d["shape"])) else 1 for d in self._ins]
        self._fixed_batch = batch[0] if all(b > 0 for b in batch) and len(set(batch)) == 1 else None
        self._shapes = [tuple(int(v) for v in d["shape"]) for d in self._ins]
        with interpreter_errors(path, "preparing the model"), native_noise_filtered():
            self._check_memory()
            self._interp.allocate_tensors()

    def _check_memory(self) -> None:
        """Refuse a model whose tensors need more memory than the machine has (a damaged shape can ask for
        terabytes; allocating them would swap the device to a halt instead of failing)."""
        need = 0
        for d in self._interp.get_tensor_details():
            count = 1
            for dim in d.get("shape", ()):
                count *= max(int(dim), 1)
            need += count * np.dtype(d["dtype"]).itemsize
        have = memory_bytes()
        if have and need > have // 2:
            raise UserError(f"{self.path.name}: its tensors need {need / 2**30:,.1f} GiB, more than half of this "
                            f"machine's {have / 2**30:,.1f} GiB; the file is damaged or too large for this device")

    def _interpreter(self, default_delegates: bool):
        kwargs = {}
        if not default_delegates:
            kwargs["experimental_op_resolver_type"] = self._module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        return self._module.Interpreter(model_content=self._data, num_threads=self.threads, **kwargs)

    def _without_delegate(self) -> None:
        """XNNPACK refuses some graphs (an unrolled int8 LSTM, for one): run them on the builtin kernels."""
        self._interp = self._interpreter(default_delegates=False)
        for d, shape in zip(self._ins, self._shapes):
            self._interp.resize_tensor_input(d["index"], list(shape))
        self._interp.allocate_tensors()
        self.delegate = "none"

    def _resize(self, shapes: list) -> None:
        # Free dimensions (batch; height and width of a fully convolutional model) follow the input.
        for d, shape in zip(self._ins, shapes):
            self._interp.resize_tensor_input(d["index"], list(shape))
        self._interp.allocate_tensors()
        self._shapes = shapes

    def _invoke(self, feeds: list) -> list:
        for d, x in zip(self._ins, feeds):
            self._interp.set_tensor(d["index"], x)
        try:
            self._interp.invoke()
        except RuntimeError as exc:
            if self.delegate != "xnnpack" or "XNNPACK" not in str(exc):
                raise
            self._without_delegate()
            for d, x in zip(self._ins, feeds):
                self._interp.set_tensor(d["index"], x)
            self._interp.invoke()
        return [self._interp.get_tensor(i) for i in self._outs]

    def _run_one(self, feed: np.ndarray) -> np.ndarray:
        # Every Python step after an invoke runs on caches the invoke has emptied: a call on the seed CNN
        # costs a microsecond a layer of calls, so the usual case (the shape of the last call) is set, invoke,
        # get here, and anything else (a new shape, a fixed batch, XNNPACK refusing) goes the long way.
        if self._fixed_batch is None and self._shapes[0] == feed.shape and self.delegate == "xnnpack":
            interp = self._interp
            interp.set_tensor(self._in_index, feed)
            try:
                interp.invoke()
            except RuntimeError:
                return self._run([feed])[0]
            return interp.get_tensor(self._outs[0])
        return self._run([feed])[0]

    def _run(self, feeds: list) -> list:
        if self._fixed_batch is None:
            shapes = [x.shape for x in feeds]
            if shapes != self._shapes:
                self._resize(shapes)
            return self._invoke(feeds)
        n, step = feeds[0].shape[0], self._fixed_batch
        if n % step:
            raise UserError(f"{self.path.name}: batch of {n} is not a multiple of the model's fixed batch {step}")
        shapes = [(step, *x.shape[1:]) for x in feeds]
        if shapes != self._shapes:
            self._resize(shapes)
        parts = [self._invoke([x[i : i + step] for x in feeds]) for i in range(0, n, step)]
        return [np.concatenate([p[k] for p in parts]) for k in range(len(self._outs))]


class OnnxModel(Model):
    """An ``.onnx`` file run by onnxruntime: TensorRT, then CUDA, then the CPU, whichever is installed."""

    def __init__(self, path: Path, data: bytes, record: Optional[ModelMetadata], threads: Optional[int], providers):
        check_onnx(path, data)
        session = onnx_session(path, data, threads, providers)
        with interpreter_errors(path, "reading the model's inputs and outputs"):
            specs_in = tuple(introspect.onnx_spec(a) for a in session.get_inputs())
            specs_out = tuple(introspect.onnx_spec(a) for a in session.get_outputs())
        if not specs_in or not specs_out:
            raise UserError(f"{path}: the model has no inputs or no outputs; it cannot be run")
        super().__init__(path, _merge(record, "onnx", specs_in, specs_out), threads)
        self._session = session
        self.delegate = session.get_providers()[0]  # the provider that runs first (what the report shows)
        stride = session.get_modelmeta().custom_metadata_map.get("stride", "")  # a detector's (Ultralytics)
        self.stride = int(stride) if stride.isdigit() and 1 < int(stride) <= 1024 else None

    def _run(self, feeds: list) -> list:
        return self._session.run(self.output_names, dict(zip(self.input_names, feeds)))


def _merge(record: Optional[ModelMetadata], fmt: str, specs_in: tuple, specs_out: tuple, data=None) -> ModelMetadata:
    """edgedl's record with the tensors the interpreter reports (the file is the truth), or a foreign model's."""
    from dataclasses import replace

    if record is None:
        return introspect.describe_file(fmt, specs_in, specs_out, data)
    if len(record.inputs) != len(specs_in) or len(record.outputs) != len(specs_out):
        raise UserError(f"model metadata lists {len(record.inputs)} inputs and {len(record.outputs)} outputs, the "
                        f"file has {len(specs_in)} and {len(specs_out)}; re-export the model")  # fmt: skip
    return replace(record, format=fmt, inputs=specs_in, outputs=specs_out)


def check_threads(threads: Optional[int]) -> None:
    """At least one, at most the cores this machine has (onnxruntime hangs or crashes on thousands)."""
    cores = os.cpu_count() or 1
    if threads is not None and not 1 <= threads <= cores:
        raise UserError(f"--threads {threads}: give 1 to {cores} (this machine has {cores} cores)")


def _format_of(path: Path) -> str:
    check_regular(path, "model file")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"{path}: unknown model format {path.suffix or '(no suffix)'!r}; expected .tflite or .onnx")
    return fmt


def read_metadata(path: str | os.PathLike) -> ModelMetadata:
    """What a model says about itself; edgedl's artifacts are read without an interpreter."""
    path = Path(path)
    fmt = _format_of(path)
    data = read_limited(path, MAX_MODEL_BYTES, "model file")
    record = edgedl_record(path, data, fmt)
    if record is not None:
        return record
    return load(path, threads=1, providers=["CPUExecutionProvider"] if fmt == "onnx" else None).metadata


def load(path: str | os.PathLike, threads: Optional[int] = None, providers: Optional[Sequence[str]] = None,
         normalization: Optional[Normalization] = None, layout: Optional[str] = None,
         labels: Optional[tuple] = None, trust: Optional[dict] = None) -> Model:  # fmt: skip
    """Load a ``.tflite`` or ``.onnx`` model, edgedl's or another tool's.

    A model inside an unpacked bundle is loaded only if every file of the
    bundle matches its manifest. ``providers`` (ONNX only) overrides the
    execution providers' order of preference. ``normalization``, ``layout``
    and ``labels`` replace what the file says (or what was assumed). With
    ``trust`` (public keys by id, ``runtime.signing.trusted_keys``) a model is
    loaded only if signed by one of them (its bundle's manifest, or itself).

    >>> model = load("cnn_int8.tflite", threads=1)      # doctest: +SKIP
    >>> probs = model.predict(images)                   # float32 in [0, 1], N×28×28×1
    >>> outputs = load("detector.onnx").run({"images": x})   # doctest: +SKIP
    """
    path = Path(path)
    fmt = _format_of(path)
    check_threads(threads)
    check_providers(path, providers)
    bundle = verify_for(path)
    data = read_limited(path, MAX_MODEL_BYTES, "model file")
    check_trusted(path, trust, bundle, data)
    record = edgedl_record(path, data, fmt)
    if fmt == "tflite":
        model: Model = TFLiteModel(path, data, record, threads)
    else:
        model = OnnxModel(path, data, record, threads, providers)
    model.metadata = model.metadata.with_preprocessing(normalization, layout, labels)
    return model
