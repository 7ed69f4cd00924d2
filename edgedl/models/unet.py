"""U-Net-lite (Ronneberger et al., 2015, narrowed for a CPU): a class for every pixel of a 64×64 canvas."""
from __future__ import annotations

from exporters.tfkeras import keras

from ._registry import register_model

CANVAS = 64


@register_model(task="segmentation", input_shape=(CANVAS, CANVAS, 1), recipes=("prune", "qat"),
                train_defaults={"epochs": 12, "batch_size": 32, "lr_drop_at": 0.7})  # fmt: skip
def unet_lite(num_classes: int = 11, input_shape: tuple = (CANVAS, CANVAS, 1), widths: tuple = (16, 24, 32, 48)):
    """U-Net-lite: 3 poolings (16-24-32-48 filters), skip connections, one class score per pixel."""
    k = keras()
    layers = k.layers

    def conv(x, filters, name):
        return layers.Conv2D(filters, 3, padding="same", activation="relu", name=name)(x)

    image = layers.Input(shape=input_shape, name="image")
    x, skips = image, []
    for level, filters in enumerate(widths[:-1]):
        x = conv(conv(x, filters, f"down{level}_a"), filters, f"down{level}_b")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level}")(x)
    x = conv(conv(x, widths[-1], "bottom_a"), widths[-1], "bottom_b")
    for level in reversed(range(len(widths) - 1)):
        x = layers.UpSampling2D(2, name=f"up{level}")(x)  # nearest: a builtin op in every runtime
        x = layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = conv(x, widths[level], f"merge{level}")
    # float32 softmax: under mixed precision (GPU) the probabilities stay exact.
    scores = layers.Conv2D(num_classes, 1, activation="softmax", dtype="float32", name="class_scores")(x)
    return k.Model(image, scores, name="unet_lite")
