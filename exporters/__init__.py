"""Keras model -> self-describing ``.tflite`` / ``.onnx`` artifacts, one module per format.

>>> from exporters import export, ModelInfo
>>> art = export(model, "out/cnn_int8.tflite", "tflite", precision="int8",
...              info=ModelInfo(task="classification", labels=tuple("0123456789")),
...              calibration=x_train[:300])          # doctest: +SKIP
"""
from __future__ import annotations

from pathlib import Path

from . import onnx as _onnx  # noqa: F401  (registers "onnx")
from . import tflite as _tflite  # noqa: F401  (registers "tflite")
from ._base import EDGEDL_VERSION, Artifact, NotApplicable, ExportConfig, ModelInfo, get_exporter, list_formats, register_exporter
from .onnx import OnnxConfig
from .onnx_source import ACTIVATIONS, CALIBRATIONS, activation_type, convert_onnx
from .tflite import TFLiteConfig


def export(model, path, fmt: str, info: ModelInfo, precision: str = "float32", **config) -> Artifact:
    """Export ``model`` to ``path`` in format ``fmt``; ``config`` goes to that format's config class."""
    exporter = get_exporter(fmt)
    cfg = exporter.config_cls(precision=precision, **config)
    return exporter.export(model, Path(path), cfg, info)


__all__ = [
    "ACTIVATIONS",
    "CALIBRATIONS",
    "EDGEDL_VERSION",
    "Artifact",
    "ExportConfig",
    "ModelInfo",
    "NotApplicable",
    "OnnxConfig",
    "TFLiteConfig",
    "activation_type",
    "convert_onnx",
    "export",
    "get_exporter",
    "list_formats",
    "register_exporter",
]
