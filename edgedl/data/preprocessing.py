"""What a model's input is, in pixels: recorded in every artifact, and applied to the data it is measured on.

The zoo's models take ``pixel / 255``. A user's model may normalise its input
itself (a ``Rescaling`` or ``Normalization`` layer right after the input: it
then takes raw pixels), or have been trained on ``(pixel / 255 - mean) / std``
(``--mean/--std``). The artifact records the choice, and the data the pipeline
calibrates, checks and evaluates with is mapped the same way.
"""
from __future__ import annotations

import numpy as np

from runtime.metadata import Normalization

DEFAULT = Normalization()
RAW_PIXELS = Normalization(1.0, 0.0)
OWN_PREPROCESSING = ("Rescaling", "Normalization")


def normalizes_itself(model) -> bool:
    """Whether the layer right after the model's (first) input is a Rescaling or Normalization layer."""
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    return bool(layers) and type(layers[0]).__name__ in OWN_PREPROCESSING


def model_normalization(model, mean=None, std=None) -> tuple[Normalization, str]:
    """The normalisation a model's input takes, and why: the user's ``mean``/``std`` (of pixel / 255), raw
    pixels for a model that normalises itself, or pixel / 255."""
    if mean is not None or std is not None:
        if mean is None or std is None:
            from runtime.errors import UserError

            raise UserError("--mean and --std go together")
        return Normalization.from_mean_std(mean, std), "given with --mean/--std"
    if model is not None and normalizes_itself(model):
        return RAW_PIXELS, "the model's own Rescaling/Normalization layer takes raw pixels"
    return DEFAULT, "pixel / 255"


def to_model_inputs(x01: np.ndarray, norm: Normalization) -> np.ndarray:
    """Images in [0, 1] (the data loaders' form) as the model's inputs under ``norm``."""
    if norm == DEFAULT:
        return x01
    pixels = np.asarray(x01, dtype=np.float32) * np.float32(255.0)
    return (pixels * np.float32(norm.scale) + np.float32(norm.offset)).astype(np.float32)
