"""A model's inputs from the user's data, for any model: what the model takes is read from its description
(``runtime.metadata.ModelMetadata``: a file's, or ``describe_keras`` of a Keras model).

The data is a folder of pictures (labelled by one sub-folder per class, or by
the one CSV of ``file,label`` rows beside them), such a CSV, an ``.npz`` with
one array per input name (labels as ``y``), or an ``.npy`` of model inputs
(labels from an ``.npy`` of class indices). Labels are class indices or
names; the classes are the model's (as many as it scores, named as its file
names them), not only those the labels happen to use. With
no data, a model that takes one picture gets the embedded MNIST evaluation
digits (resized, grey or RGB), unlabelled.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from exporters.tfkeras import output_names
from runtime.errors import UserError
from runtime.feeds import stacked, state_pairs
from runtime.images import IMAGE_SUFFIXES, from_pixels, load_image, read_npy, read_npz, to_layout
from runtime.metadata import ModelMetadata, Normalization, TensorSpec

HELD_OUT = 100  # taken from the evaluation data for calibration when no --data is given


def describe_keras(model, normalization: Normalization, task: str = "generic") -> ModelMetadata:
    """What a Keras model takes and returns, as the runtime describes a model file."""

    def spec(tensor, name: str) -> TensorSpec:
        return TensorSpec(name=name, shape=tuple(tensor.shape), dtype="float32")

    return ModelMetadata(task=task, format="keras", precision="float32", normalization=normalization,
                         inputs=tuple(spec(t, t.name.split(":")[0]) for t in model.inputs),
                         outputs=tuple(spec(t, n) for t, n in zip(model.outputs, output_names(model))))  # fmt: skip


def _load(meta: ModelMetadata, files: list, where: Path) -> np.ndarray:
    keep = None in (meta.image_shape + (None,))[:2]
    x = [to_layout(load_image(f, meta, keep_size=keep)[None], meta)[0] for f in files]
    if len({a.shape for a in x}) > 1:
        raise UserError(f"{where}: the pictures have different sizes and the model's is free; resize them alike")
    return np.stack(x)


def _pictures(meta: ModelMetadata, folder: Path) -> tuple[np.ndarray, Optional[np.ndarray], Optional[tuple]]:
    """Model inputs from a folder of pictures; labels from class sub-folders, or from the one CSV of
    ``file,label`` rows in a flat folder, if it has them."""
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".") and
                     any(f.suffix.lower() in IMAGE_SUFFIXES for f in p.iterdir()))  # not a run folder beside them
    listings = sorted(folder.glob("*.csv"))
    if not classes and len(listings) == 1:
        return _listed(meta, listings[0])
    files, y = [], []
    for index, sub in enumerate(classes or [folder]):
        found = sorted(f for f in sub.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        files += found
        y += [index] * len(found)
    if not files:
        raise UserError(f"{folder}: no pictures ({', '.join(IMAGE_SUFFIXES)}) in it or in its sub-folders")
    labels = tuple(c.name for c in classes) if classes else None
    return _load(meta, files, folder), (np.asarray(y) if classes else None), labels


def _listed(meta: ModelMetadata, listing: Path) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Pictures and labels from a CSV of ``file,label`` rows: a label is a class index, or a class name (of
    the model's own class names when its file has them)."""
    from .photos import list_csv

    found = list_csv(listing)
    y, names = found.y, found.classes
    if meta.labels and not all(n.isdigit() for n in names):
        unknown = sorted(set(names) - set(meta.labels))
        if unknown:
            raise UserError(f"{listing}: label {unknown[0]!r} is none of the model's classes "
                            f"({', '.join(meta.labels[:8])}{', …' * (len(meta.labels) > 8)})")  # fmt: skip
        y = np.asarray([meta.labels.index(names[i]) for i in y])
        names = meta.labels
    elif all(n.isdigit() for n in names):
        names = class_names(meta, y, listing)
    return _load(meta, list(found.files), listing), y, names


def class_names(meta: ModelMetadata, y: np.ndarray, where: Path) -> tuple:
    """The names of the classes integer labels ``y`` index: the model's own (``.tflite`` metadata, edgedl's
    record), otherwise numbered, as many as the model scores (not as many as the labels happen to use)."""
    scores = meta.outputs[0].shape[-1] if meta.outputs[0].shape else None
    known = len(meta.labels) if meta.labels else scores
    y = np.asarray(y)
    numeric = np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0)
    if y.ndim != 1 or not numeric:
        raise UserError(f"{where}: labels must be one class index per sample; got an array of shape {y.shape}, "
                        f"{y.dtype}")  # fmt: skip
    if len(y) and (y.min() < 0 or (known and y.max() >= known)):
        raise UserError(f"{where}: label {int(y.max() if y.min() >= 0 else y.min())} is outside the model's "
                        f"{known} classes (0 to {known - 1})")  # fmt: skip
    if meta.labels:
        return tuple(meta.labels)
    return tuple(str(i) for i in range(known or int(y.max()) + 1))


