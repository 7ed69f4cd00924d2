"""Frames one at a time through a sequence model, carrying what came before.

A sequence artifact (input N×T×H×W×C, fixed T) is unrolled: it keeps no
state between calls. ``FrameStream`` carries the state on the host side as
the last T frames: each new frame is denoised with the T−1 frames before it
as its history, so its output is what the whole-sequence model gives for the
last frame of that window. Before T frames have arrived, the first frame
stands in for the missing past (a still scene).
"""
from __future__ import annotations

from collections import deque

import numpy as np

from .errors import UserError


class FrameStream:
    """Feed frames with ``push``; each returns the model's output for that frame."""

    def __init__(self, model):
        shape = model.metadata.input.shape
        if len(shape) != 5 or shape[1] is None:
            raise UserError(f"{model.path.name}: not a sequence model (input {shape}); FrameStream needs N×T×H×W×C")
        self.model = model
        self.frames = int(shape[1])
        self._window: deque = deque(maxlen=self.frames)

    def reset(self) -> None:
        """Forget the history: the next frame starts a new sequence."""
        self._window.clear()

    def push(self, frame: np.ndarray) -> np.ndarray:
        """The output for ``frame`` (H×W×C, model-ready floats), given the frames pushed before it."""
        frame = np.asarray(frame, dtype=np.float32)
        if not self._window:
            self._window.extend([frame] * (self.frames - 1))
        self._window.append(frame)
        return self.model.predict(np.stack(self._window)[None])[0, -1]
