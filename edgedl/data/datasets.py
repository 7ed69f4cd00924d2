"""Image data for training and evaluation, offline by default.

The default is the MNIST test split shipped inside the package (checked
against its sha256 on load): its first 8,000 images train, its last 2,000
evaluate. A user can point at the full MNIST files (IDX, gzipped or not, or a
Keras-style ``.npz``) or at a folder with one sub-folder of images per class.
Images come out as float32 (N, H, W, C) in [0, 1]; labels as int64.
"""
from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from runtime.errors import UserError

MNIST_DIR = Path(__file__).resolve().parents[1] / "assets" / "mnist"
MNIST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
MNIST_LABELS = tuple(str(i) for i in range(10))
DEFAULT_TRAIN = 8000
DEFAULT_EVAL = 2000
HOLDOUT_FRACTION = 0.2


@dataclass(frozen=True)
class Dataset:
    """Images in [0, 1] (an array, or ``photos.Pictures`` decoded on demand), integer labels, and the class
    names they index."""

    x: object
    y: np.ndarray
    labels: tuple
    source: str

    def __len__(self) -> int:
        return len(self.x)

    def take(self, index, source: Optional[str] = None) -> "Dataset":
        x = self.x.rows(index) if hasattr(self.x, "rows") else self.x[index]
        return Dataset(x, self.y[index], self.labels, source or self.source)

    def kept(self) -> "Dataset":
        """The same set with its pictures decoded and kept, when they fit in ``photos.KEEP_BYTES``."""
        from .photos import KEEP_BYTES

        small = hasattr(self.x, "rows") and len(self.x) * int(np.prod(self.x.image_shape)) * 4 <= KEEP_BYTES
        return Dataset(self.x.kept(), self.y, self.labels, self.source) if small else self

    def save_npz(self, path: Path, task: str) -> None:
        """These images as an evaluation set of ``task`` (``runtime.runfolder.write_eval``)."""
        from runtime.runfolder import write_eval

        write_eval(path, {"x": np.asarray(self.x), "y": self.y, "labels": np.array(self.labels)}, task)


def _log(message: str) -> None:
    import sys

    print(message, file=sys.stderr)


