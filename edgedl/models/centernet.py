"""CenterNet-lite (Zhou et al., 2019, "Objects as Points"): a single-shot detector with no anchors and no
learned NMS, a small plain CNN to stride 4 and one head, builtin TFLite operators only."""
from __future__ import annotations

from exporters.tfkeras import keras

from ._registry import register_model

CANVAS = 96
STRIDE = 4


@register_model(task="detection", input_shape=(CANVAS, CANVAS, 1), recipes=("prune", "qat"),
                train_defaults={"epochs": 12, "batch_size": 32, "lr_drop_at": 0.7})  # fmt: skip
def centernet_lite(num_classes: int = 10, input_shape: tuple = (CANVAS, CANVAS, 1), width: int = 32):
    """CenterNet-lite: 7 convolutions to stride 4, then per cell class heat-maps, box size and centre offset."""
    k = keras()
    layers = k.layers

    def conv(x, filters, name, stride=1):
        return layers.Conv2D(filters, 3, strides=stride, padding="same", activation="relu", name=name)(x)

    image = layers.Input(shape=input_shape, name="image")
    x = conv(image, width // 2, "stem")
    x = conv(conv(x, width, "down1", 2), width, "conv1")
    x = conv(conv(x, width * 3 // 2, "down2", 2), width * 3 // 2, "conv2")
    x = conv(conv(x, width * 2, "conv3"), width * 2, "conv4")  # 45×45 pixels seen: a whole digit
    heat = layers.Conv2D(num_classes, 1, activation="sigmoid", name="heat",
                         bias_initializer=k.initializers.Constant(-4.6))(x)  # starts at p = 0.01 (focal loss)
    box = layers.Conv2D(4, 1, activation="sigmoid", name="box")(x)  # width, height (of the input); centre offset
    out = layers.Concatenate(name="detections", dtype="float32")([heat, box])
    return k.Model(image, out, name="centernet_lite")
