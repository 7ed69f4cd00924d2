"""What an artifact says about itself, so the device needs nothing else: the one schema, validated on read.

edgedl's artifacts carry this JSON inside the model file: an ``.onnx`` as the
``edgedl`` entry of its ``metadata_props``, a ``.tflite`` as a metadata buffer
named ``edgedl`` (earlier artifacts: a sidecar ``<file>.tflite.json``, still
read). A model from another tool carries none: ``runtime.introspect`` builds
the same record from what the file itself says.

Every value is checked when read (``ModelMetadata.from_dict``): a damaged or
edited record is refused in one line naming the field, never used.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional

from .errors import UserError, one_line
from .tasks import TASKS

SCHEMA_VERSION = 3  # 3: ``resize``, how a picture of another shape is fitted to the input
RESIZE_POLICIES = ("stretch", "crop", "pad")
ONNX_METADATA_KEY = "edgedl"
TFLITE_METADATA_NAME = "edgedl"
FORMATS = ("tflite", "onnx", "keras")  # keras: a model the host describes (the pipeline's original), never a file
LAYOUTS = ("NHWC", "NCHW")
DTYPES = ("float32", "float16", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
          "bool")  # fmt: skip
MAX_DIM = 1 << 20
MAX_LABELS = 100_000


def _fail(where: str, what: str) -> UserError:
    return UserError(f"model metadata: {where} {what}")


def _finite(value, where: str, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(where, f"must be a finite number, not {value!r}")
    if positive and value <= 0:
        raise _fail(where, f"must be positive, not {value!r}")
    return float(value)


def _int(value, where: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _fail(where, f"must be a whole number in [{lo}, {hi}], not {value!r}")
    return value


def _str(value, where: str, pattern: Optional[str] = None, limit: int = 4096) -> str:
    if not isinstance(value, str) or len(value) > limit or (pattern and not re.fullmatch(pattern, value)):
        raise _fail(where, f"is not a valid string ({str(value)[:40]!r})")
    return value


@dataclass(frozen=True)
class Quantization:
    """Affine integer mapping: ``real = (q - zero_point) * scale``."""

    scale: float
    zero_point: int

    def __post_init__(self):
        _finite(self.scale, "quantization scale", positive=True)
        _int(self.zero_point, "quantization zero_point", -(1 << 31), (1 << 32) - 1)


@dataclass(frozen=True)
class TensorSpec:
    """One input or output tensor: its name, shape (None for a free dimension) and dtype."""

    name: str
    shape: tuple
    dtype: str
    quantization: Optional[Quantization] = None

    def __post_init__(self):
        _str(self.name, "tensor name", limit=1024)
        if not isinstance(self.shape, tuple) or len(self.shape) > 8:
            raise _fail(f"tensor {self.name!r} shape", f"must be a list of at most 8 dimensions, not {self.shape!r}")
        for d in self.shape:
            if d is not None:
                _int(d, f"tensor {self.name!r} dimension", 0, MAX_DIM)
        if self.dtype not in DTYPES:
            raise _fail(f"tensor {self.name!r} dtype", f"{self.dtype!r} is not one of {', '.join(DTYPES)}")
        if self.quantization is not None and self.dtype.startswith("float"):
            raise _fail(f"tensor {self.name!r}", "is float but carries quantization parameters")

    @classmethod
    def from_dict(cls, d: dict) -> "TensorSpec":
        if not isinstance(d, dict):
            raise _fail("tensor", f"must be an object, not {type(d).__name__}")
        quant = d.get("quantization")
        if quant is not None and not isinstance(quant, dict):
            raise _fail("quantization", "must be an object")
        shape = d.get("shape")
        if not isinstance(shape, list):
            raise _fail(f"tensor {d.get('name')!r} shape", "must be a list")
        return cls(
            name=d.get("name"),
            shape=tuple(shape),
            dtype=d.get("dtype"),
            quantization=Quantization(quant.get("scale"), quant.get("zero_point")) if quant else None,
        )

    def shown(self) -> str:
        """``N×28×28×1``-style text; a free dimension is ``?`` (``N`` for the batch); ``scalar`` for none."""
        return "×".join(("N" if i == 0 else "?") if d is None else str(d) for i, d in enumerate(self.shape)) or "scalar"


@dataclass(frozen=True)
class Normalization:
    """How an 8-bit pixel becomes a model input: ``x = pixel * scale + offset``, per channel or for all.

    ``from_mean_std`` gives the usual ``(pixel / 255 - mean) / std`` form.
    """

    scale: tuple = (1.0 / 255.0,)
    offset: tuple = (0.0,)

    def __post_init__(self):
        # Accept plain numbers (schema 1 wrote floats) and keep tuples.
        object.__setattr__(self, "scale", tuple(self.scale) if isinstance(self.scale, (list, tuple)) else (self.scale,))
        object.__setattr__(self, "offset",
                           tuple(self.offset) if isinstance(self.offset, (list, tuple)) else (self.offset,))  # fmt: skip
        for name in ("scale", "offset"):
            values = getattr(self, name)
            if not 1 <= len(values) <= 4:
                raise _fail(f"normalization {name}", "must hold 1 to 4 values (one per channel)")
            for v in values:
                _finite(v, f"normalization {name}")
        if any(s == 0 for s in self.scale):
            raise _fail("normalization scale", "must not be zero")

    @classmethod
    def from_mean_std(cls, mean, std, max_pixel: float = 255.0) -> "Normalization":
        """``x = (pixel / max_pixel - mean) / std``; ``mean`` and ``std`` per channel or one for all."""
        mean = tuple(mean) if isinstance(mean, (list, tuple)) else (mean,)
        std = tuple(std) if isinstance(std, (list, tuple)) else (std,)
        if len(std) == 1 and len(mean) > 1:
            std = std * len(mean)
        if len(mean) == 1 and len(std) > 1:
            mean = mean * len(std)
        if len(mean) != len(std):
            raise UserError(f"--mean has {len(mean)} values and --std {len(std)}: give one per channel, or one")
        for s in std:
            if not math.isfinite(s) or s == 0:
                raise UserError(f"--std {s} is not a usable divisor")
        return cls(tuple(1.0 / (max_pixel * s) for s in std), tuple(-m / s for m, s in zip(mean, std)))

    def shown(self) -> str:
        def fmt(values):
            return ", ".join(f"{v:.6g}" for v in values)

        return f"pixel × [{fmt(self.scale)}] + [{fmt(self.offset)}]"


@dataclass(frozen=True)
class ModelMetadata:
    """Everything the runtime needs to feed an artifact and read its answer.

    ``origin`` says where the record came from: ``edgedl`` (written by the
    exporters), ``tflite-metadata`` (the file's own TFLite Metadata) or
    ``file`` (only the tensors the interpreter reports). ``normalization``
    and ``layout`` describe the image input (the first input of rank 4).
    """

    task: str
    format: str
    precision: str
    inputs: tuple
    outputs: tuple
    normalization: Normalization = field(default_factory=Normalization)
    layout: str = "NHWC"
    labels: Optional[tuple] = None
    techniques: tuple = ()
    source_sha256: str = ""
    build_key: str = ""
    edgedl_version: str = ""
    artifact_sha256: str = ""
    origin: str = "edgedl"
    notes: tuple = ()  # what was assumed rather than read (a foreign model's normalisation, say)
    # The task's decoding parameters, as (name, number) pairs: an embedder's same/different threshold, say.
    decoding: tuple = ()
    # How a picture of another aspect becomes the input: "stretch" (resized as it is), "crop" (the centre of
    # the input's aspect, then resized) or "pad" (black borders to the input's aspect, then resized).
    resize: str = "stretch"
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self):
        if self.task not in TASKS:
            raise _fail("task", f"{self.task!r} is unknown; expected one of {', '.join(TASKS)}")
        if self.format not in FORMATS:
            raise _fail("format", f"{self.format!r} is unknown; expected one of {', '.join(FORMATS)}")
        _str(self.precision, "precision", r"[a-z0-9_]{1,32}")
        if self.layout not in LAYOUTS:
            raise _fail("layout", f"{self.layout!r} is neither NHWC nor NCHW")
        if self.resize not in RESIZE_POLICIES:
            raise _fail("resize", f"{self.resize!r} is none of {', '.join(RESIZE_POLICIES)}")
        for kind in ("inputs", "outputs"):
            specs = getattr(self, kind)
            if not isinstance(specs, tuple) or not specs or not all(isinstance(s, TensorSpec) for s in specs):
                raise _fail(kind, "must list at least one tensor")
            if len({s.name for s in specs}) != len(specs):
                raise _fail(kind, "name the same tensor twice")
        if self.labels is not None:
            if not isinstance(self.labels, tuple) or len(self.labels) > MAX_LABELS or \
                    not all(isinstance(lb, str) and len(lb) <= 256 for lb in self.labels):  # fmt: skip
                raise _fail("labels", "must be a list of short strings")
            classes = self.outputs[0].shape[-1] if self.outputs[0].shape else None
            if TASKS[self.task].class_scores and classes is not None and len(self.labels) != classes:
                raise _fail("labels", f"name {len(self.labels)} classes but the output has {classes}")
        for name in ("source_sha256", "artifact_sha256", "build_key"):
            _str(getattr(self, name), name, r"(|[0-9a-f]{64})")
        _str(self.edgedl_version, "edgedl_version", limit=64)
        if not isinstance(self.decoding, tuple) or len(self.decoding) > 64 or not all(
                isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) and len(p[0]) <= 64
                and isinstance(p[1], (int, float)) and math.isfinite(p[1]) for p in self.decoding):  # fmt: skip
            raise _fail("decoding", "must map short names to finite numbers")
        for name in ("techniques", "notes"):
            values = getattr(self, name)
            if not isinstance(values, tuple) or not all(isinstance(t, str) and len(t) <= 512 for t in values):
                raise _fail(name, "must be a list of strings")

    def decoding_value(self, name: str, default: Optional[float] = None) -> Optional[float]:
        """A decoding parameter the exporter recorded, or ``default``."""
        return dict(self.decoding).get(name, default)

    # -- single-input/-output conveniences (the zoo's models) ---------------------------------------

    @property
    def input(self) -> TensorSpec:
        return self.inputs[0]

    @property
    def output(self) -> TensorSpec:
        return self.outputs[0]

    @property
    def image_input(self) -> Optional[TensorSpec]:
        """The input a picture is fed to: the first of rank 4 (N×H×W×C or N×C×H×W), if any."""
        return next((s for s in self.inputs if len(s.shape) == 4), None)

    @property
    def image_shape(self) -> tuple:
        """(height, width, channels) of one input image, None where free; sequence models: the frames too."""
        spec = self.image_input or self.inputs[0]
        dims = tuple(spec.shape[1:])
        if len(dims) == 3 and self.layout == "NCHW":
            return (dims[1], dims[2], dims[0])
        return dims

    def with_preprocessing(self, normalization: Optional[Normalization] = None, layout: Optional[str] = None,
                           labels: Optional[tuple] = None) -> "ModelMetadata":  # fmt: skip
        """This record with the user's preprocessing choices in place of what the file says."""
        changes = {k: v for k, v in (("normalization", normalization), ("layout", layout), ("labels", labels))
                   if v is not None}  # fmt: skip
        return replace(self, **changes)

    # -- JSON ---------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        d = asdict(self)
        d["inputs"] = [_spec_dict(s) for s in self.inputs]
        d["outputs"] = [_spec_dict(s) for s in self.outputs]
        d["normalization"] = {"scale": list(self.normalization.scale), "offset": list(self.normalization.offset)}
        d["labels"] = list(self.labels) if self.labels is not None else None
        d["techniques"] = list(self.techniques)
        d["notes"] = list(self.notes)
        d["decoding"] = dict(self.decoding)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelMetadata":
        if not isinstance(d, dict):
            raise _fail("record", f"must be a JSON object, not {type(d).__name__}")
        version = d.get("schema_version", 1)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise _fail("schema_version", f"must be a positive whole number, not {version!r}")
        if version > SCHEMA_VERSION:
            raise UserError(f"model metadata has schema_version {version}, newer than this runtime's "
                            f"{SCHEMA_VERSION}: upgrade edgedl on the device")  # fmt: skip
        if version == 1:  # one input and one output, a scalar normalisation
            ins, outs = [d.get("input")], [d.get("output")]
        else:
            ins, outs = d.get("inputs"), d.get("outputs")
        if not isinstance(ins, list) or not isinstance(outs, list):
            raise _fail("inputs/outputs", "must be lists of tensors")
        norm = d.get("normalization") or {}
        if not isinstance(norm, dict):
            raise _fail("normalization", "must be an object")
        labels = d.get("labels")
        if labels is not None and not isinstance(labels, list):
            raise _fail("labels", "must be a list")
        decoding = d.get("decoding") or {}
        if not isinstance(decoding, dict):
            raise _fail("decoding", "must be an object")
        techniques, notes = d.get("techniques", []), d.get("notes", [])
        if not isinstance(techniques, list) or not isinstance(notes, list):
            raise _fail("techniques/notes", "must be lists")
        return cls(
            task=d.get("task"),
            format=d.get("format"),
            precision=d.get("precision"),
            inputs=tuple(TensorSpec.from_dict(s) for s in ins),
            outputs=tuple(TensorSpec.from_dict(s) for s in outs),
            normalization=Normalization(norm.get("scale", 1.0 / 255.0), norm.get("offset", 0.0)),
            layout=d.get("layout", "NHWC"),
            labels=tuple(labels) if labels is not None else None,
            techniques=tuple(techniques),
            source_sha256=d.get("source_sha256", ""),
            build_key=d.get("build_key", ""),
            edgedl_version=d.get("edgedl_version", ""),
            artifact_sha256=d.get("artifact_sha256", ""),
            origin=_str(d.get("origin", "edgedl"), "origin", r"[a-z-]{1,32}"),
            notes=tuple(notes),
            decoding=tuple(sorted(decoding.items())),
            resize=d.get("resize", "stretch") if version >= 3 else "stretch",
            schema_version=SCHEMA_VERSION,
        )


def _spec_dict(spec: TensorSpec) -> dict:
    d = asdict(spec)
    d["shape"] = list(spec.shape)
    return d


def sidecar_path(model_path: str | os.PathLike) -> Path:
    """Where an older ``.tflite`` artifact keeps its metadata: ``model.tflite`` -> ``model.tflite.json``."""
    p = Path(model_path)
    return p.with_name(p.name + ".json")


def parse_metadata(text, source: str) -> ModelMetadata:
    """Parse metadata JSON (str or bytes), naming ``source`` when it is not valid."""
    try:
        return ModelMetadata.from_dict(json.loads(text))
    except UserError as exc:
        raise UserError(f"{source}: {exc}; re-export the model with edgedl") from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise UserError(f"{source}: model metadata is not valid JSON ({one_line(exc, 80)}); re-export the model with "
                        "edgedl") from None  # fmt: skip
