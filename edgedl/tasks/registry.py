"""The host's half of each task: its loss, and what it needs from its data (training input, calibration
and check inputs, the saved evaluation set).

The device's half (metric, scoring, decoding, budget) is ``runtime.tasks``; a
task is an entry in both registries, and nothing else compares task names.
The pipeline asks ``prepare(task, ...)`` and stays the same for every task;
the benchmarks read ``eval.npz`` without knowing where it came from.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from runtime.errors import UserError
from runtime.tasks import get_task

from ..data import datasets, denoising
from .prepared import CALIBRATION_SAMPLES, CHECK_SAMPLES, Prepared, content_hash

DENOISE_PATCH = 40  # DnCNN's training patch size
DENOISE_PATCHES_PER_IMAGE = 32


def classification(data, eval_data, image_shape: tuple, seed: int, reading=None) -> Prepared:
    """Labelled pictures; read from files, the evaluation set keeps their 8-bit pixels and the scale and
    offset that make them the model's inputs (a quarter of float32's size)."""
    reading = reading or datasets.Reading()
    train, ev = datasets.train_eval(data, eval_data, image_shape, seed, reading)
    plain = train.x.augmented(None) if hasattr(train.x, "augmented") else train.x  # calibrated as they are
    if hasattr(ev.x, "pixels"):
        pictures = {"x": ev.x.pixels(), "x_scale": np.float32(ev.x.scale).reshape(-1),
                    "x_offset": np.float32(ev.x.offset).reshape(-1)}  # fmt: skip
    else:
        pictures = {"x": ev.x}
    return Prepared(
        task="classification",
        fit=train,
        validation=ev,
        calibration=np.asarray(plain[:CALIBRATION_SAMPLES]),
        check=np.asarray(ev.x[:CHECK_SAMPLES]),
        labels=train.labels,
        eval_arrays={**pictures, "y": ev.y, "labels": np.array(train.labels)},
        train_source=train.source,
        eval_source=ev.source,
        eval_size=len(ev),
        fingerprint=content_hash(train.x, train.y, ev.x, ev.y, train.labels),
        resize=reading.resize,
    )


def denoising_task(data, eval_data, noise: denoising.Noise, batch_size: int, seed: int, reading=None) -> Prepared:
    train, ev = denoising.train_eval(data, eval_data)
    if reading is not None and reading.limited(len(train)) < len(train):
        train = denoising.ImageSet(train.images[: reading.limit], f"{train.source}, the first {reading.limit}",
                                   train.names[: reading.limit])  # fmt: skip
    small = all(img.shape[:2] == train.images[0].shape[:2] for img in train.images) and \
        train.images[0].shape[0] <= DENOISE_PATCH  # fmt: skip
    patch = train.images[0].shape[0] if small else DENOISE_PATCH
    per_image = 1 if small else DENOISE_PATCHES_PER_IMAGE
    batches = denoising.patch_batches(train, noise, patch, per_image, batch_size, seed)
    noisy, clean = denoising.eval_pairs(ev, noise.eval_sigma, seed)
    uniform = all(n.shape == noisy[0].shape for n in noisy)
    sigma_text = f"σ={noise.sigma:g}" if noise.sigma is not None else f"blind σ in {denoising.BLIND_RANGE}"
    arrays = {"n": np.array(len(noisy)), "sigma": np.array(noise.eval_sigma)}
    if ev.names:  # the report names the image a variant harms most
        arrays["names"] = np.array(ev.names)
    for i, (n, c) in enumerate(zip(noisy, clean)):
        arrays[f"noisy_{i}"], arrays[f"clean_{i}"] = n, c
    return Prepared(
        task="denoising",
        fit=batches,
        validation=(np.stack(noisy), np.stack(clean)) if uniform else None,
        calibration=batches.noisy[:CALIBRATION_SAMPLES],
        check=batches.noisy[:CHECK_SAMPLES],
        labels=None,
        eval_arrays=arrays,
        train_source=f"{train.source} ({sigma_text})",
        eval_source=f"{ev.source} (σ={noise.eval_sigma:g}, 8-bit noisy)",
        eval_size=len(noisy),
        fingerprint=content_hash(train.images, ev.images, repr(noise), seed),
    )


SEQUENCE_EVAL = 500  # sequences built from the evaluation digits


def sequence_task(image_shape: tuple, noise: denoising.Noise, batch_size: int, seed: int,
                  reading=None) -> Prepared:  # fmt: skip
    """Moving-digit sequences from the embedded MNIST split (training digits / evaluation digits)."""
    frames, size = image_shape[0], image_shape[1]
    train, ev = datasets.mnist_default()
    if reading is not None:
        train = train.take(slice(0, reading.limited(len(train))))
    batches = denoising.sequence_batches(train.x, noise, frames, size, batch_size, seed)
    clean = denoising.moving_digit_sequences(ev.x[:SEQUENCE_EVAL], frames, size, np.random.default_rng(seed + 1))
    noisy = denoising.add_noise(clean, noise.eval_sigma, np.random.default_rng(seed + 2))
    arrays = {"n": np.array(len(noisy)), "sigma": np.array(noise.eval_sigma)}
    for i in range(len(noisy)):
        arrays[f"noisy_{i}"], arrays[f"clean_{i}"] = noisy[i], clean[i]
    sigma_text = f"σ={noise.sigma:g}" if noise.sigma is not None else f"blind σ in {denoising.BLIND_RANGE}"
    return Prepared(
        task="denoising",
        fit=batches,
        validation=(noisy, clean),
        calibration=batches.noisy[:CALIBRATION_SAMPLES // 10],
        check=batches.noisy[:8],
        labels=None,
        eval_arrays=arrays,
        train_source=f"{len(train)} moving-digit sequences of {frames}×{size}×{size} from {train.source} ({sigma_text})",
        eval_source=f"sequences of {ev.source} (σ={noise.eval_sigma:g}, 8-bit noisy)",
        eval_size=len(noisy),
        fingerprint=content_hash(train.x, ev.x[:SEQUENCE_EVAL], repr(noise), frames, size, seed),
    )


def with_labels(prepared: Prepared, labels: tuple) -> Prepared:
    """The same data naming other classes (numbered labels widened to the classes a model scores)."""
    from dataclasses import replace

    return replace(prepared, labels=labels, eval_arrays={**prepared.eval_arrays, "labels": np.array(labels)})


def normalized(prepared: Prepared, norm) -> Prepared:
    """This data as a model under ``norm`` takes it (classification images; denoisers keep [0, 1])."""
    from dataclasses import replace

    from ..data.preprocessing import DEFAULT, to_model_inputs

    if norm == DEFAULT or not host_task(prepared.task).normalized_inputs:
        return prepared

    def mapped(ds):
        if hasattr(ds.x, "normalized"):  # pictures read from files: pixel * scale + offset as they are decoded
            return replace(ds, x=ds.x.normalized(norm.scale, norm.offset))
        return replace(ds, x=to_model_inputs(ds.x, norm))

    arrays = prepared.eval_arrays
    if "x_scale" in arrays:  # 8-bit pixels kept: the evaluation set's scale and offset are the model's
        arrays = {**arrays, "x_scale": np.float32(norm.scale), "x_offset": np.float32(norm.offset)}
    else:
        arrays = {**arrays, "x": to_model_inputs(arrays["x"], norm)}
    return replace(prepared, fit=mapped(prepared.fit), validation=mapped(prepared.validation),
                   calibration=to_model_inputs(prepared.calibration, norm),
                   check=to_model_inputs(prepared.check, norm), eval_arrays=arrays)


def teacher_batches(teacher, inputs, batch_size: int, seed: int):
    """A Keras ``Sequence`` of (inputs, the teacher's outputs) batches, shuffled every epoch: the targets a
    model without labels is fine-tuned (or a student distilled) towards. ``inputs`` is an array, or a dict
    of arrays by input name."""
    from exporters.tfkeras import keras

    from ..data.model_data import count

    n = count(inputs)

    class TeacherBatches(keras().utils.Sequence):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(n)

        def __len__(self):
            return max(1, -(-n // batch_size))

        def __getitem__(self, i):
            rows = np.sort(self.order[i * batch_size : (i + 1) * batch_size])
            x = {k: v[rows] for k, v in inputs.items()} if isinstance(inputs, dict) else inputs[rows]
            y = teacher(x, training=False)
            return x, ([v.numpy() for v in y] if isinstance(y, (list, tuple)) else y.numpy())

        def on_epoch_end(self):
            self.order = self.rng.permutation(n)

    return TeacherBatches()


def generic(teacher, meta, what: str, data, eval_data, batch_size: int, seed: int, log) -> Prepared:
    """A model that is neither a classifier nor a denoiser (several inputs or outputs, boxes, masks): its
    inputs from the user's data (``edgedl.data.model_data``), no targets. Variants are compared with the original
    (fidelity); compression fine-tunes towards the original's own outputs on the training inputs (``--data``,
    or the first evaluation inputs, then left out of the evaluation)."""
    from ..data.model_data import count, held_out, model_inputs, take

    x = model_inputs(meta, what, eval_data)[0]
    train = model_inputs(meta, what, data)[0] if data is not None else None
    if train is None:
        train, x = held_out(x, log)
    arrays = x if isinstance(x, dict) else {meta.inputs[0].name: x}
    parts = [v for a in (train, x) for v in (a.values() if isinstance(a, dict) else [a])]
    return Prepared(
        task="generic",
        fit=teacher_batches(teacher, train, batch_size, seed),
        validation=None,
        calibration=take(train, CALIBRATION_SAMPLES),
        check=take(x, CHECK_SAMPLES),
        labels=None,
        eval_arrays=arrays,
        train_source=str(data) if data is not None else f"the first inputs of {eval_data or 'the embedded digits'}",
        eval_source=str(eval_data or "the embedded MNIST digits"),
        eval_size=count(x),
        fingerprint=content_hash(*parts),
    )


def prepare(task: str, data, eval_data, image_shape: tuple, noise: denoising.Noise, batch_size: int,
            seed: int, reading=None) -> Prepared:  # fmt: skip
    """The data of ``task``: labelled images for a classifier, noisy/clean pairs (or sequences) for a
    denoiser. A generic model's data comes from ``generic``, which needs the model itself."""
    prepare_data = host_task(task).prepare
    if prepare_data is None:
        raise UserError(f"task {task!r} has no data of its own; its inputs come from the model ('generic')")
    return prepare_data(data, eval_data, image_shape, noise, batch_size, seed, reading)


