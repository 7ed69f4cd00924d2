"""The tasks edgedl knows, in one registry that the device side reads (numpy only).

A task says what the rest of edgedl would otherwise decide by comparing its
name: the metric a report ranks variants by and the budget ``select`` allows
by default, how its evaluation set is laid out in an ``eval.npz`` and scored,
the worst of a variant's changes that a mean would hide, what a sample file
of it is called, and whether its first output holds one score per class. How
``edgedl-run`` answers for a task with files of its own is in ``answers``; the
host's half (loss, training data, distiller, recipes) is in ``edgedl/tasks/``.

"generic" is the task of any model edgedl has no targets for (a detector or
embedder made by another tool): it is run as it is and its variants are
ranked by their fidelity to the original.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from . import metrics
from .detect import decode, detection_metrics
from .embed import verification_metrics
from .errors import UserError


@dataclass(frozen=True)
class Task:
    name: str
    metric: Optional[str]  # what variants are ranked by (higher is better); None: their fidelity to the original
    budget: float  # select's default: the most the metric may fall below the original's (points or dB)
    class_scores: bool = False  # output 0 ends in one score per class (per input, or per pixel), named by labels
    # eval.npz arrays -> (inputs, targets); None when the set holds inputs alone
    read_eval: Optional[Callable[[dict], tuple]] = None
    score: Optional[Callable[[list, object], dict]] = None  # (outputs, targets) -> metrics over the set
    tail: Optional[Callable[[list, list, object], dict]] = None  # (original's, variant's, targets) -> worst change
    per_sample: Optional[Callable[[list, list, object, list], dict]] = None  # + sample names -> report fields
    sample_name: Callable[[int, object], str] = lambda i, target: f"{i:02d}.png"  # a bundled sample's file
    tail_metrics: tuple = ()  # what ``tail`` adds to a variant's metrics, the worst first (the report's columns)
    # The tail metric ``select --max-tail-drop`` bounds, and its sign as a loss (a PSNR change is -1).
    tail_loss: Optional[tuple] = None
    # The zoo's benchmark target (``benchmarks.tasks``): (what is shown, the original's least value, the most an
    # int8 variant may lose), in the metric's own unit.
    target: Optional[tuple] = None

    @property
    def scored(self) -> bool:
        """Whether its evaluation sets carry targets to score a model on."""
        return self.read_eval is not None


def _labelled(data: dict) -> tuple:
    """Inputs and labels; inputs kept as 8-bit pixels come with the scale and offset that make them the
    model's (``x_scale``, ``x_offset``: one value, or one per channel)."""
    x = data["x"].astype(np.float32)
    if "x_scale" in data:
        x = x * data["x_scale"].astype(np.float32) + data["x_offset"].astype(np.float32)
    return x, data["y"]


def _pairs(data: dict) -> tuple:
    n = int(data["n"])
    return [data[f"noisy_{i}"] for i in range(n)], [data[f"clean_{i}"] for i in range(n)]


def _classification_tail(reference: list, outputs: list, targets) -> dict:
    """``flips``: the inputs whose top-1 class differs from the original's; ``recall_drop_max``: the
    largest fall of one class's recall (points)."""
    labels = np.asarray(targets).reshape(-1)
    ref = np.array([np.argmax(metrics.flat(r)) for r in reference])
    got = np.array([np.argmax(metrics.flat(o)) for o in outputs])
    drops = [np.mean(ref[labels == c] == c) - np.mean(got[labels == c] == c) for c in np.unique(labels)]
    return {"flips": int(np.sum(ref != got)), "recall_drop_max": float(max(0.0, *drops) * 100.0)}


def _denoising_tail(reference: list, outputs: list, targets) -> dict:
    """The 5th percentile and the minimum of the per-sample PSNR change against the original (dB)."""
    deltas = metrics.psnr_deltas(reference, outputs, targets)
    return {"psnr_delta_p5": float(np.percentile(deltas, 5)), "psnr_delta_min": float(deltas.min())}


def _denoising_per_sample(reference: list, outputs: list, targets, names: list) -> dict:
    """Every sample's PSNR change against the original, and the worst sample named."""
    deltas = metrics.psnr_deltas(reference, outputs, targets)
    return {"psnr_delta_per_image": [round(float(d), 3) for d in deltas],
            "worst_sample": names[int(np.argmin(deltas))]}  # fmt: skip


def _segmentation_tail(reference: list, outputs: list, targets) -> dict:
    """``iou_drop_max``: the largest fall of one class's IoU against the original's (points)."""
    classes = np.shape(reference[0])[-1]
    ious = [metrics.class_iou(metrics.confusion(targets, [np.argmax(s, axis=-1) for s in scores], classes))
            for scores in (reference, outputs)]  # fmt: skip
    drops = np.nan_to_num(ious[0] - ious[1], nan=0.0)
    return {"iou_drop_max": float(max(0.0, drops.max()) * 100.0)}


