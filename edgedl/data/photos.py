"""Photos as users have them: a folder with one sub-folder per class, or a CSV of ``path,label``; thousands to
hundreds of thousands of JPEGs, PNGs, BMPs, GIFs or WebPs of any size.

They are listed and checked (an unreadable file is skipped, counted and named in the log; an empty class
folder is refused), then decoded when a batch asks for them, in parallel threads, exactly as the device
decodes a picture (``runtime.images``: the same decoder, the same ``--resize`` policy), so that memory does
not grow with the number of pictures and host and device see the same inputs. ``Pictures`` behaves as the
array of decoded pictures the rest of edgedl indexes (``x[:300]``, ``x[rows]``); a small set is decoded once
and kept.
"""
from __future__ import annotations

import csv
import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from runtime.errors import UserError
from runtime.images import IMAGE_SUFFIXES, decode_picture, fit_picture

THREADS = 8  # Pillow decodes and resizes outside the GIL
KEEP_BYTES = 256 << 20  # a set whose decoded pictures (float32) fit in this is decoded once and kept
NAMED_SKIPS = 5  # the unreadable files named in the log; the rest are counted


@dataclass(frozen=True)
class PhotoList:
    """The pictures found, their class indices, the class names, and the files skipped as unreadable."""

    files: tuple
    y: np.ndarray
    classes: tuple
    source: str
    skipped: tuple = ()


