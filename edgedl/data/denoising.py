"""Data for denoisers: clean grey images, Gaussian noise on the 0–255 scale, patches, evaluation pairs.

Convention (``shared/data/bsd/README.md``): clean x in [0, 1], noisy
y = x + n with n ~ N(0, (σ/255)²). Evaluation inputs are stored as 8-bit
images (rounded and clipped), as a device would receive them; training adds
fresh float noise to every batch, at one σ or, blind, at a σ drawn per patch
from ``BLIND_RANGE``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from runtime.errors import UserError
from runtime.images import IMAGE_SUFFIXES

from . import datasets

BLIND_RANGE = (0.0, 55.0)


@dataclass(frozen=True)
class Noise:
    """``sigma`` on the 0–255 scale, or None for blind training over ``BLIND_RANGE``."""

    sigma: Optional[float] = 25.0
    eval_sigma: float = 25.0

    def __post_init__(self):
        for s in (self.sigma, self.eval_sigma):
            if s is not None and not 0 <= s <= 255:
                raise UserError(f"noise sigma must be in [0, 255] (on the 0-255 scale), got {s}")

    @classmethod
    def parse(cls, text: str, eval_sigma: Optional[float] = None) -> "Noise":
        """``"25"`` or ``"blind"`` (with the evaluation σ, 25 by default)."""
        if text == "blind":
            return cls(None, 25.0 if eval_sigma is None else eval_sigma)
        try:
            sigma = float(text)
        except ValueError:
            raise UserError(f"--sigma takes a number on the 0-255 scale or 'blind', got {text!r}") from None
        return cls(sigma, sigma if eval_sigma is None else eval_sigma)


@dataclass(frozen=True)
class ImageSet:
    """Clean grey images in [0, 1], each (H, W, 1); sizes may differ."""

    images: tuple
    source: str
    names: tuple = ()  # the files' names, when read from a folder

    def __len__(self) -> int:
        return len(self.images)


def load_images(folder: str | Path) -> ImageSet:
    """Every image file directly in ``folder``, as grey, sorted by name."""
    from PIL import Image, UnidentifiedImageError

    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder of images")
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"{folder}: holds no {', '.join(IMAGE_SUFFIXES)} images")
    images = []
    for f in files:
        try:
            with Image.open(f) as img:
                images.append(np.asarray(img.convert("L"), dtype=np.float32)[:, :, None] / 255.0)
        except (UnidentifiedImageError, OSError) as exc:
            raise UserError(f"{f}: not a readable image ({exc})") from None
    return ImageSet(tuple(images), str(folder), tuple(f.name for f in files))


def as_eight_bit(image: np.ndarray) -> np.ndarray:
    """An image in [0, 1] as an 8-bit camera or file would hold it: rounded to 1/255, clipped to [0, 1]."""
    return (np.clip(np.round(image * 255.0), 0, 255) / 255.0).astype(np.float32)


def add_noise(clean: np.ndarray, sigma: float, rng: np.random.Generator, eight_bit: bool = True) -> np.ndarray:
    """``clean + N(0, (σ/255)²)``; as an 8-bit image (rounded, clipped) unless ``eight_bit`` is False."""
    noisy = clean + rng.normal(0.0, sigma / 255.0, clean.shape).astype(np.float32)
    return as_eight_bit(noisy) if eight_bit else noisy.astype(np.float32)


def eval_pairs(images: ImageSet, sigma: float, seed: int = 0) -> tuple[list, list]:
    """(noisy, clean) lists for evaluation, with noise drawn from a fixed seed."""
    rng = np.random.default_rng(seed)
    return [add_noise(x, sigma, rng) for x in images.images], list(images.images)


def random_patches(images: ImageSet, size: int, per_image: int, rng: np.random.Generator,
                   augment: bool = True) -> np.ndarray:  # fmt: skip
    """``per_image`` random ``size``×``size`` crops of every image (whole images when they are that small),
    each turned by a random multiple of 90° and mirrored or not (``augment``: the eight symmetries of a
    square, as DnCNN trains; noise has no orientation, and pictures have all of them)."""
    patches = []
    for img in images.images:
        h, w = img.shape[:2]
        if h < size or w < size:
            raise UserError(f"{images.source}: an image of {h}×{w} is smaller than the {size}×{size} patches")
        for _ in range(per_image):
            top, left = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
            patch = img[top : top + size, left : left + size]
            if augment:
                turn = int(rng.integers(0, 8))
                patch = np.rot90(patch, turn % 4)
                patch = patch[:, ::-1] if turn >= 4 else patch
            patches.append(patch)
    return np.ascontiguousarray(np.stack(patches))


def train_eval(data: Optional[str | Path], eval_data: Optional[str | Path]) -> tuple[ImageSet, ImageSet]:
    """Clean training and evaluation images: a user's folders, or the embedded MNIST digits."""
    if data is not None and eval_data is None:
        raise UserError("give --eval-data too: a folder of clean images to evaluate the denoiser on (e.g. Set12)")
    if data is None or eval_data is None:
        train_digits, eval_digits = datasets.mnist_default()
    train = load_images(data) if data is not None else ImageSet(tuple(train_digits.x), train_digits.source)
    if eval_data is not None:
        return train, load_images(eval_data)
    return train, ImageSet(tuple(eval_digits.x), eval_digits.source)


