"""What an artifact says about itself, so the device needs nothing else.

The exporters write this; the runtime reads it. A ``.tflite`` file carries it
in a sidecar ``<file>.tflite.json`` (the interpreters on the device cannot read
the TFLite metadata buffer), which also records the model file's sha256 so a
mismatched pair is refused. An ``.onnx`` file carries it inside, as the
``edgedl`` entry of its ``metadata_props``.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from .errors import UserError

SCHEMA_VERSION = 1
ONNX_METADATA_KEY = "edgedl"
TASKS = ("classification", "denoising")


@dataclass(frozen=True)
class Quantization:
    """Affine int8/uint8 mapping: ``real = (q - zero_point) * scale``."""

    scale: float
    zero_point: int


@dataclass(frozen=True)
class TensorSpec:
    """One input or output tensor: its name, shape (None for a free dimension) and dtype."""

    name: str
    shape: tuple
    dtype: str
    quantization: Optional[Quantization] = None

    @classmethod
    def from_dict(cls, d: dict) -> "TensorSpec":
        quant = d.get("quantization")
        return cls(
            name=d["name"],
            shape=tuple(d["shape"]),
            dtype=d["dtype"],
            quantization=Quantization(**quant) if quant else None,
        )


@dataclass(frozen=True)
class Normalization:
    """How an 8-bit pixel becomes a model input: ``x = pixel * scale + offset``."""

    scale: float = 1.0 / 255.0
    offset: float = 0.0


@dataclass(frozen=True)
class ModelMetadata:
    """Everything the runtime needs to feed an artifact and read its answer."""

    task: str
    format: str
    precision: str
    input: TensorSpec
    output: TensorSpec
    normalization: Normalization = field(default_factory=Normalization)
    labels: Optional[tuple] = None
    techniques: tuple = ()
    source_sha256: str = ""
    edgedl_version: str = ""
    artifact_sha256: str = ""
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self):
        if self.task not in TASKS:
            raise UserError(f"unknown task {self.task!r} in model metadata; expected one of {', '.join(TASKS)}")

    @property
    def image_shape(self) -> tuple:
        """(height, width, channels) of one input image, None where free."""
        return tuple(self.input.shape[1:])

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input"]["shape"] = list(self.input.shape)
        d["output"]["shape"] = list(self.output.shape)
        d["labels"] = list(self.labels) if self.labels is not None else None
        d["techniques"] = list(self.techniques)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelMetadata":
        version = d.get("schema_version", 0)
        if version > SCHEMA_VERSION:
            raise UserError(
                f"model metadata has schema_version {version}, newer than this runtime's {SCHEMA_VERSION}: "
                "upgrade edgedl on the device"
            )
        return cls(
            task=d["task"],
            format=d["format"],
            precision=d["precision"],
            input=TensorSpec.from_dict(d["input"]),
            output=TensorSpec.from_dict(d["output"]),
            normalization=Normalization(**d.get("normalization", {})),
            labels=tuple(d["labels"]) if d.get("labels") is not None else None,
            techniques=tuple(d.get("techniques", ())),
            source_sha256=d.get("source_sha256", ""),
            edgedl_version=d.get("edgedl_version", ""),
            artifact_sha256=d.get("artifact_sha256", ""),
            schema_version=version,
        )


def sidecar_path(model_path: str | os.PathLike) -> Path:
    """Where a ``.tflite`` file's metadata lives: ``model.tflite`` -> ``model.tflite.json``."""
    p = Path(model_path)
    return p.with_name(p.name + ".json")


def parse_metadata(text: str, source: str) -> ModelMetadata:
    """Parse metadata JSON, naming ``source`` when it is not valid."""
    try:
        return ModelMetadata.from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{source}: model metadata is not valid ({exc}); re-export the model with edgedl") from None
