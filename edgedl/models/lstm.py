"""The seed's recurrent classifier: an LSTM over the 28 rows of an MNIST image.

Unrolled over its 28 steps: that is what converts to TFLite with builtin ops
in all four precisions, int8 included, and carries no state from one call to
the next (a fused, stateful LSTM op leaked state between invocations; see
STACK.md).
"""
from __future__ import annotations

from exporters.tfkeras import keras

from ._registry import register_model


# tfmot has no quantization-aware training for LSTM layers: the QAT recipes do not apply.
@register_model(task="classification", input_shape=(28, 28, 1),
                recipes=("prune", "prune_2_4", "cluster", "distill", "student"))  # fmt: skip
def lstm(num_classes: int = 10, input_shape: tuple = (28, 28, 1), units: int = 128):
    """LSTM(128) over the image rows (28 steps × 28 features) → Dense(10)."""
    k = keras()
    layers = k.layers
    rows, cols, channels = input_shape
    return k.Sequential(
        [
            layers.Input(shape=input_shape, name="image"),
            layers.Reshape((rows, cols * channels)),
            layers.LSTM(units, unroll=True),
            layers.Dense(num_classes, activation="softmax", dtype="float32"),
        ],
        name="lstm",
    )
