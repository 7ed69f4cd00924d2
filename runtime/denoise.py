"""Run a denoiser on an image of any size: whole, or in overlapping tiles when it is large.

A fully convolutional model sees only a small neighbourhood of each pixel
(DnCNN-17: 35×35), so a tile that overlaps its neighbours by more than half
that gives the same pixels as the whole image, with bounded memory.
"""
from __future__ import annotations

import numpy as np


DEFAULT_TILE = 512
DEFAULT_OVERLAP = 32


def denoise(model, image: np.ndarray, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP) -> np.ndarray:
    """Denoise one model-ready image (H, W, C); tiles of ``tile`` pixels overlapping by ``overlap``."""
    if tile <= 2 * overlap:
        raise ValueError(f"tile ({tile}) must be larger than twice the overlap ({overlap})")
    h, w = image.shape[:2]
    if h <= tile and w <= tile:
        return model.predict(image[None])[0]
    out = np.empty_like(image, dtype=np.float32)
    step = tile - 2 * overlap
    for top in range(0, h, step):
        for left in range(0, w, step):
            # The tile's core [top, top+step) is written; the margins only give it context.
            y0, x0 = max(0, top - overlap), max(0, left - overlap)
            y1, x1 = min(h, top + step + overlap), min(w, left + step + overlap)
            result = model.predict(image[None, y0:y1, x0:x1])[0]
            cy1, cx1 = min(h, top + step), min(w, left + step)
            out[top:cy1, left:cx1] = result[top - y0 : cy1 - y0, left - x0 : cx1 - x0]
    return out
