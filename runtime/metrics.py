"""Task metrics in numpy alone, so the device measures exactly what the host does.

Denoising follows the convention of ``shared/data/bsd/README.md``: images in
[0, 1], the model's output clipped to [0, 1], PSNR = 10·log10(1 / MSE) per
image, then averaged over images. SSIM is Wang et al. (2004) with an 11×11
Gaussian window (σ = 1.5), K1 = 0.01, K2 = 0.03, on the [0, 1] range.
"""
from __future__ import annotations

from typing import Optional

import numpy as np


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of class scores (N, classes) against integer labels (N,)."""
    return float(np.mean(np.argmax(scores, axis=-1) == np.asarray(labels).reshape(-1)))


def psnr(clean: np.ndarray, restored: np.ndarray) -> float:
    """PSNR in dB of one image in [0, 1] (the restored one clipped to [0, 1] first)."""
    mse = float(np.mean((np.clip(restored, 0.0, 1.0).astype(np.float64) - clean.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter(img: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering of a 2-D image."""
    rows = np.apply_along_axis(lambda r: np.convolve(r, window, mode="valid"), 1, img)
    return np.apply_along_axis(lambda c: np.convolve(c, window, mode="valid"), 0, rows)


def ssim(clean: np.ndarray, restored: np.ndarray) -> float:
    """Mean SSIM of one grey image (H, W) or (H, W, 1) in [0, 1]."""
    a = np.squeeze(clean).astype(np.float64)
    b = np.clip(np.squeeze(restored), 0.0, 1.0).astype(np.float64)
    w = _gaussian_window()
    if min(a.shape) < len(w):
        w = _gaussian_window(min(a.shape) | 1 if min(a.shape) % 2 else min(a.shape) - 1, 1.5)
    c1, c2 = (0.01) ** 2, (0.03) ** 2
    mu_a, mu_b = _filter(a, w), _filter(b, w)
    var_a = _filter(a * a, w) - mu_a**2
    var_b = _filter(b * b, w) - mu_b**2
    cov = _filter(a * b, w) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(s.mean())


def _frames(images: list) -> list:
    """Images (H, W, C), or sequences of them (T, H, W, C): every frame counts as one image."""
    return [f for img in images for f in (img if np.ndim(img) == 4 else [img])]


def denoising_metrics(clean: list, restored: list) -> dict:
    """Mean PSNR and SSIM over pairs of images (or of frames, for sequences)."""
    pairs = list(zip(_frames(clean), _frames(restored)))
    return {
        "psnr": float(np.mean([psnr(c, r) for c, r in pairs])),
        "ssim": float(np.mean([ssim(c, r) for c, r in pairs])),
    }


def confusion(masks: list, predicted: list, classes: int) -> np.ndarray:
    """(classes, classes) pixel counts: row the true class, column the predicted one, over every mask."""
    counts = np.zeros((classes, classes), np.int64)
    for truth, guess in zip(masks, predicted):
        truth, guess = np.asarray(truth).reshape(-1).astype(np.int64), np.asarray(guess).reshape(-1).astype(np.int64)
        if truth.shape != guess.shape:
            raise ValueError(f"a mask of {truth.size} pixels for a prediction of {guess.size}")
        if truth.size and (truth.min() < 0 or truth.max() >= classes):
            raise ValueError(f"mask classes must be in [0, {classes}), got {truth.min()}…{truth.max()}")
        counts += np.bincount(truth * classes + guess, minlength=classes * classes).reshape(classes, classes)
    return counts


def class_iou(counts: np.ndarray) -> np.ndarray:
    """Each class's intersection over union, TP / (TP + FP + FN), from a confusion matrix; NaN for a class
    absent from both the masks and the predictions."""
    tp = np.diag(counts).astype(np.float64)
    union = counts.sum(0) + counts.sum(1) - tp
    return np.divide(tp, union, out=np.full(len(tp), np.nan), where=union > 0)


def segmentation_metrics(masks: list, scores: list) -> dict:
    """mIoU (the mean over the classes present of each class's IoU, pixels pooled over the whole set, as
    PASCAL VOC and Cityscapes count), pixel accuracy, and every class's IoU as ``iou_<index>``."""
    scores = list(scores)
    classes = np.shape(scores[0])[-1]
    counts = confusion(masks, [np.argmax(s, axis=-1) for s in scores], classes)
    iou = class_iou(counts)
    per_class = {f"iou_{c}": float(v) for c, v in enumerate(iou) if np.isfinite(v)}
    return {"miou": float(np.nanmean(iou)), "pixel_accuracy": float(np.trace(counts) / max(1, counts.sum())),
            **per_class}  # fmt: skip


SNR_CAP_DB = 200.0  # identical outputs: the SNR is infinite, which JSON cannot hold


def flat(output) -> np.ndarray:
    """One sample's output as one vector: a model with several outputs has them joined in the order of their
    names (a converter may reorder outputs; the names it keeps)."""
    if isinstance(output, dict):
        return np.concatenate([np.ravel(output[k]) for k in sorted(output)])
    return np.ravel(output)


CHANNEL_FLOOR_DB = 20.0  # a channel whose PSNR on its own range is below this has lost what it carried


def channel_axis(shape: tuple) -> Optional[int]:
    """The axis of one sample's output (no batch) whose slices are its channels: the shortest one, the last of
    equals: C of H×W×C and of C×H×W, the 84 rows of an 84×8400 detector head, each value of a vector."""
    if not shape:
        return None
    return len(shape) - 1 - int(np.argmin(shape[::-1]))


