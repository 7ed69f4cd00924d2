"""Scenes made from the embedded MNIST digits: canvases holding a few digits at random places and sizes, with
what detection and segmentation learn from them (boxes and classes; a class per pixel).

Generated from a seed every time, never written to the repository. A digit's pixels are those where its
(resized) stroke is at least half on; where two digits overlap, the canvas keeps the brighter stroke and
the mask the digit drawn later. Positions are drawn so that boxes do not overlap more than
``MAX_OVERLAP`` of the smaller one's area, as on a page of handwriting.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BACKGROUND = "background"
MAX_OVERLAP = 0.25
STROKE = 0.5  # a pixel belongs to a digit where the digit's intensity is at least this


@dataclass(frozen=True)
class Canvases:
    images: np.ndarray  # (N, size, size, 1) float32 in [0, 1]
    masks: np.ndarray  # (N, size, size) uint8: 0 background, 1 + digit
    boxes: tuple  # per canvas, (k, 4) float32 [x0, y0, x1, y1) in pixels
    classes: tuple  # per canvas, (k,) int64 digit classes (0–9)


def _resized(digit: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image

    image = Image.fromarray(np.uint8(np.clip(digit[:, :, 0], 0, 1) * 255))
    return np.asarray(image.resize((side, side), Image.Resampling.BILINEAR), np.float32) / 255.0


def _overlap(box: np.ndarray, others: list) -> float:
    """The largest intersection of ``box`` with one of ``others``, as a fraction of the smaller box's area."""
    worst = 0.0
    for o in others:
        w = min(box[2], o[2]) - max(box[0], o[0])
        h = min(box[3], o[3]) - max(box[1], o[1])
        if w > 0 and h > 0:
            smaller = min((box[2] - box[0]) * (box[3] - box[1]), (o[2] - o[0]) * (o[3] - o[1]))
            worst = max(worst, w * h / smaller)
    return worst


def digit_canvases(digits: np.ndarray, labels: np.ndarray, count: int, size: int, rng: np.random.Generator,
                   per_canvas: tuple = (1, 3), sides: tuple = (20, 36)) -> Canvases:  # fmt: skip
    """``count`` canvases of ``size``×``size``, each with ``per_canvas`` (min, max) digits drawn from
    ``digits`` (N, 28, 28, 1) at sides from ``sides`` (min, max) pixels. The box of a digit is its stroke's
    extent (where it is at least ``STROKE``), not its 28×28 frame."""
    images = np.zeros((count, size, size), np.float32)
    masks = np.zeros((count, size, size), np.uint8)
    all_boxes, all_classes = [], []
    for n in range(count):
        boxes, classes = [], []
        for _ in range(int(rng.integers(per_canvas[0], per_canvas[1] + 1))):
            i = int(rng.integers(len(digits)))
            side = int(rng.integers(sides[0], min(sides[1], size) + 1))
            stroke = _resized(digits[i], side)
            on = stroke >= STROKE
            if not on.any():
                continue
            rows, cols = np.flatnonzero(on.any(1)), np.flatnonzero(on.any(0))
            for _attempt in range(20):
                top, left = (int(v) for v in rng.integers(0, size - side + 1, 2))
                box = np.float32([left + cols[0], top + rows[0], left + cols[-1] + 1, top + rows[-1] + 1])
                if _overlap(box, boxes) <= MAX_OVERLAP:
                    break
            else:
                continue  # no room left on this canvas
            window = (slice(top, top + side), slice(left, left + side))
            images[n][window] = np.maximum(stroke, images[n][window])
            masks[n][window] = np.where(on, 1 + int(labels[i]), masks[n][window])
            boxes.append(box)
            classes.append(int(labels[i]))
        all_boxes.append(np.array(boxes, np.float32).reshape(-1, 4))
        all_classes.append(np.array(classes, np.int64))
    return Canvases(images[..., None], masks, tuple(all_boxes), tuple(all_classes))


def mask_labels(digit_labels: tuple) -> tuple:
    """The classes of a mask: background, then the digits'."""
    return (BACKGROUND,) + tuple(digit_labels)
