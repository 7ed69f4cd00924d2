"""``edgedl-run``'s answers for the tasks that answer with files of their own: a denoiser's images, a
segmenter's masks, a detector's drawn boxes, an embedder's similarity. The maths they decode with lives in
``detect``, ``segment``, ``denoise`` and ``embed``; this module writes and prints. ``FILE_ANSWERS`` is the
registry ``edgedl-run`` (and a bundle's README) reads: a task without an entry is answered with its outputs.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .denoise import denoise
from .detect import NMS_IOU, SCORE_THRESHOLD, SHOW_THRESHOLD, TOP_K, Detections, decode
from .embed import unit
from .errors import UserError
from .files import atomic_path, write_json
from .images import decode_picture, load_array, load_image, read_npy, save_image
from .segment import COLOURS, coverage
from .segment import decode as decode_mask
from .sequence import FrameStream


def answer(args, task: str, results: list[dict], out: Optional[Path], line) -> int:
    """``edgedl-run``'s answer for a task that writes files of its own (denoised images, masks, drawn boxes):
    ``summary.json`` in ``out`` when there is one, then one JSON document (``--json``) or ``line(result)``
    for each input."""


    summary = {"model": args.model, "task": task, "results": results}
    if out is not None:
        write_json(out / "summary.json", summary)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print("\n".join(line(r) for r in results))
    return 0


def draw(picture: np.ndarray, found: Detections, labels, path: Path) -> None:
    """The picture (H, W, C) with its boxes and class names drawn, atomically."""
    from PIL import Image, ImageDraw

    pixels = np.clip(picture, 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels[:, :, 0] if pixels.shape[-1] == 1 else pixels).convert("RGB")
    pen = ImageDraw.Draw(image)
    for box, cls, score in zip(found.boxes, found.classes, found.scores):
        name = labels[cls] if labels is not None and cls < len(labels) else str(cls)
        pen.rectangle([float(v) for v in box], outline=(255, 64, 64), width=max(1, image.width // 200))
        pen.text((float(box[0]) + 2, float(box[1]) + 1), f"{name} {score:.2f}", fill=(255, 255, 0))
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def detect_files(model, files, args) -> int:
    """Each picture's boxes (in its own pixels), printed (``--json``: one document) and, with ``--out``,
    drawn on a copy under the picture's name, with ``summary.json``."""
    from PIL import Image


    meta = model.metadata
    classes = len(meta.labels or ())
    if not classes:
        raise UserError(f"{args.model}: a detector's metadata names its classes (labels); this one names none")
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    results = []
    for f in files:
        x = load_image(f, meta)[None]
        with Image.open(f) as picture:
            height, width = picture.height, picture.width
        start = time.perf_counter()
        found = decode(model.predict(x)[0], x.shape[1:3], classes, int(meta.decoding_value("top_k", TOP_K)),
                       meta.decoding_value("score_threshold", SCORE_THRESHOLD), meta.decoding_value("nms_iou", NMS_IOU))
        ms = (time.perf_counter() - start) * 1e3
        shown = found.scores >= meta.decoding_value("show_threshold", SHOW_THRESHOLD)
        scale = np.float32([width / x.shape[2], height / x.shape[1]] * 2)
        found = Detections(found.boxes[shown] * scale, found.classes[shown], found.scores[shown])
        boxes = [{"label": meta.labels[c], "class_index": int(c), "score": round(float(s), 4),
                  "box": [round(float(v), 1) for v in b]} for b, c, s in zip(found.boxes, found.classes, found.scores)]
        doc = {"input": str(f), "shape": [height, width], "ms": round(ms, 3), "detections": boxes}
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            draw(decode_picture(f, 3, "black"), found, meta.labels, out / f"{f.stem}.png")
            doc["output"] = str(out / f"{f.stem}.png")
        results.append(doc)

    def line(r: dict) -> str:
        found = ", ".join(f"{d['label']} {d['score']:.2f} at {d['box']}" for d in r["detections"]) or "nothing"
        return f"{r['input']}: {found} ({r['ms']:.1f} ms)"

    return answer(args, meta.task, results, out, line)


def save_mask(mask: np.ndarray, path: Path) -> None:
    """A mask as a palette PNG (class i drawn in colour i), atomically."""
    from PIL import Image


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


def segment_files(model, files, args) -> int:
    """Each input's mask, written into ``--out`` (a PNG under the input's name) when given, with
    ``summary.json``; each input's class coverage printed (``--json``: as one document)."""
    from PIL import Image


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
        masks = [decode_mask(s, meta.layout) for s in scores]
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


def denoise_files(model, files, args) -> int:
    """Write each denoised input into ``--out`` under its own name, then ``summary.json``."""


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


def embed_files(model, files, args) -> int:
    """One picture: its embedding. Two: their cosine similarity, and same or different at the model's stored
    threshold. More: every embedding."""

    if not files:
        raise UserError("give one picture (its embedding) or two (their similarity)")
    meta = model.metadata
    vectors = [np.asarray(model.predict(load_image(f, meta)[None])[0], np.float64).reshape(-1) for f in files]
    if len(files) == 2:
        first, second = unit(np.stack(vectors))
        similarity = float(first @ second)
        threshold = meta.decoding_value("threshold")
        doc = {"inputs": [str(f) for f in files], "similarity": round(similarity, 6), "threshold": threshold,
               "same": None if threshold is None else bool(similarity > threshold)}  # fmt: skip
        if args.json:
            print(json.dumps(doc, indent=2))
        else:
            verdict = "no threshold stored" if threshold is None else ("same" if doc["same"] else "different")
            print(f"similarity {similarity:.4f}: {verdict}" + (f" (threshold {threshold:.4f})" if threshold else ""))
        return 0
    docs = [{"input": str(f), "embedding": [round(float(v), 6) for v in vec]} for f, vec in zip(files, vectors)]
    if args.json:
        print(json.dumps({"model": args.model, "task": meta.task, "results": docs}, indent=2))
    else:
        for d in docs:
            shown = " ".join(f"{v:+.3f}" for v in d["embedding"][:8])
            print(f"{d['input']}: {len(d['embedding'])} values [{shown}{' …' if len(d['embedding']) > 8 else ''}]")
    return 0



@dataclass(frozen=True)
class FileAnswer:
    run: Callable  # (model, files, args) -> exit code
    out_folder: str  # what ``edgedl-run --out`` writes, as a bundle's README names the folder


FILE_ANSWERS = {
    "denoising": FileAnswer(denoise_files, "denoised/"),
    "segmentation": FileAnswer(segment_files, "masks/"),
    "detection": FileAnswer(detect_files, "boxes/"),
    "embedding": FileAnswer(embed_files, ""),
}


def file_answer(task: str) -> Optional[FileAnswer]:
    """How ``edgedl-run`` answers for a model of ``task`` with files of its own; None: with its outputs."""
    return FILE_ANSWERS.get(task)