def _boxes(data: dict) -> tuple:
    """Images, and per image its ground truth: boxes in pixels, classes, and the image's size."""
    x = data["x"].astype(np.float32)
    owner, boxes, classes = data["box_image"], data["boxes"], data["box_classes"]
    truths = [{"boxes": boxes[owner == i], "classes": classes[owner == i], "size": x.shape[1:3]} for i in range(len(x))]
    return x, truths


def _decoded(outputs: list, truths: list) -> tuple:
    classes = np.shape(outputs[0])[-1] - 4
    found = [decode(o, t["size"], classes) for o, t in zip(outputs, truths)]
    return found, [(t["boxes"], t["classes"]) for t in truths], classes


def _detection_score(outputs: list, truths: list) -> dict:
    return detection_metrics(*_decoded(outputs, truths))


def _detection_tail(reference: list, outputs: list, truths: list) -> dict:
    """``ap50_drop_max``: the largest fall of one class's AP@0.5 against the original's (points)."""
    ref, got = _detection_score(reference, truths), _detection_score(outputs, truths)
    drops = [ref[k] - got.get(k, 0.0) for k in ref if k.startswith("ap50_")]
    return {"ap50_drop_max": float(max(0.0, *drops) * 100.0)}


def _denoising_sample_name(i: int, target) -> str:
    return f"{i:02d}_noisy.png" if np.ndim(target) <= 3 else f"{i:02d}_noisy_frames.npy"


TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is registered twice")
    TASKS[task.name] = task
    return task


register_task(Task(
    "classification", metric="accuracy", budget=1.0, class_scores=True,
    read_eval=_labelled,
    score=lambda outputs, targets: {"accuracy": metrics.accuracy(np.asarray(outputs), targets)},
    tail=_classification_tail, tail_metrics=("flips", "recall_drop_max"), tail_loss=("recall_drop_max", 1.0),
    sample_name=lambda i, target: f"{i:02d}_label{int(target)}.png",
))  # fmt: skip
register_task(Task(
    "denoising", metric="psnr", budget=0.5,
    read_eval=_pairs,
    score=lambda outputs, targets: metrics.denoising_metrics(targets, outputs),
    tail=_denoising_tail, per_sample=_denoising_per_sample, tail_metrics=("psnr_delta_min", "psnr_delta_p5"),
    tail_loss=("psnr_delta_min", -1.0),
    sample_name=_denoising_sample_name,
))  # fmt: skip
register_task(Task(
    "segmentation", metric="miou", budget=1.0, class_scores=True,  # a score per class at every pixel
    read_eval=_labelled,  # x: images, y: masks of class indices
    score=lambda outputs, targets: metrics.segmentation_metrics(targets, outputs),
    tail=_segmentation_tail, tail_metrics=("iou_drop_max",), tail_loss=("iou_drop_max", 1.0),
    target=("mIoU", 0.80, 0.010),
))  # fmt: skip
register_task(Task(
    "detection", metric="map50", budget=1.0, class_scores=False,  # its output is a grid, not a score vector
    read_eval=_boxes, score=_detection_score, tail=_detection_tail, tail_metrics=("ap50_drop_max",),
    tail_loss=("ap50_drop_max", 1.0), target=("mAP@0.5", 0.90, 0.010),
))  # fmt: skip
register_task(Task(
    "embedding", metric="roc_auc", budget=1.0,  # verification on classes the model never saw in training
    read_eval=_labelled, score=verification_metrics,
    target=("verification ROC AUC on unseen classes", 0.95, 0.010),
))  # fmt: skip
register_task(Task("generic", metric=None, budget=1.0))


def get_task(name: str) -> Task:
    """The registered task ``name``; an unknown one is refused in one line naming those there are."""
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        raise UserError(f"unknown task {name!r}; edgedl knows {', '.join(TASKS)}") from None


def score(name: str, outputs: list, targets) -> dict:
    """The metrics of task ``name`` for ``outputs`` against the evaluation set's ``targets``."""
    task = get_task(name)
    if task.score is None:
        raise UserError(f"task {name!r} has no metric: its variants are compared by fidelity to the original")
    return task.score(outputs, targets)


def tail(name: str, reference: list, outputs: list, targets) -> dict:
    """The worst of a variant's changes against the original on the same inputs, which a mean hides; {} for
    a task that has none."""
    task = get_task(name)
    return task.tail(reference, outputs, targets) if task.tail is not None else {}