@dataclass(frozen=True)
class Reading:
    """How a user's pictures are read: fitted to the input by ``resize`` (stretch, crop or pad; recorded in
    every artifact, so that the device does the same), ``augment``ed for training, and where the data's
    own lines (skipped files) go."""

    resize: str = "stretch"
    augment: bool = True
    log: object = _log
    limit: Optional[int] = None  # at most this many training examples (--train-size: a quick trial run)

    def __post_init__(self):
        if self.resize not in ("stretch", "crop", "pad"):
            raise UserError(f"--resize {self.resize!r}: give stretch, crop or pad")
        if self.limit is not None and self.limit < 1:
            raise UserError(f"--train-size {self.limit}: give at least 1")

    def limited(self, count: int) -> int:
        """How many of ``count`` training examples to use."""
        return count if self.limit is None else min(count, self.limit)


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as exc:
        raise UserError(f"{path}: cannot read IDX file ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise UserError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    start = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(raw) - start != expected:
        raise UserError(f"{path}: IDX file is truncated ({len(raw) - start} of {expected} data bytes)")
    return np.frombuffer(raw, dtype=np.uint8, offset=start).reshape(dims)


def _to_float_images(x: np.ndarray, source: str) -> np.ndarray:
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise UserError(f"{source}: images must be N×H×W or N×H×W×C, got shape {x.shape}")
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    with np.errstate(over="ignore"):  # 1e300 in float64 is inf in float32: refused below, in one line
        x = x.astype(np.float32)
    bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
    if bad:
        raise UserError(f"{source}: {bad:,} values are NaN or infinite (the first in image "
                        f"{int(np.argwhere(~np.isfinite(x))[0][0])}); give finite pixel values")  # fmt: skip
    return x / 255.0 if x.max() > 1.0 else x


def checked_labels(y: np.ndarray, labels: Optional[tuple], source: str, every_class: bool = True) -> tuple:
    """The class names integer labels ``y`` index, the labels checked before any training: none negative,
    none beyond the names given; without names, classes 0..max, and (``every_class``: training data) every
    one of them present (a label 12 in ten classes would otherwise make a 13-way model)."""
    if y.size and np.any(y < 0):
        raise UserError(f"{source}: label {int(y.min())} is negative; classes are numbered from 0")
    if y.size and labels is not None and y.max() >= len(labels):
        raise UserError(f"{source}: label {int(y.max())} is beyond the {len(labels)} classes named (0 to "
                        f"{len(labels) - 1}); fix the labels or name every class")  # fmt: skip
    if labels is not None or not every_class:
        return labels or tuple(str(i) for i in range(int(y.max(initial=0)) + 1))
    present = np.unique(y)
    missing = sorted(set(range(int(y.max()) + 1)) - set(present.tolist())) if y.size else []
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (" …" if len(missing) > 5 else "")
        raise UserError(f"{source}: the labels run 0 to {int(y.max())} but class(es) {shown} have no example; number "
                        "the classes 0..N-1, or add a 'labels' array naming every class")  # fmt: skip
    return tuple(str(i) for i in range(int(y.max()) + 1))


def mnist_default() -> tuple[Dataset, Dataset]:
    """The embedded MNIST split: (first 8,000 for training, last 2,000 for evaluation)."""
    sums = dict(line.split()[::-1] for line in (MNIST_DIR / "SHA256SUMS").read_text().splitlines() if line.strip())
    for name in MNIST_FILES:
        digest = hashlib.sha256((MNIST_DIR / name).read_bytes()).hexdigest()
        if digest != sums[name]:
            raise UserError(f"{MNIST_DIR / name}: sha256 mismatch, the installed package is damaged; reinstall edgedl")
    x = _to_float_images(read_idx(MNIST_DIR / MNIST_FILES[0]), "embedded MNIST")
    y = read_idx(MNIST_DIR / MNIST_FILES[1]).astype(np.int64)
    full = Dataset(x, y, MNIST_LABELS, "embedded MNIST test split")
    return (
        full.take(slice(0, DEFAULT_TRAIN), f"embedded MNIST [0:{DEFAULT_TRAIN}]"),
        full.take(slice(len(full) - DEFAULT_EVAL, None), f"embedded MNIST [{len(full) - DEFAULT_EVAL}:]"),
    )


def _idx_pair(images: Path) -> Dataset:
    labels = images.with_name(images.name.replace("images-idx3", "labels-idx1"))
    if labels == images or not labels.exists():
        raise UserError(f"{images}: its labels file {labels.name} is missing beside it")
    x, y = read_idx(images), read_idx(labels)
    if len(x) != len(y):
        raise UserError(f"{images}: {len(x)} images but {len(y)} labels in {labels.name}")
    return Dataset(_to_float_images(x, str(images)), y.astype(np.int64), MNIST_LABELS, str(images))


def _idx_in_folder(folder: Path, split: str) -> Optional[Path]:
    found = sorted(folder.glob("*images-idx3-ubyte*"))
    if not found:
        return None
    prefix = "train" if split == "train" else "t10k"
    preferred = [f for f in found if f.name.startswith(prefix)]
    return (preferred or found)[0]


def _npz(path: Path, split: str) -> Dataset:
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise UserError(f"{path}: not a readable .npz file ({exc})") from None
    suffix = "_train" if split == "train" else "_test"
    for xk, yk in ((f"x{suffix}", f"y{suffix}"), ("x", "y")):
        if xk in data and yk in data:
            x, raw = data[xk], data[yk].reshape(-1)
            if raw.dtype.kind not in "iu" and not (raw.dtype.kind == "f" and np.all(np.mod(raw, 1) == 0)):
                raise UserError(f"{path}[{yk}]: labels must be whole class numbers, got {raw.dtype} values")
            if len(raw) != len(x):
                raise UserError(f"{path}: {len(raw)} labels in {yk} for {len(x)} images in {xk}; give one per image")
            y = raw.astype(np.int64)
            named = tuple(str(v) for v in data["labels"]) if "labels" in data else None
            labels = checked_labels(y, named, f"{path}[{yk}]", every_class=split == "train")
            return Dataset(_to_float_images(x, str(path)), y, labels, f"{path}[{xk}]")
    raise UserError(f"{path}: .npz needs arrays x_train/y_train, x_test/y_test or x/y; it has {sorted(data.files)}")


def load_data(path: str | Path, split: str = "train", image_shape: tuple = (28, 28, 1),
              reading: Optional["Reading"] = None) -> Dataset:  # fmt: skip
    """Load a user's data set: MNIST IDX file or folder, ``.npz``, a folder with a sub-folder of pictures per
    class, or a CSV of ``path,label`` (``data.photos``: read as ``reading`` says, on demand when large).

    ``split`` ("train" or "test") picks the matching part where the source has
    both (``train-*``/``t10k-*`` IDX files, ``x_train``/``x_test`` arrays).
    """
    from .photos import read_photos

    reading = reading or Reading()
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such data file or folder")
    if path.is_file():
        if path.suffix == ".npz":
            return _npz(path, split)
        if "idx3-ubyte" in path.name:
            return _idx_pair(path)
        if path.suffix.lower() == ".csv":
            return Dataset(*read_photos(path, image_shape, reading.resize, reading.log))
        raise UserError(f"{path}: unknown data format; give an IDX images file, an .npz, a CSV of path,label or a "
                        "folder of class folders")  # fmt: skip
    idx = _idx_in_folder(path, split)
    if idx is not None:
        return _idx_pair(idx)
    return Dataset(*read_photos(path, image_shape, reading.resize, reading.log))


def has_split(path: str | Path, split: str) -> bool:
    """Whether ``path`` holds a separate ``split`` part (so no hold-out is needed)."""
    path = Path(path)
    if path.suffix == ".npz" and path.is_file():
        with np.load(path, allow_pickle=False) as data:
            return f"x_{split}" in data.files
    if path.is_dir():
        prefix = "train" if split == "train" else "t10k"
        return any(f.name.startswith(prefix) for f in path.glob("*images-idx3-ubyte*"))
    return False


def train_eval(
    data: Optional[str | Path] = None,
    eval_data: Optional[str | Path] = None,
    image_shape: tuple = (28, 28, 1),
    seed: int = 0,
    reading: Optional[Reading] = None,
) -> tuple[Dataset, Dataset]:
    """The (training, evaluation) pair the pipeline uses (see ``_split``); pictures read from files are decoded
    on demand, a small set once, and the training pictures augmented when ``reading`` says so."""
    reading = reading or Reading()
    train, evaluation = _split(data, eval_data, image_shape, seed, reading)
    if reading.limit is not None and reading.limit < len(train):
        train = train.take(slice(0, reading.limit), f"{train.source}, the first {reading.limit}")
    if reading.augment and hasattr(train.x, "augmented"):
        train = Dataset(train.x.augmented(seed), train.y, train.labels, f"{train.source}, augmented")
    else:
        train = train.kept()
    return train, evaluation.kept()


def _split(data, eval_data, image_shape: tuple, seed: int, reading: Reading) -> tuple[Dataset, Dataset]:
    """The (training, evaluation) pair the pipeline uses.

    Neither given: the embedded MNIST split. Only ``data``: its test part if it
    has one, otherwise a seeded 20 % hold-out. Only ``eval_data``: for a model
    of MNIST's digits, train on the embedded split and evaluate on the user's
    data; for any other model, a seeded 20 % of the user's data trains (and
    calibrates) and the rest evaluates: never digits for a model of photos.
    """
    if data is None:
        default_train, default_eval = mnist_default()
        if eval_data is None:
            if int(np.prod(image_shape)) != int(np.prod(default_train.x.shape[1:])):  # never digits for photos
                shape = "×".join(str(d) for d in image_shape)
                raise UserError(f"the model takes {shape} inputs, the embedded default data is 28×28 digits: give "
                                "--data (a folder of pictures, a sub-folder per class; or an .npz of x and y)")  # fmt: skip
            return default_train, default_eval
        evaluation = load_data(eval_data, "test", image_shape, reading)
        if tuple(image_shape) == default_train.x.shape[1:]:
            return default_train, evaluation
        order = np.random.default_rng(seed).permutation(len(evaluation))
        cut = max(1, int(len(evaluation) * HOLDOUT_FRACTION))
        if len(evaluation) - cut < 1:
            raise UserError(f"{eval_data}: {len(evaluation)} pictures cannot be split into calibration and "
                            "evaluation data; give more, or --data for the calibration")  # fmt: skip
        return (evaluation.take(order[:cut], f"{evaluation.source} (20 %, for calibration and fine-tuning)"),
                evaluation.take(order[cut:], f"{evaluation.source} (the other 80 %)"))
    train = load_data(data, "train", image_shape, reading)
    if eval_data is not None:
        return train, load_data(eval_data, "test", image_shape, reading)
    if has_split(data, "test"):
        return train, load_data(data, "test", image_shape, reading)
    order = np.random.default_rng(seed).permutation(len(train))
    cut = int(len(train) * (1 - HOLDOUT_FRACTION))
    return train.take(order[:cut], f"{train.source} (80 %)"), train.take(order[cut:], f"{train.source} (20 % hold-out)")
