"""edgedl's device side: load an exported artifact and run it with numpy and one interpreter.

Nothing here imports TensorFlow or the host packages (``edgedl``, ``exporters``);
the interpreter for a format is imported only when a model of that format loads.

>>> import runtime
>>> model = runtime.load("cnn_int8.tflite", threads=1)   # doctest: +SKIP
>>> model.predict(images).argmax(-1)                     # doctest: +SKIP
"""
from .errors import UserError
from .metadata import ModelMetadata, Normalization, Quantization, TensorSpec
from .model import Model, load, read_metadata
from .sequence import FrameStream

__all__ = [
    "FrameStream",
    "Model",
    "ModelMetadata",
    "Normalization",
    "Quantization",
    "TensorSpec",
    "UserError",
    "load",
    "read_metadata",
]
