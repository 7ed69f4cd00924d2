"""Run a segmenter: a class for every pixel, decoded on the device (the top score of each pixel), written as a
palette PNG the size of the input picture, and summarised as the share of the picture each class covers."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .errors import UserError

# Class 0 (background) black, then distinct colours (Trubetskoy's list of 20), repeated past 20 classes.
COLOURS = ((0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
           (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128),
           (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0),
           (255, 215, 180), (0, 0, 128))  # fmt: skip


def decode(scores: np.ndarray, layout: str = "NHWC") -> np.ndarray:
    """One input's class scores (H, W, classes; classes first for NCHW) as a mask of class indices."""
    axis = 0 if layout == "NCHW" else -1
    return np.argmax(scores, axis=axis).astype(np.uint16 if scores.shape[axis] > 256 else np.uint8)


def save_mask(mask: np.ndarray, path: Path) -> None:
    """A mask as a palette PNG (class i drawn in colour i), atomically."""
    from PIL import Image

    from .files import atomic_path

    if mask.max(initial=0) > 255:
        raise UserError(f"{path}: a palette PNG holds 256 classes; this mask has {int(mask.max()) + 1}")
    image = Image.fromarray(mask.astype(np.uint8), mode="P")
    palette = [v for i in range(256) for v in COLOURS[0 if i == 0 else 1 + (i - 1) % (len(COLOURS) - 1)]]
    image.putpalette(palette)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def _resized(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Back to the picture's own size: nearest neighbour, so that classes are never blended."""
    from PIL import Image

    return np.asarray(Image.fromarray(mask).resize((width, height), Image.Resampling.NEAREST))


def coverage(mask: np.ndarray, labels) -> dict:
    """The share of pixels of each class present, largest first, by class name."""
    counts = np.bincount(mask.reshape(-1))
    names = labels if labels is not None and len(labels) >= len(counts) else [str(i) for i in range(len(counts))]
    return {names[c]: round(float(counts[c]) / mask.size, 4) for c in np.argsort(-counts, kind="stable") if counts[c]}


def segment_files(model, files, args) -> int:
    """Each input's mask, written into ``--out`` (a PNG under the input's name) when given, with
    ``summary.json``; each input's class coverage printed (``--json``: as one document)."""
    from PIL import Image

    from .images import load_array, load_image
    from .outputs import answer

    meta = model.metadata
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    results = []
    for f in files:
        if f.suffix.lower() == ".npy":  # model-ready inputs: masks at the model's size
            batch, sizes = load_array(f, meta), None
        else:
            batch = load_image(f, meta)[None]
            with Image.open(f) as picture:
                sizes = (picture.height, picture.width)
        start = time.perf_counter()
        scores = model.predict(batch)
        masks = [decode(s, meta.layout) for s in scores]
        ms = (time.perf_counter() - start) * 1e3
        for i, mask in enumerate(masks):
            if sizes is not None and mask.shape != sizes:
                mask = _resized(mask, *sizes)
            doc = {"input": str(f) if len(masks) == 1 else f"{f}[{i}]", "shape": list(mask.shape),
                   "classes": coverage(mask, meta.labels), "ms": round(ms / len(masks), 3)}  # fmt: skip
            if out is not None:
                name = f"{f.stem}.png" if len(masks) == 1 else f"{f.stem}_{i:03d}.png"
                out.mkdir(parents=True, exist_ok=True)
                save_mask(mask, out / name)
                doc["output"] = str(out / name)
            results.append(doc)

    def line(r: dict) -> str:
        shown = ", ".join(f"{name} {share:.1%}" for name, share in list(r["classes"].items())[:4])
        where = f"  ->  {r['output']}" if "output" in r else ""
        return f"{r['input']}{where}  ({shown}; {r['ms']:.1f} ms)"

    return answer(args, meta.task, results, out, line)
