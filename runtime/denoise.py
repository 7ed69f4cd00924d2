"""Run a denoiser on an image of any size: whole, or in overlapping tiles when it is large.

A fully convolutional model sees only a small neighbourhood of each pixel
(DnCNN-17: 35×35), so a tile that overlaps its neighbours by more than half
that gives the same pixels as the whole image, with bounded memory.
"""
from __future__ import annotations

import json

import numpy as np

from .errors import UserError

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


def denoise_files(model, files, args) -> int:
    """Write each denoised input into ``--out`` under its own name, then ``summary.json``."""
    import time
    from pathlib import Path

    from .files import atomic_path, write_json
    from .images import load_array, load_image, save_image

    if not args.out:
        raise UserError(f"{args.model} is a denoiser: give --out DIR for the denoised images")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    results = []
    if len(model.metadata.input.shape) == 5:
        return _denoise_sequences(model, files, out, args)
    for f in files:
        is_array = f.suffix.lower() == ".npy"
        images = load_array(f, model.metadata) if is_array else load_image(f, model.metadata, keep_size=True)[None]
        start = time.perf_counter()
        clean = np.stack([denoise(model, img, tile=args.tile) for img in images])
        ms = (time.perf_counter() - start) * 1e3
        target = out / f.name
        if is_array:
            with atomic_path(target) as tmp:
                np.save(tmp, clean if len(clean) > 1 else clean[0])
        else:
            save_image(clean[0], model.metadata, target)
        results.append({"input": str(f), "output": str(target), "shape": list(clean.shape[1:]), "ms": round(ms, 3)})
    write_json(out / "summary.json", {"model": args.model, "task": model.metadata.task, "results": results})
    if args.json:
        print(json.dumps({"model": args.model, "task": model.metadata.task, "results": results}, indent=2))
    else:
        width = max(len(r["input"]) for r in results)
        print("\n".join(f"{r['input']:<{width}}  ->  {r['output']}  ({r['ms']:.1f} ms)" for r in results))
    return 0


def _denoise_sequences(model, files, out, args) -> int:
    """Sequence models: a ``.npy`` of frames (F×H×W×C, any F) streams through frame by frame; a stack of
    whole sequences (N×T×H×W×C) runs as it is."""
    import time

    from .files import atomic_path, write_json
    from .images import read_npy
    from .sequence import FrameStream

    results = []
    for f in files:
        if f.suffix.lower() != ".npy":
            raise UserError(f"{f}: a sequence model takes .npy arrays of frames (F×H×W×C), not images")
        arr = read_npy(f).astype(np.float32)
        frame_shape = tuple(model.metadata.input.shape[2:])
        start = time.perf_counter()
        if arr.ndim == 4 and arr.shape[1:] == frame_shape:
            stream = FrameStream(model)
            clean = np.stack([stream.push(frame) for frame in arr])
        elif arr.ndim == 5 and arr.shape[1:] == tuple(model.metadata.input.shape[1:]):
            clean = model.predict(arr)
        else:
            raise UserError(f"{f}: array of shape {arr.shape} is neither frames of {frame_shape} nor sequences "
                            f"of {tuple(model.metadata.input.shape[1:])}")  # fmt: skip
        ms = (time.perf_counter() - start) * 1e3
        with atomic_path(out / f.name) as tmp:
            np.save(tmp, clean)
        results.append({"input": str(f), "output": str(out / f.name), "shape": list(clean.shape), "ms": round(ms, 3)})
    write_json(out / "summary.json", {"model": args.model, "task": model.metadata.task, "results": results})
    print("\n".join(f"{r['input']}  ->  {r['output']}  ({r['ms']:.1f} ms)" for r in results))
    return 0
