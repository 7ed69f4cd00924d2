"""A recurrent denoiser for short image sequences, and its per-frame twin without recurrence.

Frame t is denoised from itself and two things carried from frame t-1, both
first *aligned* to frame t: the previous denoised frame, and the running mean
of all the noisy frames so far. Alignment is block matching with a soft
choice, as a motion-compensated recursive video filter does: the carried images are shifted by each of the (2r+1)² displacements
within ``reach`` r pixels (one fixed one-hot convolution), each shift is scored
by the local mean squared difference to the noisy frame t (an average pool of
``window``²), and a softmax over the scores (learned sharpness) weighs the
shifts. The CNN sees [frame, aligned running mean, aligned previous output,
matching cost] and predicts the frame's noise (residual learning, as DnCNN):
where the match is good the running mean of t+1 frames has √(t+1) times less
noise than the frame; where it is bad (occlusion, a bounce, a new object) the
cost tells the CNN to fall back on the frame alone.

Everything is unrolled over the sequence's fixed number of frames, so it
converts to TFLite and ONNX with builtin operators only (convolution, average
pool, softmax, sum). The per-frame twin has the same weights with the
recurrence cut: each frame is its own history (zero matching cost), so what
the recurrence adds is measured, not assumed.
"""
from __future__ import annotations

import functools

import numpy as np

from exporters.tfkeras import keras, tf

from ._registry import register_model

FRAMES = 8
FRAME_SIZE = 32


@functools.lru_cache(maxsize=None)
def recurrent_frame_denoiser():
    """The layer class, defined (and registered for loading) on first use, once TensorFlow is imported."""
    k, t = keras(), tf()

    @k.utils.register_keras_serializable(package="edgedl")
    class AlignedRecursiveDenoiser(k.layers.Layer):
        """Denoises (batch, frames, H, W, C=1) frame by frame, unrolled; see the module's docstring.
        ``recurrent=False`` is the per-frame twin (each frame its own history)."""

        def __init__(self, filters: int = 24, depth: int = 5, reach: int = 1, window: int = 5,
                     recurrent: bool = True, **kwargs):  # fmt: skip
            super().__init__(**kwargs)
            self.filters, self.depth, self.reach, self.window = filters, depth, reach, window
            self.recurrent = recurrent
            conv = functools.partial(k.layers.Conv2D, kernel_size=3, padding="same")
            self.convs = [conv(filters, activation="relu", name=f"conv_{i}") for i in range(depth - 1)]
            self.noise = conv(1, name="noise")
            side = 2 * reach + 1  # shift j of a pixel reads the pixel displaced by (j // side - r, j % side - r)
            self.shifts = np.eye(side * side, dtype=np.float32).reshape(side, side, 1, side * side)

        def build(self, input_shape):
            frames, height, width, channels = input_shape[1:]
            if frames is None:
                raise ValueError("AlignedRecursiveDenoiser needs a fixed number of frames")
            if channels != 1:
                raise ValueError(f"AlignedRecursiveDenoiser denoises grey frames (1 channel), got {channels}")
            self.frames = int(frames)
            width_in = 4  # frame, aligned running mean, aligned previous output, matching cost
            for conv in self.convs:
                conv.build((None, height, width, width_in))
                width_in = self.filters
            self.noise.build((None, height, width, width_in))
            # Sharpness of the soft choice between shifts, on a log scale (starts at 50 per unit of MSE).
            self.log_sharpness = self.add_weight(name="log_sharpness", shape=(),
                                                 initializer=k.initializers.Constant(np.log(50.0)))  # fmt: skip
            super().build(input_shape)

        def _align(self, frame, carried):
            """Each image of ``carried`` moved onto ``frame``: softly chosen shifts, scored on the first."""
            moved = [t.nn.conv2d(image, self.shifts, 1, "SAME") for image in carried]
            cost = t.nn.avg_pool2d(t.square(frame - moved[0]), self.window, 1, "SAME")
            weights = t.nn.softmax(-t.exp(self.log_sharpness) * cost)
            aligned = [t.reduce_sum(weights * image, axis=-1, keepdims=True) for image in moved]
            return aligned, t.reduce_sum(weights * cost, axis=-1, keepdims=True)

        def call(self, x):
            outputs, mean, previous = [], None, None
            for step in range(self.frames):
                frame = x[:, step]
                if step == 0 or not self.recurrent:
                    mean, aligned_previous, cost = frame, frame, t.zeros_like(frame)
                else:
                    (aligned_previous, aligned_mean), cost = self._align(frame, (previous, mean))
                    mean = aligned_mean * (step / (step + 1)) + frame * (1 / (step + 1))
                h = t.concat([frame, mean, aligned_previous, cost], axis=-1)
                for conv in self.convs:
                    h = conv(h)
                previous = frame - self.noise(h)
                outputs.append(previous)
            return t.stack(outputs, axis=1)

        def get_config(self):
            return {**super().get_config(), "filters": self.filters, "depth": self.depth, "reach": self.reach,
                    "window": self.window, "recurrent": self.recurrent}  # fmt: skip

    return AlignedRecursiveDenoiser


def _seq_model(recurrent: bool, filters: int, depth: int, frames: int, size: int, name: str):
    k = keras()
    noisy = k.layers.Input(shape=(frames, size, size, 1), name="noisy_frames")
    layer = recurrent_frame_denoiser()(filters, depth, recurrent=recurrent, name="denoised", dtype="float32")
    return k.Model(noisy, layer(noisy), name=name)


SEQ_TRAINING = {"epochs": 10, "batch_size": 32, "lr_drop_at": 0.7}


@register_model(task="denoising", input_shape=(FRAMES, FRAME_SIZE, FRAME_SIZE, 1), train_defaults=SEQ_TRAINING,
                recipes=(), baseline="seq_denoiser_per_frame")  # fmt: skip
def seq_denoiser(filters: int = 24, depth: int = 5, frames: int = FRAMES, size: int = FRAME_SIZE):
    """Recurrent (motion-aligned running mean and previous output) denoiser of 8-frame 32×32 digit sequences."""
    return _seq_model(True, filters, depth, frames, size, "seq_denoiser")


@register_model(task="denoising", input_shape=(FRAMES, FRAME_SIZE, FRAME_SIZE, 1), train_defaults=SEQ_TRAINING,
                recipes=())  # fmt: skip
def seq_denoiser_per_frame(filters: int = 24, depth: int = 5, frames: int = FRAMES, size: int = FRAME_SIZE):
    """The same network as seq_denoiser with the recurrence cut: each frame denoised on its own."""
    return _seq_model(False, filters, depth, frames, size, "seq_denoiser_per_frame")