def _embedded(meta: ModelMetadata, what: str) -> tuple[np.ndarray, None, None]:
    from .datasets import mnist_default

    _, ev = mnist_default()
    if None in (meta.image_shape + (None,))[:2]:
        raise UserError(f"{what} takes pictures of any size: give --eval-data (a folder of pictures)")
    x = [from_pixels(img * 255.0, meta) for img in ev.x[:1000]]
    return to_layout(np.stack(x), meta), None, None


def model_inputs(meta: ModelMetadata, what: str, data: Optional[Path], labels: Optional[Path] = None):
    """(inputs, labels or None, class names or None) for the model ``meta`` describes (``what`` names it in
    messages) from ``data`` (see the module's text), with the labels of ``labels`` (an ``.npy`` of class
    indices, one per sample) when given. Several inputs come as a dict by input name."""
    x, y, names = _inputs(meta, what, data)
    if labels is not None:
        if y is not None:
            raise UserError(f"{data} has labels of its own; drop --eval-labels")
        y = _indices(read_npy(Path(labels)))
        if len(y) != count(x):
            raise UserError(f"{labels}: {len(y)} labels for {count(x)} inputs; give one per input")
    if y is not None and names is None:
        names = class_names(meta, y, Path(labels or data))
    return x, (None if y is None else np.asarray(y).astype(np.int64)), names


def _indices(y: np.ndarray) -> np.ndarray:
    """Class indices from labels as users keep them: (N,), (N, 1), or one-hot (N, classes)."""
    if y.ndim == 2 and y.shape[1] == 1:
        return y[:, 0]
    if y.ndim == 2 and np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1):
        return y.argmax(axis=1)
    return y


def _inputs(meta: ModelMetadata, what: str, data: Optional[Path]):
    names = [s.name for s in meta.inputs]
    one_picture = meta.image_input is not None and len(meta.inputs) == 1
    if data is None:
        if not one_picture:
            raise UserError(f"{what} does not take one picture: give --eval-data FILE.npz with one array per input "
                            f"name ({', '.join(names)})")  # fmt: skip
        return _embedded(meta, what)
    data = Path(data)
    if data.is_dir():
        if not one_picture:
            raise UserError(f"{data}: {what} does not take one picture; give an .npz with one array per input name "
                            f"({', '.join(names)})")  # fmt: skip
        return _pictures(meta, data)
    if data.suffix.lower() == ".csv":
        if not one_picture:
            raise UserError(f"{data}: {what} does not take one picture; give an .npz with one array per input name "
                            f"({', '.join(names)})")  # fmt: skip
        return _listed(meta, data)
    if data.suffix.lower() == ".npy":
        if len(names) > 1:
            raise UserError(f"{data}: {what} has {len(names)} inputs; give an .npz with one array per input name "
                            f"({', '.join(names)})")  # fmt: skip
        dtype = meta.inputs[0].dtype  # token ids stay integers; pictures and signals are float32
        return read_npy(data).astype(np.float32 if dtype.startswith("float") else dtype, copy=False), None, None
    if data.suffix.lower() == ".npz":
        arrays = read_npz(data)  # whole inputs (a scalar, a state) once or per sample: ``runtime.feeds.stacked``
        x = stacked(meta, {n: arrays[n] for n in names if n in arrays}, str(data), tuple(state_pairs(meta)))
        y = arrays.get("y")
        return (x if len(x) > 1 else x[names[0]]), (None if y is None else _indices(y)), None
    raise UserError(f"{data}: give a folder of pictures (class sub-folders, or a CSV of file,label rows beside "
                    "them), a CSV of file,label rows, an .npz (one array per input name, labels as y) or an .npy")


def save_eval(path: Path, x, name: str, y=None, labels=None) -> None:
    """The evaluation set every variant is measured on: labelled pictures (``x``, ``y``, ``labels``, task
    classification), or the inputs alone by input name (``name`` for a one-input model's array)."""
    from runtime.runfolder import write_eval

    if y is not None:
        write_eval(path, {"x": x, "y": y, "labels": np.array(labels)}, "classification")
    else:
        write_eval(path, x if isinstance(x, dict) else {name: x})


def count(x) -> int:
    return len(next(iter(x.values()))) if isinstance(x, dict) else len(x)


def take(x, n: int):
    """The first ``n`` samples of an array, or of every array of a dict."""
    return {k: v[:n] for k, v in x.items()} if isinstance(x, dict) else x[:n]


def drop(x, n: int):
    """All but the first ``n`` samples."""
    return {k: v[n:] for k, v in x.items()} if isinstance(x, dict) else x[n:]


def held_out(x, log) -> tuple:
    """(calibration, evaluation): the first inputs calibrate and are left out of the evaluation."""
    held = min(HELD_OUT, count(x) // 5)
    if held == 0:
        raise UserError(f"{count(x)} evaluation inputs leave none to calibrate with; give more, or --data")
    log(f"data: calibrating on the first {held} evaluation inputs, left out of the evaluation")
    return take(x, held), drop(x, held)