def _readable(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.verify()
        return True
    except Exception:  # noqa: BLE001 - Pillow raises many types for a damaged file; all mean "skip it"
        return False


def _checked(files: list, labels: list, classes: tuple, source: str) -> PhotoList:
    with ThreadPoolExecutor(THREADS) as pool:
        ok = list(pool.map(_readable, files))
    kept = [(f, y) for f, y, good in zip(files, labels, ok) if good]
    skipped = tuple(str(f) for f, good in zip(files, ok) if not good)
    if not kept:
        raise UserError(f"{source}: none of its {len(files)} pictures can be read; give a folder of pictures "
                        f"({', '.join(IMAGE_SUFFIXES)})")  # fmt: skip
    return PhotoList(tuple(f for f, _ in kept), np.array([y for _, y in kept], np.int64), classes, source, skipped)


def list_folder(folder: Path) -> PhotoList:
    """A folder with one sub-folder of pictures per class (the class is the sub-folder's name)."""
    classes = tuple(sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")))
    if not classes:
        raise UserError(f"{folder}: no class sub-folders (expected {folder}/<class>/<picture>)")
    files, labels = [], []
    for index, name in enumerate(classes):
        found = sorted(f for f in (folder / name).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        if not found:
            raise UserError(f"{folder / name}: a class folder without pictures ({', '.join(IMAGE_SUFFIXES)}); "
                            "add some or remove it")  # fmt: skip
        files += found
        labels += [index] * len(found)
    return _checked(files, labels, classes, str(folder))


def list_csv(path: Path) -> PhotoList:
    """A CSV of ``path,label`` rows (a header row of ``path,label`` may come first); relative paths are the
    CSV's folder's. A label is a class name (classes in sorted order) or, in every row, a class index."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = [r for r in csv.reader(handle) if r and any(cell.strip() for cell in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{path}: not a readable CSV ({exc})") from None
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
        rows = rows[1:]
    bad = next((i for i, r in enumerate(rows) if len(r) < 2 or not r[0].strip() or not r[1].strip()), None)
    if bad is not None:
        raise UserError(f"{path}: row {bad + 1} is not 'path,label'")
    if not rows:
        raise UserError(f"{path}: no 'path,label' rows")
    names = {r[1].strip() for r in rows}
    if all(n.isdigit() for n in names):  # class indices: numbered in order, the absent ones included
        classes = tuple(str(i) for i in range(max(int(n) for n in names) + 1))
        index = {n: int(n) for n in names}
    else:
        classes = tuple(sorted(names))
        index = {name: i for i, name in enumerate(classes)}
    files = [Path(r[0].strip()) if Path(r[0].strip()).is_absolute() else path.parent / r[0].strip() for r in rows]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise UserError(f"{path}: {len(missing)} listed files do not exist, the first {missing[0]}")
    return _checked(files, [index[r[1].strip()] for r in rows], classes, str(path))


def log_skipped(photos: PhotoList, log) -> None:
    if photos.skipped:
        named = ", ".join(photos.skipped[:NAMED_SKIPS])
        more = f" and {len(photos.skipped) - NAMED_SKIPS} more" if len(photos.skipped) > NAMED_SKIPS else ""
        log(f"data: skipped {len(photos.skipped)} unreadable of {len(photos.files) + len(photos.skipped)} pictures "
            f"in {photos.source}: {named}{more}")  # fmt: skip


class Pictures:
    """The decoded pictures of ``files`` at (height, width, channels), fitted by ``resize``, as
    ``pixel * scale + offset`` (float32): indexing decodes what it asks for, in parallel threads (a set kept
    in memory, ``kept``, only indexes).
    ``augment`` (a seed) flips, shifts and brightens each picture a little, differently at every read."""

    def __init__(self, files: tuple, shape: tuple, resize: str = "stretch", scale=1.0 / 255.0, offset=0.0,
                 augment: Optional[int] = None, cache: Optional[np.ndarray] = None):  # fmt: skip
        self.files, self.image_shape, self.resize = tuple(files), tuple(shape), resize
        self._cache = cache  # every picture decoded (float pixels), for a set small enough to keep
        self.scale, self.offset = np.float32(scale), np.float32(offset)
        self.augment = augment
        self._rng = None if augment is None else np.random.default_rng(augment)
        self.dtype = np.dtype(np.float32)

    @property
    def shape(self) -> tuple:
        return (len(self.files), *self.image_shape)

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:  # what ``content_hash`` fingerprints: the files as they are, and how they are read
        digest = hashlib.sha256()
        for f in self.files:
            stat = Path(f).stat()
            digest.update(f"{f}|{stat.st_size}|{stat.st_mtime_ns}".encode())
        return (f"Pictures({digest.hexdigest()}, {self.image_shape}, {self.resize}, {float(self.scale)}, "
                f"{float(self.offset)}, augment={self.augment})")  # fmt: skip

    def pixels(self, index=slice(None)) -> np.ndarray:
        """The pictures at ``index`` as 8-bit pixels (N, H, W, C): how an evaluation set keeps them."""
        return np.clip(np.rint(self._decoded(index)), 0, 255).astype(np.uint8)

    def _decoded(self, index) -> np.ndarray:
        chosen = np.arange(len(self.files))[index]
        if self._cache is not None:
            return self._cache[np.atleast_1d(chosen)]
        height, width, channels = self.image_shape

        def read(i: int) -> np.ndarray:
            return fit_picture(decode_picture(Path(self.files[i]), channels, "black"), height, width, self.resize)

        with ThreadPoolExecutor(THREADS) as pool:
            return np.stack(list(pool.map(read, np.atleast_1d(chosen)))).reshape(-1, *self.image_shape)

    def __getitem__(self, index) -> np.ndarray:
        single = np.ndim(np.arange(len(self.files))[index]) == 0
        batch = self._decoded(index)
        if self._rng is not None:
            batch = _augmented(batch, self._rng)
        batch = batch * self.scale + self.offset
        return batch[0] if single else batch.astype(np.float32)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self[:], dtype=dtype)

    def rows(self, index) -> "Pictures":
        """These pictures' subset at ``index``, still read on demand."""
        cache = None if self._cache is None else self._cache[index]
        return Pictures(tuple(np.asarray(self.files, dtype=object)[index]), self.image_shape, self.resize,
                        self.scale, self.offset, self.augment, cache)  # fmt: skip

    def normalized(self, scale, offset) -> "Pictures":
        """The same pictures as ``pixel * scale + offset`` (a model's own normalisation)."""
        return Pictures(self.files, self.image_shape, self.resize, scale, offset, self.augment, self._cache)

    def augmented(self, seed: int) -> "Pictures":
        return Pictures(self.files, self.image_shape, self.resize, self.scale, self.offset, seed, self._cache)

    def kept(self) -> "Pictures":
        """The same pictures, every one decoded now and kept (for a set that fits in memory)."""
        return Pictures(self.files, self.image_shape, self.resize, self.scale, self.offset, self.augment,
                        self._decoded(slice(None)))  # fmt: skip


def _augmented(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each picture flipped left-right half of the time, shifted by up to an eighth of its size (edges
    repeated) and its brightness changed by up to ±20 %: what a camera's framing and light vary by."""
    out = np.empty_like(batch)
    height, width = batch.shape[1:3]
    for i, picture in enumerate(batch):
        if rng.random() < 0.5:
            picture = picture[:, ::-1]
        dy, dx = rng.integers(-(height // 8), height // 8 + 1), rng.integers(-(width // 8), width // 8 + 1)
        padded = np.pad(picture, ((abs(dy), abs(dy)), (abs(dx), abs(dx)), (0, 0)), mode="edge")
        picture = padded[abs(dy) + dy : abs(dy) + dy + height, abs(dx) + dx : abs(dx) + dx + width]
        out[i] = np.clip(picture * rng.uniform(0.8, 1.2), 0, 255)
    return out


def read_photos(path: Path, image_shape: tuple, resize: str, log) -> tuple:
    """(pictures, class indices, class names, source) of a folder or a CSV; a small set decoded and kept."""
    photos = list_csv(path) if path.suffix.lower() == ".csv" else list_folder(path)
    log_skipped(photos, log)
    return Pictures(photos.files, image_shape, resize), photos.y, photos.classes, photos.source
