"""An image embedder (the face-recognition pattern, on digits): a small CNN to a unit vector."""
from __future__ import annotations

from exporters.tfkeras import keras

from ._registry import register_model


@register_model(task="embedding", input_shape=(28, 28, 1), recipes=("prune", "qat"),
                train_defaults={"epochs": 30, "batch_size": 256})  # fmt: skip
def embedder(dimensions: int = 32, input_shape: tuple = (28, 28, 1)):
    """Embedder: Conv32-Pool-Conv64-Pool-Conv64-Dense128 to a unit vector of 32 (contrastive training)."""
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
            layers.Dense(128, activation="relu"),
            layers.Dense(dimensions),
            layers.UnitNormalization(name="embedding", dtype="float32"),
        ],
        name="embedder",
    )
