"""edgedl's host side: data, the model zoo, training, compression, the pipeline.

Names are imported on first use, so ``import edgedl`` stays cheap and
TensorFlow loads only when a function that needs it is called.

>>> import edgedl
>>> model = edgedl.create_model("cnn")                       # doctest: +SKIP
>>> report = edgedl.run_pipeline(edgedl.PipelineConfig(model="cnn", out="runs/cnn"))  # doctest: +SKIP
"""
from __future__ import annotations

from exporters import EDGEDL_VERSION as __version__  # noqa: E402  (read from the package metadata)


def _models():
    from . import models

    return models


def _datasets():
    from .data import datasets

    return datasets


def _train():
    from .training import train

    return train


def _model_io():
    from .training import model_io

    return model_io


def _pipeline():
    from . import pipeline

    return pipeline


# name -> the function that imports the module it lives in (first use only)
_EXPORTS = {
    "create_model": _models,
    "list_models": _models,
    "register_model": _models,
    "Dataset": _datasets,
    "load_data": _datasets,
    "mnist_default": _datasets,
    "TrainConfig": _train,
    "train": _train,
    "load_keras_model": _model_io,
    "PipelineConfig": _pipeline,
    "run_pipeline": _pipeline,
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(_EXPORTS[name](), name)
    raise AttributeError(f"module 'edgedl' has no attribute {name!r}")