def _denoising(data, eval_data, image_shape: tuple, noise: denoising.Noise, batch_size: int, seed: int,
               reading=None) -> Prepared:  # fmt: skip
    """Noisy/clean image pairs, or noisy/clean sequences for a model whose input is a sequence of frames."""
    if len(image_shape) == 4:
        if data is not None or eval_data is not None:
            raise UserError("sequence denoisers train on the embedded moving-digit sequences; drop --data/--eval-data")
        return sequence_task(image_shape, noise, batch_size, seed, reading)
    return denoising_task(data, eval_data, noise, batch_size, seed, reading)


def _classification(data, eval_data, image_shape: tuple, noise, batch_size: int, seed: int,
                    reading=None) -> Prepared:  # fmt: skip
    return classification(data, eval_data, image_shape, seed, reading)


def _segmentation(data, eval_data, image_shape: tuple, noise, batch_size: int, seed: int,
                  reading=None) -> Prepared:  # fmt: skip
    from .digits import segmentation

    return segmentation(data, eval_data, image_shape, seed, reading)


def _detection(data, eval_data, image_shape: tuple, noise, batch_size: int, seed: int,
               reading=None) -> Prepared:  # fmt: skip
    from .digits import detection

    return detection(data, eval_data, image_shape, seed, reading)


