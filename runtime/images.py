"""Turn image files and arrays into what a model expects, faithfully and within limits.

PNG and JPEG files are decoded (16-bit grey kept at full precision, then
scaled to the 8-bit range; transparency composited onto ``background``),
converted to grey or RGB for the model's channels, resized to its input size
(unless that size is free), normalised with the model's ``normalization`` and
laid out as it wants (NHWC or NCHW). A ``.npy`` array already shaped like the
model's input is taken as model-ready; one shaped like images is treated like
pixels (uint8) or model-ready values (float). An ``.npz`` feeds a model with
several inputs, one array per input name. Non-finite values are refused.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import UserError, one_line
from .files import check_regular
from .metadata import ModelMetadata

# The pictures every reader takes, host and device alike (all of them decoded by Pillow).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
INPUT_SUFFIXES = IMAGE_SUFFIXES + (".npy", ".npz")
MAX_PIXELS = 64_000_000  # a 8000×8000 photo; a larger "image" is most likely a decompression bomb
MAX_ARRAY_BYTES = 1 << 30
MAX_FILES = 100_000


@dataclass(frozen=True)
class ImageOptions:
    """The user's choices about turning a picture into a tensor (None: what the model says)."""

    size: Optional[tuple] = None  # (height, width)
    channels: Optional[int] = None
    background: str = "black"  # what shows through transparent pixels

    def __post_init__(self):
        if self.size is not None and (len(self.size) != 2 or not all(1 <= s <= 16384 for s in self.size)):
            raise UserError(f"--size {self.size}: give HEIGHTxWIDTH, each from 1 to 16384")
        if self.channels not in (None, 1, 3):
            raise UserError(f"--channels {self.channels}: give 1 (grey) or 3 (RGB)")
        if self.background not in ("black", "white"):
            raise UserError(f"--background {self.background!r}: give black or white")


def expand_inputs(inputs: list[str | os.PathLike]) -> list[Path]:
    """Files given directly, plus the image and array files inside any folder given (sorted)."""
    files: list[Path] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in INPUT_SUFFIXES and f.is_file())
            if not found:
                raise UserError(f"{p}: folder holds no {', '.join(INPUT_SUFFIXES)} files")
            files.extend(found)
        else:
            check_regular(p, "file or folder")
            if p.suffix.lower() not in INPUT_SUFFIXES:
                raise UserError(f"{p}: unsupported input type {p.suffix!r}; give {', '.join(INPUT_SUFFIXES)} files")
            files.append(p)
        if len(files) > MAX_FILES:
            raise UserError(f"more than {MAX_FILES:,} inputs; give fewer at a time")
    return files


def _normalize(pixels: np.ndarray, meta: ModelMetadata) -> np.ndarray:
    norm = meta.normalization
    channels = pixels.shape[-1]
    scale, offset = np.float32(norm.scale), np.float32(norm.offset)
    if len(norm.scale) not in (1, channels) or len(norm.offset) not in (1, channels):
        raise UserError(f"the normalisation has {len(norm.scale)} values, the image {channels} channels; "
                        "give one value per channel, or one")  # fmt: skip
    return pixels.astype(np.float32) * scale + offset


