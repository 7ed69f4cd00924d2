"""MobileNetV2 (Sandler et al., 2018) as the zoo's real-scale classifier: keras-applications' network at any
width (``alpha``) and input size, trained from scratch or from a checkpoint the user has (``--weights``)."""
from __future__ import annotations

from exporters.tfkeras import keras

from ._registry import register_model

# PyTorch's default (its 0.1): the moving statistics forget their start (a variance of 1) within a hundred steps.
# Trained from scratch, the deep layers' variances fall to about 0.001; keras-applications' 0.999 (and
# Keras's 0.99) still carried 8 % of that start after 250 steps: a network 93 % right in training mode
# answered every evaluation picture alike.
BATCH_NORM_MOMENTUM = 0.9


@register_model(task="classification", input_shape=(224, 224, 3), options=("width", "input_size"), raw_pixels=True,
                train_defaults={"epochs": 10, "batch_size": 32, "learning_rate": 1e-3})  # fmt: skip
def mobilenet_v2(num_classes: int = 10, width: float = 1.0, input_size: int = 224):
    """MobileNetV2 at --width 0.35–1.4 and --input-size 96–224 (1.0 at 224: 3.5 M parameters, 300 M MACs).

    It takes 0–255 pixels and scales them to [-1, 1] itself, as keras-applications' ImageNet weights expect,
    so that a checkpoint of them loads as it is.
    """
    k = keras()
    inputs = k.Input((input_size, input_size, 3), name="image")
    x = k.layers.Rescaling(1 / 127.5, offset=-1.0, name="to_unit_range")(inputs)
    # Built on our input: one flat model (tfmot wraps layers, not models inside models), keras-applications'
    # layer names (a checkpoint of them loads by name).
    body = k.applications.MobileNetV2(input_tensor=x, alpha=width, include_top=False, weights=None, pooling="avg")
    for layer in body.layers:
        if isinstance(layer, k.layers.BatchNormalization):
            layer.momentum = BATCH_NORM_MOMENTUM
    x = k.layers.Dropout(0.2, name="head_dropout")(body.output)
    outputs = k.layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(x)
    return k.Model(inputs, outputs, name=f"mobilenet_v2_{width:g}_{input_size}")
