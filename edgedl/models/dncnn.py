"""DnCNN (Zhang et al., 2017) and IRCNN's denoiser (Zhang et al., 2017): residual CNN denoisers, fully
convolutional, any image size.

DnCNN: conv+ReLU, then (depth - 2) × conv+batch-norm+ReLU, then a conv that
predicts the noise; the output is the input minus that noise. The full size is
17 layers × 64 channels (about 556 k parameters, meant for a GPU); the lite
size trains in minutes on a CPU but sees only 17 × 17 pixels.

IRCNN: the same plan with 7 dilated 3×3 convolutions (dilations 1-2-3-4-3-2-1),
which see 33 × 33 pixels, as far as a 16-layer DnCNN, for the cost of 7.
"""
from __future__ import annotations

from exporters.tfkeras import keras

from ._registry import register_model


def _dncnn(depth: int, width: int, channels: int, name: str):
    k = keras()
    layers = k.layers
    noisy = layers.Input(shape=(None, None, channels), name="noisy")
    x = layers.Conv2D(width, 3, padding="same", activation="relu")(noisy)
    for _ in range(depth - 2):
        x = layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    noise = layers.Conv2D(channels, 3, padding="same", name="noise")(x)
    clean = layers.Subtract(name="denoised", dtype="float32")([noisy, noise])
    return k.Model(noisy, clean, name=name)


def _ircnn(width: int, channels: int, name: str, dilations=(1, 2, 3, 4, 3, 2, 1)):
    k = keras()
    layers = k.layers
    noisy = layers.Input(shape=(None, None, channels), name="noisy")
    x = layers.Conv2D(width, 3, padding="same", dilation_rate=dilations[0], activation="relu")(noisy)
    for d in dilations[1:-1]:
        x = layers.Conv2D(width, 3, padding="same", dilation_rate=d, use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    noise = layers.Conv2D(channels, 3, padding="same", dilation_rate=dilations[-1], name="noise")(x)
    clean = layers.Subtract(name="denoised", dtype="float32")([noisy, noise])
    return k.Model(noisy, clean, name=name)


# QAT annotates the residual Subtract on its own (tfmot's scheme has no Subtract; see compress.qat).
DENOISER_RECIPES = ("prune", "prune_2_4", "cluster", "qat")
# Distillation into a cheaper denoiser, and the same student trained without its teacher.
DISTILL = ("distill", "student")


@register_model(task="denoising", input_shape=(None, None, 1),
                train_defaults={"epochs": 50, "batch_size": 128, "lr_drop_at": 0.6},
                recipes=DENOISER_RECIPES + DISTILL, student="dncnn_lite")  # fmt: skip
def dncnn(depth: int = 17, width: int = 64, channels: int = 1):
    """DnCNN-S, full size: 17 conv layers × 64 channels (about 556 k parameters; train it on a GPU)."""
    if depth < 3 or width < 1:
        from runtime.errors import UserError

        raise UserError(f"dncnn needs depth >= 3 and width >= 1, got depth={depth}, width={width}")
    return _dncnn(depth, width, channels, "dncnn")


@register_model(task="denoising", input_shape=(None, None, 1),
                train_defaults={"epochs": 12, "batch_size": 64, "lr_drop_at": 0.6}, recipes=DENOISER_RECIPES)
def dncnn_lite(depth: int = 8, width: int = 32, channels: int = 1):
    """DnCNN, lite: 8 conv layers × 32 channels (about 57 k parameters), trains in minutes on a CPU."""
    return _dncnn(depth, width, channels, "dncnn_lite")


@register_model(task="denoising", input_shape=(None, None, 1),
                train_defaults={"epochs": 30, "batch_size": 64, "lr_drop_at": 0.6},
                recipes=DENOISER_RECIPES + DISTILL, student="dncnn_lite")  # fmt: skip
def ircnn_lite(width: int = 48, channels: int = 1):
    """IRCNN's denoiser, lite: 7 dilated conv layers × 48 channels (about 105 k MACs per pixel, sees 33 × 33)."""
    return _ircnn(width, channels, "ircnn_lite")
