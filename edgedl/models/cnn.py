"""The seed's MNIST classifier: Conv32-Pool-Conv64-Pool-Conv64-Dense64-Dense10 on 28×28×1."""
from __future__ import annotations

from exporters.tfkeras import keras

from ._registry import register_model


@register_model(task="classification", input_shape=(28, 28, 1))
def cnn(num_classes: int = 10, input_shape: tuple = (28, 28, 1), width: float = 1.0, name: str = "cnn"):
    """The seed CNN classifier (93,322 parameters for 10 classes on 28×28×1).

    ``width`` scales every layer's filters and units (a width multiplier).
    """
    k = keras()
    layers = k.layers

    def w(n: int) -> int:
        return max(1, int(round(n * width)))

    return k.Sequential(
        [
            layers.Input(shape=input_shape, name="image"),
            layers.Conv2D(w(32), 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(w(64), 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(w(64), 3, activation="relu"),
            layers.Flatten(),
            layers.Dense(w(64), activation="relu"),
            # float32 softmax: under mixed precision (GPU) the probabilities stay exact.
            layers.Dense(num_classes, activation="softmax", dtype="float32"),
        ],
        name=name,
    )


@register_model(task="classification", input_shape=(28, 28, 1))
def cnn_student(num_classes: int = 10, input_shape: tuple = (28, 28, 1)):
    """The seed CNN at width 0.25: a distillation student with about 13× fewer multiply-accumulates."""
    return cnn(num_classes, input_shape, width=0.25, name="cnn_student")
