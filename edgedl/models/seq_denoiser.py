"""A recurrent denoiser for short image sequences, and its per-frame twin without recurrence.

The recurrence is a convolutional LSTM (Shi et al., 2015) unrolled over the
sequence's fixed number of frames, so that it converts to TFLite with builtin
ops only (Keras's own ConvLSTM2D cannot unroll and becomes a TensorList loop
that needs the Flex delegate). The per-frame twin has the same layers with
the recurrent path cut: what the recurrence adds is measured, not assumed.
"""
from __future__ import annotations

import functools

from .._tf import keras, tf
from ._registry import register_model

FRAMES = 8
FRAME_SIZE = 32


@functools.lru_cache(maxsize=None)
def unrolled_conv_lstm():
    """The layer class, defined (and registered for loading) on first use, once TensorFlow is imported."""
    k, t = keras(), tf()

    @k.utils.register_keras_serializable(package="edgedl")
    class UnrolledConvLSTM2D(k.layers.Layer):
        """ConvLSTM over (batch, frames, H, W, C), unrolled; ``recurrent=False`` drops h(t-1) from the gates."""

        def __init__(self, filters: int, kernel_size: int = 3, recurrent: bool = True, **kwargs):
            super().__init__(**kwargs)
            self.filters, self.kernel_size, self.recurrent = filters, kernel_size, recurrent

        def build(self, input_shape):
            frames, channels = input_shape[1], input_shape[-1]
            if frames is None:
                raise ValueError("UnrolledConvLSTM2D needs a fixed number of frames")
            self.frames = int(frames)
            gates = 4 * self.filters
            ks = (self.kernel_size, self.kernel_size, int(channels), gates)
            self.kernel = self.add_weight(name="kernel", shape=ks, initializer="glorot_uniform")
            if self.recurrent:
                rk = (self.kernel_size, self.kernel_size, self.filters, gates)
                self.recurrent_kernel = self.add_weight(name="recurrent_kernel", shape=rk, initializer="orthogonal")
            self.bias = self.add_weight(name="bias", shape=(gates,), initializer="zeros")
            super().build(input_shape)

        def call(self, x):
            outputs, h, c = [], None, None
            for step in range(self.frames):
                z = t.nn.conv2d(x[:, step], self.kernel, 1, "SAME") + self.bias
                if self.recurrent and h is not None:
                    z += t.nn.conv2d(h, self.recurrent_kernel, 1, "SAME")
                i, f, g, o = t.split(z, 4, axis=-1)
                i, f, o, g = t.sigmoid(i), t.sigmoid(f), t.sigmoid(o), t.tanh(g)
                c = i * g if c is None or not self.recurrent else f * c + i * g
                h = o * t.tanh(c)
                outputs.append(h)
            return t.stack(outputs, axis=1)

        def get_config(self):
            return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                    "recurrent": self.recurrent}  # fmt: skip

    return UnrolledConvLSTM2D


def _seq_model(recurrent: bool, filters: int, frames: int, size: int, name: str):
    k = keras()
    layers = k.layers
    noisy = layers.Input(shape=(frames, size, size, 1), name="noisy_frames")
    x = layers.TimeDistributed(layers.Conv2D(filters, 3, padding="same", activation="relu"))(noisy)
    x = unrolled_conv_lstm()(filters, 3, recurrent=recurrent)(x)
    x = layers.TimeDistributed(layers.Conv2D(filters, 3, padding="same", activation="relu"))(x)
    noise = layers.TimeDistributed(layers.Conv2D(1, 3, padding="same"))(x)
    clean = layers.Subtract(name="denoised", dtype="float32")([noisy, noise])
    return k.Model(noisy, clean, name=name)


SEQ_TRAINING = {"epochs": 10, "batch_size": 32, "lr_drop_at": 0.7}


@register_model(task="denoising", input_shape=(FRAMES, FRAME_SIZE, FRAME_SIZE, 1), train_defaults=SEQ_TRAINING,
                recipes=(), baseline="seq_denoiser_per_frame")  # fmt: skip
def seq_denoiser(filters: int = 16, frames: int = FRAMES, size: int = FRAME_SIZE):
    """Recurrent (unrolled ConvLSTM) denoiser of 8-frame 32×32 sequences of a moving digit."""
    return _seq_model(True, filters, frames, size, "seq_denoiser")


@register_model(task="denoising", input_shape=(FRAMES, FRAME_SIZE, FRAME_SIZE, 1), train_defaults=SEQ_TRAINING,
                recipes=())  # fmt: skip
def seq_denoiser_per_frame(filters: int = 16, frames: int = FRAMES, size: int = FRAME_SIZE):
    """The same network as seq_denoiser with the recurrence cut: each frame denoised on its own."""
    return _seq_model(False, filters, frames, size, "seq_denoiser_per_frame")