def noisy_batches(make_clean, noise: Noise, batch_size: int, seed: int, eight_bit: bool = False):
    """A Keras ``Sequence`` of (noisy, clean) batches: ``make_clean(rng)`` gives new clean samples every
    epoch, and every sample gets fresh float noise (its own σ when blind); rounded and clipped as an 8-bit
    image with ``eight_bit``, as the evaluation's noisy images are."""
    from exporters.tfkeras import keras

    class NoisyBatches(keras().utils.Sequence):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.on_epoch_end()

        def on_epoch_end(self):
            self.clean = make_clean(self.rng)
            n = len(self.clean)
            sigma = (
                np.full(n, noise.sigma, np.float32)
                if noise.sigma is not None
                else self.rng.uniform(*BLIND_RANGE, n).astype(np.float32)
            )
            per_sample = (sigma / 255.0).reshape((n,) + (1,) * (self.clean.ndim - 1))
            self.noisy = self.clean + self.rng.standard_normal(self.clean.shape).astype(np.float32) * per_sample
            if eight_bit:
                self.noisy = as_eight_bit(self.noisy)

        def __len__(self):
            return int(np.ceil(len(self.clean) / batch_size))

        def __getitem__(self, i):
            s = slice(i * batch_size, (i + 1) * batch_size)
            return self.noisy[s], self.clean[s]

    return NoisyBatches()


def patch_batches(images: ImageSet, noise: Noise, patch: int, per_image: int, batch_size: int, seed: int):
    """Noisy/clean batches of random ``patch``×``patch`` crops, new crops every epoch."""

    def make_clean(rng):
        clean = random_patches(images, patch, per_image, rng)
        rng.shuffle(clean)
        return clean

    return noisy_batches(make_clean, noise, batch_size, seed)


def moving_digit_sequences(digits: np.ndarray, frames: int, size: int, rng: np.random.Generator,
                           max_speed: int = 1) -> np.ndarray:
    """Each digit (28×28×1) moving in a straight line across a ``size``×``size`` canvas, bouncing off the
    edges: (N, frames, size, size, 1). Start and velocity (−max_speed…max_speed px/frame per axis) are
    drawn from ``rng``."""
    n, h, w = digits.shape[0], digits.shape[1], digits.shape[2]
    room = size - max(h, w)
    if room < 0:
        raise UserError(f"digits of {h}×{w} do not fit a {size}×{size} frame")
    out = np.zeros((n, frames, size, size, 1), np.float32)
    pos = rng.integers(0, room + 1, (n, 2))
    vel = rng.integers(-max_speed, max_speed + 1, (n, 2))
    for t in range(frames):
        for i in range(n):
            y, x = pos[i]
            out[i, t, y : y + h, x : x + w] = digits[i]
        pos = pos + vel
        bounce = (pos < 0) | (pos > room)
        vel = np.where(bounce, -vel, vel)
        pos = np.clip(pos, 0, room)
    return out


def sequence_batches(digits: np.ndarray, noise: Noise, frames: int, size: int, batch_size: int, seed: int):
    """Noisy/clean batches of moving-digit sequences, new motions every epoch."""
    # 8-bit noise, as evaluated: on digits (most pixels exactly 0 or 1) clipping takes away much of the noise
    # (at σ = 50 an RMS of 0.14 is left of 0.20), so float noise would train for another problem.
    return noisy_batches(lambda rng: moving_digit_sequences(digits, frames, size, rng), noise, batch_size, seed,
                         eight_bit=True)  # fmt: skip