def decode_picture(path: Path, channels: Optional[int], background: str):
    """The picture as float pixels in [0, 255] (H, W, C)."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow then refuses bombs (DecompressionBombError) before decoding
    with Image.open(path) as img:
        if img.width * img.height > MAX_PIXELS:
            raise UserError(f"{path}: {img.width}×{img.height} is more than {MAX_PIXELS:,} pixels")
        if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            pixels = np.asarray(img, dtype=np.float32)
            if img.mode.startswith("I;16") or pixels.max(initial=0) > 255:
                pixels = pixels / 257.0  # 16-bit grey: 65535 -> 255, precision kept as float
            pixels = pixels[:, :, None]
            return np.repeat(pixels, 3, axis=2) if channels == 3 else pixels
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            base = Image.new("RGBA", img.size, (0, 0, 0, 255) if background == "black" else (255, 255, 255, 255))
            img = Image.alpha_composite(base, img.convert("RGBA"))
        if channels is None:
            channels = 1 if img.mode in ("L", "1", "LA", "I;16") else 3
        img = img.convert("L" if channels == 1 else "RGB")
        pixels = np.asarray(img, dtype=np.float32)
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def fit_picture(pixels: np.ndarray, height: int, width: int, policy: str = "stretch") -> np.ndarray:
    """A decoded picture (H, W, C floats in [0, 255]) at the input's size by ``policy``: ``stretch`` resizes it
    as it is; ``crop`` takes the centre of the input's aspect first; ``pad`` adds black borders to the input's
    aspect first. The host reads its training and evaluation pictures with this very function."""
    h, w = pixels.shape[:2]
    if policy == "crop" and h * width != w * height:
        if w * height > h * width:  # wider than the input: keep the middle columns
            keep = max(1, round(h * width / height))
            pixels = pixels[:, (w - keep) // 2 : (w - keep) // 2 + keep]
        else:
            keep = max(1, round(w * height / width))
            pixels = pixels[(h - keep) // 2 : (h - keep) // 2 + keep]
    elif policy == "pad" and h * width != w * height:
        if w * height > h * width:  # wider: rows above and below
            total = round(w * height / width) - h
            pixels = np.pad(pixels, ((total // 2, total - total // 2), (0, 0), (0, 0)))
        else:
            total = round(h * width / height) - w
            pixels = np.pad(pixels, ((0, 0), (total // 2, total - total // 2), (0, 0)))
    elif policy not in ("stretch", "crop", "pad"):
        raise UserError(f"--resize {policy!r}: give stretch, crop or pad")
    if pixels.shape[:2] == (height, width):
        return pixels
    return _resize(pixels, height, width)


def _resize(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    from PIL import Image

    planes = [Image.fromarray(np.ascontiguousarray(pixels[:, :, c])).resize((width, height), Image.Resampling.BILINEAR)
              for c in range(pixels.shape[2])]  # fmt: skip
    return np.stack([np.asarray(p) for p in planes], axis=-1)


def load_image(path: Path, meta: ModelMetadata, keep_size: bool = False,
               options: ImageOptions = ImageOptions()) -> np.ndarray:  # fmt: skip
    """One PNG/JPEG as a model-ready float32 array (H, W, C); ``keep_size`` keeps the picture's own size
    (fully convolutional models; also whenever the model's size is free)."""
    channels = options.channels or (meta.image_shape + (None, None, None))[2]
    try:
        pixels = decode_picture(check_regular(path, "image"), channels, options.background)
    except UserError:
        raise
    except MemoryError:
        raise UserError(f"{path}: too large to decode in memory") from None
    except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise anything from OSError to SyntaxError
        raise UserError(f"{path}: not a readable image ({one_line(exc, 120, typed=True)})") from None
    return from_pixels(pixels, meta, keep_size, options)


def from_pixels(pixels: np.ndarray, meta: ModelMetadata, keep_size: bool = False,
                options: ImageOptions = ImageOptions()) -> np.ndarray:  # fmt: skip
    """A picture already decoded (H, W, C floats in [0, 255]) as the model's input (H, W, C): resized to its
    size (unless ``keep_size`` or the size is free), channels matched, normalised."""
    height, width, channels = (meta.image_shape + (None, None, None))[:3]
    channels = options.channels or channels
    pixels = np.asarray(pixels, dtype=np.float32)
    if channels == 3 and pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    elif channels == 1 and pixels.shape[-1] == 3:
        pixels = (pixels @ np.float32([0.299, 0.587, 0.114]))[..., None]  # ITU-R 601-2, as Pillow's "L"
    if options.size is not None:
        height, width = options.size
    if not keep_size and height and width and (height, width) != pixels.shape[:2]:
        pixels = fit_picture(pixels, height, width, meta.resize)
    stored = _as_stored(pixels, meta)
    return stored if stored is not None else _normalize(pixels, meta)


def _as_stored(pixels: np.ndarray, meta: ModelMetadata) -> Optional[np.ndarray]:
    """The 8-bit pixels themselves, for a uint8 input whose quantization is the normalisation (an
    ``int8_pixels`` artifact: a camera frame in, no float round trip); None for any other input."""
    spec, norm = meta.image_input, meta.normalization
    quant = spec.quantization if spec is not None else None
    per_channel = len(set(norm.scale)) > 1 or len(set(norm.offset)) > 1
    if spec is None or spec.dtype != "uint8" or quant is None or per_channel:
        return None
    scale, offset = norm.scale[0], norm.offset[0]
    if abs(scale - quant.scale) > 1e-6 * quant.scale or abs(offset + quant.zero_point * quant.scale) > 1e-6:
        return None
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_finite(arr: np.ndarray, source) -> None:
    """Finite, and within float32 (every model input is float32 or narrower: 1e300 would become infinity)."""
    if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
        raise UserError(f"{source}: holds NaN or infinite values; a model input must be finite")
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 4 and arr.size and np.abs(arr).max() > FLOAT32_MAX:
        raise UserError(f"{source}: holds values beyond float32's range (|x| up to {np.abs(arr).max():.3g}); a "
                        "model input must fit in float32")  # fmt: skip


def read_npy(path: Path) -> np.ndarray:
    """A ``.npy`` file: numeric, no pickles, at most ``MAX_ARRAY_BYTES``, finite."""
    path = check_regular(path, ".npy file")
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0  # fmt: skip
            shape, _, dtype = read_header(handle)
            if dtype.hasobject or dtype.kind not in "biuf":
                raise UserError(f"{path}: array dtype {dtype} is not numeric")
            if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize > MAX_ARRAY_BYTES:
                raise UserError(f"{path}: array of shape {shape} is larger than {MAX_ARRAY_BYTES:,} bytes")
            handle.seek(0)
            arr = np.load(handle, allow_pickle=False)
    except UserError:
        raise
    except MemoryError:
        raise UserError(f"{path}: too large to read into memory") from None
    except Exception as exc:  # noqa: BLE001 - numpy's header parser raises ValueError, TokenError, SyntaxError...
        raise UserError(f"{path}: not a readable .npy array ({one_line(exc, 100, typed=True)})") from None
    if arr.size == 0:
        raise UserError(f"{path}: the array of shape {arr.shape} is empty")
    _check_finite(arr, path)
    return arr


def read_npz(path: Path) -> dict:
    """An ``.npz`` file as a dict of numeric, finite arrays (no pickles, capped in total size)."""
    path = check_regular(path, ".npz file")
    arrays, total = {}, 0
    try:
        with np.load(path, allow_pickle=False) as data:
            for name in data.files:
                info = data.zip.getinfo(name + ".npy")
                total += info.file_size
                if total > MAX_ARRAY_BYTES:
                    raise UserError(f"{path}: its arrays are larger than {MAX_ARRAY_BYTES:,} bytes")
                arr = data[name]
                if arr.dtype.hasobject:
                    raise UserError(f"{path}: array {name!r} is not numeric")
                _check_finite(arr, f"{path}[{name}]")
                arrays[name] = arr
    except UserError:
        raise
    except MemoryError:
        raise UserError(f"{path}: too large to read into memory") from None
    except Exception as exc:  # noqa: BLE001 - zipfile and numpy raise BadZipFile, ValueError, zlib.error...
        raise UserError(f"{path}: not a readable .npz archive ({one_line(exc, 100, typed=True)})") from None
    return arrays


def to_layout(batch: np.ndarray, meta: ModelMetadata) -> np.ndarray:
    """NHWC images as the model lays them out."""
    return batch.transpose(0, 3, 1, 2) if meta.layout == "NCHW" and batch.ndim == 4 else batch


def load_array(path: Path, meta: ModelMetadata) -> np.ndarray:
    """A ``.npy`` file as a model-ready batch for the model's (image) input."""
    from .feeds import batched

    arr = read_npy(path)
    spec = meta.image_input or meta.input
    if not batched(spec):  # taken whole (16,000 audio samples): one sample, or a sample axis before them
        fits_whole = lambda a: a.shape[1:] == spec.shape or len(a.shape[1:]) == len(spec.shape) and all(  # noqa: E731
            e is None or e == d for e, d in zip(spec.shape, a.shape[1:]))
        if fits_whole(arr[None]) or fits_whole(arr):
            return arr[None] if fits_whole(arr[None]) else arr
        raise UserError(f"{path}: array of shape {arr.shape} does not fit input {spec.name!r}, which the model takes "
                        f"whole as {spec.shown()} (give that, or several stacked)")  # fmt: skip
    model_shape = tuple(spec.shape[1:])
    fits = lambda a: a.ndim == len(spec.shape) and all(e is None or e == d for e, d in zip(model_shape, a.shape[1:]))  # noqa: E731
    if fits(arr) or fits(arr[None]):  # already laid out as the model wants
        arr = arr if fits(arr) else arr[None]
        return _normalize(arr, meta) if arr.dtype == np.uint8 and spec.dtype != "uint8" and len(spec.shape) == 4 \
            and meta.layout == "NHWC" else arr  # fmt: skip
    if len(spec.shape) != 4:
        raise UserError(f"{path}: array of shape {arr.shape} does not fit input {spec.name!r} ({spec.shown()})")
    h, w, c = meta.image_shape
    if arr.ndim == 2:
        arr = arr[None, :, :, None]
    elif arr.ndim == 3:
        arr = arr[None] if c is not None and arr.shape[-1] == c and arr.shape[:2] == (h, w) else arr[..., None]
    if arr.ndim != 4 or any(e is not None and e != a for e, a in zip((h, w, c), arr.shape[1:])):
        want = "×".join("any" if d is None else str(d) for d in (h, w, c))
        raise UserError(f"{path}: array of shape {arr.shape} cannot be converted to images of {want}")
    return to_layout(_normalize(arr, meta) if arr.dtype == np.uint8 else arr.astype(np.float32), meta)


def load_inputs(files: list[Path], meta: ModelMetadata, options: ImageOptions = ImageOptions()):
    """Names and one batch for all ``files``: an array for a one-input model, a dict by input name
    otherwise (each file then an ``.npz`` with one array per input)."""
    names: list[str] = []
    if len(meta.inputs) > 1 or any(f.suffix.lower() == ".npz" for f in files):
        return _load_npz_inputs(files, meta)
    parts: list[np.ndarray] = []
    keep = options.size is None and None in (meta.image_shape + (None,))[:2]
    for f in files:
        if f.suffix.lower() == ".npy":
            arr = load_array(f, meta)
            names.extend([str(f)] if len(arr) == 1 else [f"{f}[{i}]" for i in range(len(arr))])
            parts.append(arr)
        else:
            if meta.image_input is None:
                raise UserError(f"{f}: the model's input {meta.input.name!r} ({meta.input.shown()}) is not an "
                                "image; give a .npy array")  # fmt: skip
            names.append(str(f))
            parts.append(to_layout(load_image(f, meta, keep_size=keep, options=options)[None], meta))
    if len({p.shape[1:] for p in parts}) > 1:
        raise UserError("the inputs have different sizes; give --size HxW, or run them one at a time")
    return names, np.concatenate(parts)


def _load_npz_inputs(files: list[Path], meta: ModelMetadata):
    """Every ``.npz``'s arrays by input name (``feeds.stacked``: a batched input's samples; a whole input's one
    value, or one per sample; a recurrent state zeros when absent), joined."""
    from .feeds import stacked, state_pairs, whole_inputs

    names, batches = [], {s.name: [] for s in meta.inputs}
    whole = whole_inputs(meta.inputs)
    for f in files:
        if f.suffix.lower() != ".npz":
            raise UserError(f"{f}: the model takes {len(meta.inputs)} inputs "
                            f"({', '.join(s.name for s in meta.inputs)}); give .npz files with one array each")  # fmt: skip
        arrays = read_npz(f)
        for s in meta.inputs:  # a batched input given as one sample, without its batch axis
            if s.name in arrays and s.name not in whole and arrays[s.name].ndim == len(s.shape) - 1:
                arrays[s.name] = arrays[s.name][None]
        batch = stacked(meta, arrays, str(f), zeros_for=tuple(state_pairs(meta)))
        count = len(next(iter(batch.values())))
        for name, a in batch.items():
            batches[name].append(a)
        names.extend([str(f)] if count == 1 else [f"{f}[{i}]" for i in range(count)])
    try:
        return names, {k: np.concatenate(v) for k, v in batches.items()}
    except ValueError:
        raise UserError("the .npz inputs have different shapes; run them one at a time") from None


def save_image(image: np.ndarray, meta: ModelMetadata, path: Path) -> None:
    """Write a model-output image (H, W, C) as an 8-bit PNG/JPEG, undoing the normalisation, atomically."""
    from PIL import Image

    from .files import atomic_path

    norm = meta.normalization
    scale, offset = np.float32(norm.scale), np.float32(norm.offset)
    pixels = np.clip(np.round((image.astype(np.float32) - offset) / scale), 0, 255).astype(np.uint8)
    with atomic_path(path) as tmp:
        Image.fromarray(pixels[:, :, 0] if pixels.shape[-1] == 1 else pixels).save(tmp, format=_FORMATS[path.suffix.lower()])


_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
