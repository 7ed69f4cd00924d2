"""The data of the tasks made from the embedded MNIST digits: canvases with boxes (detection) and with a class
per pixel (segmentation), and classes kept apart for verification (embeddings). ``tasks.prepare`` calls
these through the host's task registry."""
from __future__ import annotations

import numpy as np

from runtime.errors import UserError

from ..data import datasets
from .prepared import CALIBRATION_SAMPLES, CHECK_SAMPLES, Prepared, content_hash

SEGMENTATION_TRAIN = 8000  # canvases built from the training digits
SEGMENTATION_EVAL = 300  # canvases built from the evaluation digits (their scores: 300×64×64×11 floats, 54 MB)


def segmentation(data, eval_data, image_shape: tuple, seed: int, reading=None) -> Prepared:
    """Canvases of 1–3 embedded MNIST digits at sides of 20–36 px, a class for every pixel (``canvases``):
    training canvases from the training digits, evaluation canvases from the evaluation digits."""
    from ..data.canvases import digit_canvases, mask_labels

    if data is not None or eval_data is not None:
        raise UserError("segmentation trains on canvases made from the embedded MNIST digits; drop --data/--eval-data")
    if len(image_shape) != 3 or image_shape[0] is None or image_shape[0] != image_shape[1]:
        raise UserError(f"segmentation canvases are square; the model takes {image_shape}")
    train, ev = datasets.mnist_default()
    size = int(image_shape[0])
    count = SEGMENTATION_TRAIN if reading is None else reading.limited(SEGMENTATION_TRAIN)
    fit = digit_canvases(train.x, train.y, count, size, np.random.default_rng(seed))
    test = digit_canvases(ev.x, ev.y, SEGMENTATION_EVAL, size, np.random.default_rng(seed + 1))
    labels = mask_labels(train.labels)
    what = f"{size}×{size} canvases of 1–3 digits"
    return Prepared(
        task="segmentation",
        fit=datasets.Dataset(fit.images, fit.masks, labels, f"{count} {what} from {train.source}"),
        validation=datasets.Dataset(test.images, test.masks, labels, f"{SEGMENTATION_EVAL} {what} from {ev.source}"),
        calibration=fit.images[:CALIBRATION_SAMPLES],
        check=test.images[:CHECK_SAMPLES],
        labels=labels,
        eval_arrays={"x": test.images, "y": test.masks, "labels": np.array(labels)},
        train_source=f"{count} {what} from {train.source}",
        eval_source=f"{SEGMENTATION_EVAL} {what} from {ev.source}",
        eval_size=SEGMENTATION_EVAL,
        fingerprint=content_hash(fit.images, fit.masks, test.images, test.masks, seed),
    )


DETECTION_EVAL = 500  # canvases built from the evaluation digits


def detection(data, eval_data, image_shape: tuple, seed: int, reading=None) -> Prepared:
    """Canvases of 1–5 embedded MNIST digits at sides of 20–36 px with their boxes and classes
    (``canvases``), and the detector's training targets (``detection.targets``)."""
    from ..data.canvases import digit_canvases
    from .detection import targets

    if data is not None or eval_data is not None:
        raise UserError("detection trains on canvases made from the embedded MNIST digits; drop --data/--eval-data")
    if len(image_shape) != 3 or image_shape[0] is None or image_shape[0] != image_shape[1]:
        raise UserError(f"detection canvases are square; the model takes {image_shape}")
    train, ev = datasets.mnist_default()
    size, stride = int(image_shape[0]), 4
    count = SEGMENTATION_TRAIN if reading is None else reading.limited(SEGMENTATION_TRAIN)
    fit = digit_canvases(train.x, train.y, count, size, np.random.default_rng(seed), per_canvas=(1, 5))
    test = digit_canvases(ev.x, ev.y, DETECTION_EVAL, size, np.random.default_rng(seed + 1), per_canvas=(1, 5))
    classes = len(train.labels)
    what = f"{size}×{size} canvases of 1–5 digits"
    owner = np.concatenate([np.full(len(b), i) for i, b in enumerate(test.boxes)])
    return Prepared(
        task="detection",
        fit=datasets.Dataset(fit.images, targets(fit.boxes, fit.classes, size, stride, classes), train.labels,
                             f"{len(fit.images)} {what} from {train.source}"),  # fmt: skip
        validation=datasets.Dataset(test.images, targets(test.boxes, test.classes, size, stride, classes),
                                    train.labels, f"{DETECTION_EVAL} {what} from {ev.source}"),  # fmt: skip
        calibration=fit.images[:CALIBRATION_SAMPLES],
        check=test.images[:CHECK_SAMPLES],
        labels=train.labels,
        eval_arrays={"x": test.images, "boxes": np.concatenate(test.boxes), "box_classes": np.concatenate(test.classes),
                     "box_image": owner, "labels": np.array(train.labels)},  # fmt: skip
        train_source=f"{len(fit.images)} {what} from {train.source}",
        eval_source=f"{DETECTION_EVAL} {what} from {ev.source}",
        eval_size=DETECTION_EVAL,
        fingerprint=content_hash(fit.images, test.images, np.concatenate(test.boxes), seed),
    )


SEEN_CLASSES = 7  # an embedder trains on digits 0–6 and is evaluated on pairs of 7–9, which it never saw
THRESHOLD_FRACTION = 0.1  # of the training digits, kept out to choose the stored threshold on


def embedding(data, eval_data, image_shape: tuple, batch_size: int, seed: int) -> Prepared:
    """The embedded MNIST split by class: digits 0–6 of the training part to train on, in batches of two
    views of each picture (``embedding.two_view_batches``; a tenth held out for the threshold), digits 7–9
    of the evaluation part to verify on."""
    from .embedding import two_view_batches

    if data is not None or eval_data is not None:
        raise UserError("the embedder trains on the embedded MNIST digits 0–6 and is verified on 7–9; "
                        "drop --data/--eval-data")  # fmt: skip
    train, ev = datasets.mnist_default()
    seen = np.flatnonzero(train.y < SEEN_CLASSES)
    seen = seen[np.random.default_rng(seed).permutation(len(seen))]
    cut = int(len(seen) * THRESHOLD_FRACTION)
    fit, held = train.take(np.sort(seen[cut:])), train.take(np.sort(seen[:cut]))
    unseen = ev.take(np.flatnonzero(ev.y >= SEEN_CLASSES), f"{ev.source}, digits {SEEN_CLASSES}–9")
    return Prepared(
        task="embedding",
        fit=two_view_batches(fit.x, fit.y, batch_size, seed),
        validation=unseen,
        calibration=fit.x[:CALIBRATION_SAMPLES],
        check=unseen.x[:CHECK_SAMPLES],
        labels=None,
        eval_arrays={"x": unseen.x, "y": unseen.y},
        train_source=f"{len(fit)} digits 0–{SEEN_CLASSES - 1} of {train.source} ({len(held)} more held out for "
                     "the threshold)",  # fmt: skip
        eval_source=f"every pair of {len(unseen)} digits {SEEN_CLASSES}–9 of {ev.source}, unseen in training",
        eval_size=len(unseen),
        fingerprint=content_hash(fit.x, fit.y, unseen.x, unseen.y, seed),
        held_out=held,
    )
