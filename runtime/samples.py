"""The data a measurement reads and keeps: the evaluation set (a run's ``eval.npz`` or model inputs), its
samples' names, and the original's outputs, which every variant's fidelity is measured against."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import UserError
from .metrics import flat
from .tasks import get_task


def load_eval(path):
    """Evaluation data as (inputs, targets, task): an ``eval.npz`` of a run (targets and task), or any
    ``.npy`` / ``.npz`` of model inputs (targets None: timed, not scored).

    Classification: an array of model-ready images and their labels.
    Denoising: lists of noisy inputs and clean targets (sizes may differ).
    """
    from .images import read_npy, read_npz

    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        return read_npy(path).astype(np.float32, copy=False), None, None
    if suffix != ".npz":
        raise UserError(f"{path}: evaluation data is an .npz (a run's eval.npz) or a .npy of model inputs")
    data = read_npz(path)
    if "task" not in data:  # inputs by name (one array: a one-input model's)
        return (data if len(data) > 1 else next(iter(data.values())).astype(np.float32, copy=False)), None, None
    try:
        task = get_task(str(data["task"]))
        if not task.scored:
            raise UserError(f"{path}: task {task.name!r} keeps no targets; an eval.npz of it holds inputs by name")
        return (*task.read_eval(data), task.name)
    except KeyError as exc:
        raise UserError(f"{path}: not an edgedl evaluation set (no array {exc}); use the eval.npz a run wrote") from None
    except (TypeError, ValueError):
        raise UserError(f"{path}: not an edgedl evaluation set (unreadable arrays)") from None


def eval_names(path, count: int) -> list:
    """The names of an evaluation set's samples (a run's ``eval.npz`` keeps its images' file names), else
    ``#1``, ``#2``, … in order."""
    from .images import read_npz

    names = read_npz(path).get("names") if Path(path).suffix.lower() == ".npz" else None
    if names is None or len(names) != count:
        return [f"#{i + 1}" for i in range(count)]
    return [str(n) for n in names]


def save_outputs(path, outputs: list) -> None:
    """Per-sample outputs (the original's, for the variants' fidelity), atomically; each in its own shape (a
    flattened image or sequence would pass for a score vector and get a top-1 agreement), several outputs
    joined."""
    from .files import atomic_path

    rows = [flat(o) if isinstance(o, dict) else np.asarray(o) for o in outputs]
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, *rows, several=np.array(isinstance(outputs[0], dict)))


def load_outputs(path) -> list:
    from .images import read_npz

    arrays = read_npz(path)
    rows = [arrays[f"arr_{i}"] for i in range(len(arrays) - 1)]
    return [{"outputs": r} for r in rows] if bool(arrays["several"]) else rows  # several outputs: no top-1
