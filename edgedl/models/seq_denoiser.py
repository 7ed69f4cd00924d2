"""A recurrent denoiser for short image sequences, and its per-frame twin without recurrence.

Each frame is denoised from itself, the previous denoised frame (fed back, as
a recursive filter does) and a convolutional LSTM's memory (Shi et al., 2015),
unrolled over the sequence's fixed number of frames so that it converts to
TFLite with builtin ops only (Keras's own ConvLSTM2D cannot unroll and becomes
a TensorList loop that needs the Flex delegate). The per-frame twin has the
same weights with both recurrent paths cut: what the recurrence adds is
measured, not assumed.
"""
from __future__ import annotations

import functools

from .._tf import keras, tf
from ._registry import register_model

FRAMES = 8
FRAME_SIZE = 32


@functools.lru_cache(maxsize=None)
def recurrent_frame_denoiser():
    """The layer class, defined (and registered for loading) on first use, once TensorFlow is imported."""
    k, t = keras(), tf()

    @k.utils.register_keras_serializable(package="edgedl")
    class RecurrentFrameDenoiser(k.layers.Layer):
        """Denoises (batch, frames, H, W, C) frame by frame, unrolled. Frame t is seen with two recurrent
        inputs: the denoised frame t-1 (fed back as an input channel) and a convolutional LSTM's memory.
        ``recurrent=False`` cuts both (zeros fed back, h(t-1) dropped from the gates): the per-frame twin.

        Per frame: encode [x(t), y(t-1)] -> ConvLSTM step -> head on [features, h(t)] -> noise;
        y(t) = x(t) - noise (residual learning, as DnCNN).
        """

        def __init__(self, filters: int, kernel_size: int = 3, recurrent: bool = True, **kwargs):
            super().__init__(**kwargs)
            self.filters, self.kernel_size, self.recurrent = filters, kernel_size, recurrent
            conv = functools.partial(k.layers.Conv2D, kernel_size=kernel_size, padding="same")
            self.encode = conv(filters, activation="relu", name="encode")
            self.head = conv(filters, activation="relu", name="head")
            self.noise = None  # built with the input's channel count

        def build(self, input_shape):
            frames, height, width, channels = input_shape[1:]
            if frames is None:
                raise ValueError("RecurrentFrameDenoiser needs a fixed number of frames")
            self.frames, f, ks = int(frames), self.filters, self.kernel_size
            self.noise = k.layers.Conv2D(int(channels), ks, padding="same", name="noise")
            self.encode.build((None, height, width, 2 * int(channels)))
            self.head.build((None, height, width, 2 * f))
            self.noise.build((None, height, width, f))
            self.kernel = self.add_weight(name="kernel", shape=(ks, ks, f, 4 * f), initializer="glorot_uniform")
            if self.recurrent:
                self.recurrent_kernel = self.add_weight(name="recurrent_kernel", shape=(ks, ks, f, 4 * f),
                                                        initializer="orthogonal")  # fmt: skip
            # Forget gate's bias at 1 (Jozefowicz et al., 2015; Keras's unit_forget_bias): memory kept at first.
            self.bias = self.add_weight(name="bias", shape=(4 * f,), initializer=lambda shape, dtype=None: t.concat(
                [t.zeros([f], dtype), t.ones([f], dtype), t.zeros([2 * f], dtype)], 0))  # fmt: skip
            super().build(input_shape)

        def call(self, x):
            outputs, h, c = [], None, None
            previous = t.zeros_like(x[:, 0])
            for step in range(self.frames):
                frame = x[:, step]
                features = self.encode(t.concat([frame, previous], axis=-1))
                z = t.nn.conv2d(features, self.kernel, 1, "SAME") + self.bias
                if self.recurrent and h is not None:
                    z += t.nn.conv2d(h, self.recurrent_kernel, 1, "SAME")
                i, f, g, o = t.split(z, 4, axis=-1)
                i, f, o, g = t.sigmoid(i), t.sigmoid(f), t.sigmoid(o), t.tanh(g)
                c = i * g if c is None or not self.recurrent else f * c + i * g
                h = o * t.tanh(c)
                denoised = frame - self.noise(self.head(t.concat([features, h], axis=-1)))
                outputs.append(denoised)
                if self.recurrent:
                    previous = denoised
            return t.stack(outputs, axis=1)

        def get_config(self):
            return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                    "recurrent": self.recurrent}  # fmt: skip

    return RecurrentFrameDenoiser


def _seq_model(recurrent: bool, filters: int, frames: int, size: int, name: str):
    k = keras()
    noisy = k.layers.Input(shape=(frames, size, size, 1), name="noisy_frames")
    clean = recurrent_frame_denoiser()(filters, 3, recurrent=recurrent, name="denoised", dtype="float32")(noisy)
    return k.Model(noisy, clean, name=name)


SEQ_TRAINING = {"epochs": 10, "batch_size": 32, "lr_drop_at": 0.7}


@register_model(task="denoising", input_shape=(FRAMES, FRAME_SIZE, FRAME_SIZE, 1), train_defaults=SEQ_TRAINING,
                recipes=(), baseline="seq_denoiser_per_frame")  # fmt: skip
def seq_denoiser(filters: int = 16, frames: int = FRAMES, size: int = FRAME_SIZE):
    """Recurrent (frame-recursive, unrolled ConvLSTM) denoiser of 8-frame 32×32 sequences of a moving digit."""
    return _seq_model(True, filters, frames, size, "seq_denoiser")


@register_model(task="denoising", input_shape=(FRAMES, FRAME_SIZE, FRAME_SIZE, 1), train_defaults=SEQ_TRAINING,
                recipes=())  # fmt: skip
def seq_denoiser_per_frame(filters: int = 16, frames: int = FRAMES, size: int = FRAME_SIZE):
    """The same network as seq_denoiser with the recurrence cut: each frame denoised on its own."""
    return _seq_model(False, filters, frames, size, "seq_denoiser_per_frame")
