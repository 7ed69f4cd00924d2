"""A segmenter's output decoded on the device: a class for every pixel (the top score of each pixel), and the
share of the picture each class covers. ``answers`` writes the masks."""
from __future__ import annotations

import numpy as np


# Class 0 (background) black, then distinct colours (Trubetskoy's list of 20), repeated past 20 classes.
COLOURS = ((0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
           (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128),
           (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0),
           (255, 215, 180), (0, 0, 128))  # fmt: skip


def decode(scores: np.ndarray, layout: str = "NHWC") -> np.ndarray:
    """One input's class scores (H, W, classes; classes first for NCHW) as a mask of class indices."""
    axis = 0 if layout == "NCHW" else -1
    return np.argmax(scores, axis=axis).astype(np.uint16 if scores.shape[axis] > 256 else np.uint8)


def coverage(mask: np.ndarray, labels) -> dict:
    """The share of pixels of each class present, largest first, by class name."""
    counts = np.bincount(mask.reshape(-1))
    names = labels if labels is not None and len(labels) >= len(counts) else [str(i) for i in range(len(counts))]
    return {names[c]: round(float(counts[c]) / mask.size, 4) for c in np.argsort(-counts, kind="stable") if counts[c]}
