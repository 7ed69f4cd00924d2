"""The seed's MNIST classifier: Conv32-Pool-Conv64-Pool-Conv64-Dense64-Dense10 on 28×28×1."""
from __future__ import annotations

from .._tf import keras
from ._registry import register_model


@register_model(task="classification", input_shape=(28, 28, 1))
def cnn(num_classes: int = 10, input_shape: tuple = (28, 28, 1)):
    """The seed CNN classifier (93,322 parameters for 10 classes on 28×28×1)."""
    k = keras()
    layers = k.layers
    return k.Sequential(
        [
            layers.Input(shape=input_shape, name="image"),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            # float32 softmax: under mixed precision (GPU) the probabilities stay exact.
            layers.Dense(num_classes, activation="softmax", dtype="float32"),
        ],
        name="cnn",
    )