def _embedding(data, eval_data, image_shape: tuple, noise, batch_size: int, seed: int,
               reading=None) -> Prepared:  # fmt: skip
    from .digits import embedding

    return embedding(data, eval_data, image_shape, batch_size, seed)


def _contrastive_loss(model):
    from .embedding import contrastive_loss

    return contrastive_loss()


def _threshold(model, prepared: Prepared) -> dict:
    from .embedding import stored_threshold

    return stored_threshold(model, prepared.held_out.x, prepared.held_out.y)


def _detection_parameters(model, prepared: Prepared) -> dict:
    from runtime.detect import decoding_parameters

    return decoding_parameters()


def _centernet_loss(model):
    from .detection import centernet_loss

    return centernet_loss(int(model.outputs[0].shape[-1]) - 4)


@dataclass(frozen=True)
class HostTask:
    """What the host trains a task's models with; ``runtime.tasks.Task`` holds the rest."""

    name: str
    loss: object  # a Keras loss, or model -> loss; generic: fine-tuned towards the original's outputs alike
    keras_metrics: tuple = ()
    # (data, eval_data, image_shape, noise, batch_size, seed, reading) -> Prepared; None: its data comes with
    # the model
    prepare: Optional[Callable] = None
    normalized_inputs: bool = False  # its inputs take the model's normalization (else they stay in [0, 1])
    noisy: bool = False  # trained on noise the run draws: the noise is part of what its model was trained on
    # (trained model, Prepared) -> the decoding parameters its artifacts carry (runtime.metadata's decoding)
    decoding: Optional[Callable] = None
    # How a student learns from a model of this task (``compress``'s distillers): "labels" (the labels and the
    # teacher's softened scores), "clean" (a denoiser's clean images and the teacher's), "outputs" (the
    # teacher's outputs alone); None: distillation does not apply.
    distiller: Optional[str] = None
    student_from_labels: bool = False  # a student trained on the targets alone: distillation's control
    labelled: bool = False  # labels to fine-tune on without a teacher (the search's no-teacher control)


