"""What a CenterNet-style detector learns from (Zhou et al., 2019): per output cell, a Gaussian heat-map peak
at each box's centre, and the box's size and centre offset there; and its loss (the paper's focal loss on
the heat-maps, L1 on size and offset at the centres). The device side decodes the same layout
(``runtime.detect``)."""
from __future__ import annotations

import numpy as np

SIZE_WEIGHT = 5.0  # the size is a fraction of the input (0.2–0.4 for a digit): an L1 on it counts for more
OFFSET_WEIGHT = 1.0


def targets(boxes: tuple, classes: tuple, image_size: int, stride: int, num_classes: int) -> np.ndarray:
    """(N, S, S, classes + 5) training targets for N images' boxes (pixels) and classes, S = size / stride:
    heat-maps, width and height (fractions of the image), centre offset in its cell, and a mask of centres."""
    cells = image_size // stride
    out = np.zeros((len(boxes), cells, cells, num_classes + 5), np.float32)
    grid = np.arange(cells, dtype=np.float32)
    for n, (image_boxes, image_classes) in enumerate(zip(boxes, classes)):
        for (x0, y0, x1, y1), c in zip(image_boxes, image_classes):
            cx, cy = (x0 + x1) / 2 / stride, (y0 + y1) / 2 / stride
            col, row = min(int(cx), cells - 1), min(int(cy), cells - 1)
            # The peak's spread follows the box (CenterNet's radius, simplified): a third of the smaller side.
            sigma = max(0.5, min(x1 - x0, y1 - y0) / stride / 6)
            bump = np.exp(-((grid[None, :] - col) ** 2 + (grid[:, None] - row) ** 2) / (2 * sigma**2))
            out[n, :, :, c] = np.maximum(out[n, :, :, c], bump)
            out[n, row, col, c] = 1.0
            out[n, row, col, num_classes:] = [(x1 - x0) / image_size, (y1 - y0) / image_size, cx - col, cy - row, 1.0]
    return out


def centernet_loss(num_classes: int):
    """The Keras loss for ``targets``' layout against the model's (heat-maps, size, offset) output."""
    from exporters.tfkeras import tf

    t = tf()

    def loss(y_true, y_pred):
        heat_true, heat = y_true[..., :num_classes], t.clip_by_value(y_pred[..., :num_classes], 1e-4, 1 - 1e-4)
        centre = t.cast(t.equal(heat_true, 1.0), heat.dtype)
        focal = centre * t.math.log(heat) * (1 - heat) ** 2 + \
            (1 - centre) * t.math.log(1 - heat) * heat**2 * (1 - heat_true) ** 4  # fmt: skip
        mask = y_true[..., -1:]
        objects = t.maximum(t.reduce_sum(mask, axis=[1, 2, 3]), 1.0)
        l1 = t.abs(y_true[..., num_classes : num_classes + 4] - y_pred[..., num_classes : num_classes + 4]) * mask
        size, offset = t.reduce_sum(l1[..., :2], axis=[1, 2, 3]), t.reduce_sum(l1[..., 2:], axis=[1, 2, 3])
        return (-t.reduce_sum(focal, axis=[1, 2, 3]) + SIZE_WEIGHT * size + OFFSET_WEIGHT * offset) / objects

    loss.__name__ = "centernet_loss"
    return loss
