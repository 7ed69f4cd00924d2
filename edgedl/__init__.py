"""edgedl's host side: data, the model zoo, training, the pipeline.

Names are imported on first use, so ``import edgedl`` stays cheap and
TensorFlow loads only when a function that needs it is called.

>>> import edgedl
>>> model = edgedl.create_model("cnn")                       # doctest: +SKIP
>>> report = edgedl.run_pipeline(edgedl.PipelineConfig(model="cnn", out="runs/cnn"))  # doctest: +SKIP
"""
from __future__ import annotations

import importlib

from exporters import EDGEDL_VERSION as __version__  # noqa: E402  (read from the package metadata)

_EXPORTS = {
    "create_model": ".models",
    "list_models": ".models",
    "register_model": ".models",
    "Dataset": ".datasets",
    "load_data": ".datasets",
    "mnist_default": ".datasets",
    "TrainConfig": ".train",
    "train": ".train",
    "load_keras_model": ".train",
    "PipelineConfig": ".pipeline",
    "run_pipeline": ".pipeline",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module 'edgedl' has no attribute {name!r}")