HOST_TASKS = {
    task.name: task
    for task in (
        HostTask("classification", "sparse_categorical_crossentropy", ("accuracy",), prepare=_classification,
                 normalized_inputs=True, distiller="labels", student_from_labels=True, labelled=True),  # fmt: skip
        HostTask("denoising", "mse", prepare=_denoising, noisy=True, distiller="clean", student_from_labels=True),
        # Per pixel, as the classifier per image; inputs in [0, 1] (the canvases are made, not photographed).
        HostTask("segmentation", "sparse_categorical_crossentropy", ("accuracy",),
                 prepare=_segmentation),
        HostTask("detection", _centernet_loss, prepare=_detection, decoding=_detection_parameters),
        HostTask("embedding", _contrastive_loss, prepare=_embedding, decoding=_threshold),
        HostTask("generic", "mse", distiller="outputs"),
    )
}


def host_task(name: str) -> HostTask:
    get_task(name)  # an unknown name is refused in the runtime's words
    try:
        return HOST_TASKS[name]
    except KeyError:
        raise UserError(f"task {name!r} is known to the runtime but edgedl cannot train it") from None


def task_of(keras_model) -> str:
    """The task of a user's model, from its shape: one input and a vector of scores (classification), one
    input and an output of the input's shape (denoising), anything else (several inputs or outputs, boxes,
    masks, embeddings) generic: measured by its fidelity to the original."""
    if len(keras_model.inputs) == 1 and len(keras_model.outputs) == 1:
        given, made = tuple(keras_model.inputs[0].shape[1:]), tuple(keras_model.outputs[0].shape[1:])
        if len(made) == 1:
            return "classification"
        if len(made) == len(given) and all(a == b or None in (a, b) for a, b in zip(given, made)):
            return "denoising"
    return "generic"