def _channels(sample) -> list:
    """One sample's outputs (a dict by name, or one array) as channel-major 2-D arrays, in the order of names."""
    arrays = [sample[k] for k in sorted(sample)] if isinstance(sample, dict) else [sample]
    parts = []
    for a in arrays:
        a = np.asarray(a, dtype=np.float64)
        axis = channel_axis(a.shape)
        parts.append(a.reshape(1, 1) if axis is None else np.moveaxis(a, axis, 0).reshape(a.shape[axis], -1))
    return parts


def channel_fidelity(reference: list, outputs: list) -> dict:
    """Each output channel's PSNR on its own range (the reference's max - min over every sample), so that a
    small-range part of a tensor (class scores beside pixel coordinates) cannot hide behind a large one:
    ``channel_psnr_min`` and its ``worst_channel`` (the index over every output's channels, outputs in name
    order), ``channel_psnr_mean``, and ``channels_ok``, the share of channels at ``CHANNEL_FLOOR_DB`` or
    above. Channels the reference holds constant are left out (they have no range to measure on)."""
    sums = None  # per output: [low, high, squared error] per channel, and the values seen per channel
    for ref, out in zip(reference, outputs):
        refs, outs = _channels(ref), _channels(out)
        shapes = [r.shape for r in refs]
        if shapes != [o.shape for o in outs] or (sums and [len(x[0]) for x in sums] != [s[0] for s in shapes]):
            return {}  # free output sizes that differ: the whole-output figures only
        if sums is None:
            sums = [[r.min(axis=1), r.max(axis=1), np.zeros(len(r)), 0] for r in refs]
        for acc, r, o in zip(sums, refs, outs):
            acc[0], acc[1] = np.minimum(acc[0], r.min(axis=1)), np.maximum(acc[1], r.max(axis=1))
            acc[2] = acc[2] + ((o - r) ** 2).sum(axis=1)
            acc[3] += r.shape[1]
    if not sums:
        return {}
    span = np.concatenate([acc[1] - acc[0] for acc in sums])
    mse = np.concatenate([acc[2] / max(acc[3], 1) for acc in sums])
    varied = np.flatnonzero(span > 0)
    if varied.size == 0:
        return {}
    with np.errstate(divide="ignore"):
        psnr = np.minimum(SNR_CAP_DB, 10 * np.log10(span[varied] ** 2 / mse[varied]))
    worst = int(np.argmin(psnr))
    return {"channel_psnr_min": float(psnr[worst]), "worst_channel": int(varied[worst]),
            "channel_psnr_mean": float(psnr.mean()), "channels_ok": float(np.mean(psnr >= CHANNEL_FLOOR_DB))}


def fidelity(reference: list, outputs: list) -> dict:
    """How closely ``outputs`` follow ``reference`` (a variant's against the original's, on the same inputs),
    sample by sample: SNR in dB (signal power over error power, all samples; capped at 200 dB), the mean cosine
    similarity, the largest absolute error, and top-1 agreement where the model has one output and it is a
    score vector. A sample of a model with several outputs is a dict of them."""
    if len(reference) != len(outputs):
        raise ValueError(f"{len(outputs)} outputs for {len(reference)} reference outputs")
    signal = error = 0.0
    cosines, worst = [], 0.0
    several = any(isinstance(r, dict) for r in reference) or any(isinstance(o, dict) for o in outputs)
    for ref, out in zip(reference, outputs):
        ref = flat(ref).astype(np.float64)
        out = flat(out).astype(np.float64)
        if ref.shape != out.shape:
            raise ValueError(f"output of {out.size} values for a reference of {ref.size}")
        diff = out - ref
        signal += float(ref @ ref)
        error += float(diff @ diff)
        worst = max(worst, float(np.abs(diff).max(initial=0.0)))
        norms = float(np.linalg.norm(ref) * np.linalg.norm(out))
        cosines.append(float(ref @ out) / norms if norms else float(np.array_equal(ref, out)))
    snr = SNR_CAP_DB if error == 0 else min(SNR_CAP_DB, 10 * np.log10(max(signal, 1e-300) / error))
    result = {"snr_db": float(snr), "cosine": float(np.mean(cosines)), "max_abs_error": worst}
    shapes = {np.shape(r) for r in reference} if not several else set()
    if len(shapes) == 1 and len(next(iter(shapes))) == 1 and next(iter(shapes))[0] >= 2:  # score vectors
        result["top1_agreement"] = float(np.mean([np.argmax(r) == np.argmax(o) for r, o in zip(reference, outputs)]))
    return {**result, **channel_fidelity(reference, outputs)}


def psnr_deltas(reference: list, outputs: list, targets: list) -> np.ndarray:
    """Per sample (image, or sequence), the PSNR of ``outputs`` minus that of ``reference`` against the clean
    ``targets`` (dB; negative is worse), capped at ±``SNR_CAP_DB`` (a perfect sample's PSNR is infinite)."""
    deltas = np.array([psnr(np.ravel(c), flat(o)) - psnr(np.ravel(c), flat(r))
                       for c, r, o in zip(targets, reference, outputs)])  # fmt: skip
    return np.clip(deltas, -SNR_CAP_DB, SNR_CAP_DB)
