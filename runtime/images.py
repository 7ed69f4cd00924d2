"""Turn image files and ``.npy`` arrays into what an artifact expects.

PNG and JPEG files are converted to grey (or RGB for a 3-channel model),
resized to the model's input size and normalised with the artifact's own
``normalization``. A ``.npy`` array must already have the model's image size:
uint8 arrays are normalised like pixels, float arrays are taken as model-ready.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import UserError
from .metadata import ModelMetadata

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
INPUT_SUFFIXES = IMAGE_SUFFIXES + (".npy",)


def expand_inputs(inputs: list[str | os.PathLike]) -> list[Path]:
    """Files given directly, plus the image and ``.npy`` files inside any folder given (sorted)."""
    files: list[Path] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in INPUT_SUFFIXES and f.is_file())
            if not found:
                raise UserError(f"{p}: folder holds no {', '.join(INPUT_SUFFIXES)} files")
            files.extend(found)
        elif p.exists():
            if p.suffix.lower() not in INPUT_SUFFIXES:
                raise UserError(f"{p}: unsupported input type {p.suffix!r}; give PNG, JPEG or .npy files")
            files.append(p)
        else:
            raise UserError(f"{p}: no such file or folder")
    return files


def _normalize(pixels: np.ndarray, meta: ModelMetadata) -> np.ndarray:
    norm = meta.normalization
    return pixels.astype(np.float32) * np.float32(norm.scale) + np.float32(norm.offset)


def load_image(path: Path, meta: ModelMetadata, keep_size: bool = False) -> np.ndarray:
    """One PNG/JPEG as a model-ready float32 array of shape (H, W, C).

    ``keep_size`` keeps the image's own size, for fully convolutional models.
    """
    from PIL import Image, UnidentifiedImageError

    height, width, channels = meta.image_shape
    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            if not keep_size and (height, width) != (img.height, img.width):
                img = img.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(img)
    except (UnidentifiedImageError, OSError) as exc:
        raise UserError(f"{path}: not a readable image ({exc})") from None
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return _normalize(pixels, meta)


def load_array(path: Path, meta: ModelMetadata) -> np.ndarray:
    """A ``.npy`` file as a model-ready batch (N, H, W, C)."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise UserError(f"{path}: not a readable .npy array ({exc})") from None
    image = tuple(d for d in meta.image_shape)
    h, w, c = image
    if arr.ndim == 2:
        arr = arr[None, :, :, None]
    elif arr.ndim == 3:
        arr = arr[None] if c is not None and arr.shape[-1] == c and arr.shape[:2] == (h, w) else arr[..., None]
    if arr.ndim != 4 or any(e is not None and e != a for e, a in zip(image, arr.shape[1:])):
        want = "×".join("any" if d is None else str(d) for d in image)
        raise UserError(f"{path}: array of shape {arr.shape} cannot be converted to images of {want}")
    if arr.dtype == np.uint8:
        return _normalize(arr, meta)
    if not np.issubdtype(arr.dtype, np.floating):
        raise UserError(f"{path}: array dtype {arr.dtype} is neither uint8 pixels nor float model input")
    return arr.astype(np.float32)


def load_inputs(files: list[Path], meta: ModelMetadata) -> tuple[list[str], np.ndarray]:
    """Names and one stacked batch for all ``files`` (a ``.npy`` stack counts as several inputs)."""
    names: list[str] = []
    parts: list[np.ndarray] = []
    for f in files:
        if f.suffix.lower() == ".npy":
            arr = load_array(f, meta)
            names.extend([str(f)] if len(arr) == 1 else [f"{f}[{i}]" for i in range(len(arr))])
            parts.append(arr)
        else:
            names.append(str(f))
            parts.append(load_image(f, meta)[None])
    return names, np.concatenate(parts)


def save_image(image: np.ndarray, meta: ModelMetadata, path: Path) -> None:
    """Write a model-output image (H, W, C) as an 8-bit PNG/JPEG, undoing the normalisation, atomically."""
    from PIL import Image

    from .files import atomic_path

    norm = meta.normalization
    pixels = np.clip(np.round((image.astype(np.float32) - norm.offset) / norm.scale), 0, 255).astype(np.uint8)
    with atomic_path(path) as tmp:
        Image.fromarray(pixels[:, :, 0] if pixels.shape[-1] == 1 else pixels).save(tmp, format=_FORMATS[path.suffix.lower()])


_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
