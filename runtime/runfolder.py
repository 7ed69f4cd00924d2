"""A run folder of ``edgedl pipeline`` as host and device both read it: its layout, finding it from a file
inside it, the evaluation set (``eval.npz``) and the compression record, each written and read here alone.

    RUN/report.json            the comparison (``runtime.report`` reads and validates it)
    RUN/eval.npz               the evaluation set every variant is measured on
    RUN/artifacts/NAME.tflite  one file per variant (``.onnx``)
    RUN/compressed/RECIPE.json what a compression did (``edgedl compress`` writes the same record)
    RUN/selected/              the variant ``select`` chose

An evaluation set is an ``.npz``: ``task`` and the task's arrays (``runtime.tasks``
says which: ``x``/``y`` for labelled pictures, ``noisy_i``/``clean_i`` pairs for a
denoiser, boxes for a detector), or, for a model without targets, its inputs by
input name and no ``task``. Paths in a report are stored relative to the run folder
(absolute when outside it) and resolved against it by every reader.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import UserError
from .files import atomic_path, write_json
from .tasks import get_task

REPORT_FILE = "report.json"
EVAL_FILE = "eval.npz"
COMPRESSION_KIND = "edgedl-compression"
COMPRESSION_VERSION = 1


def find_run(path, levels: int = 3) -> Optional[Path]:
    """The run folder that ``path`` is (a folder holding ``report.json``), or whose ``report.json`` it is, or
    that holds it up to ``levels`` folders up (``RUN/artifacts/x.tflite``, ``RUN/selected/model.tflite``)."""
    here = Path(path).resolve()
    if here.is_file() and here.name == REPORT_FILE:
        return here.parent
    for folder in ([here] if here.is_dir() else []) + list(here.parents)[:levels]:
        if (folder / REPORT_FILE).is_file():
            return folder
    return None


def run_report(source) -> tuple[Path, Path]:
    """(``report.json``, the run folder) of ``source``: a run folder or its ``report.json``, alike."""
    source = Path(source)
    if source.is_dir():
        if not (source / REPORT_FILE).is_file():
            raise UserError(f"{source}: no {REPORT_FILE} here; give a run folder of 'edgedl pipeline' or its "
                            f"{REPORT_FILE}")  # fmt: skip
        return source / REPORT_FILE, source
    if not source.exists():
        raise UserError(f"{source}: no such run folder or report file")
    return source, source.parent


def stored_path(path, run_dir) -> str:
    """How a report stores ``path``: relative to the run folder when inside it, absolute otherwise."""
    path, run_dir = Path(path).resolve(), Path(run_dir).resolve()
    return path.relative_to(run_dir).as_posix() if path.is_relative_to(run_dir) else str(path)


def resolve(stored: str, run_dir) -> Path:
    """A path a report stores, as a path on this machine (relative ones are the run folder's)."""
    return Path(stored) if Path(stored).is_absolute() else Path(run_dir) / stored


# -- the evaluation set ----------------------------------------------------------------------------------


def write_eval(path, arrays: dict, task: Optional[str] = None, compressed: bool = False) -> None:
    """An evaluation set, atomically: ``arrays`` (the task's, or a model's inputs by name) and the task when
    it keeps targets to score (a generic model's set holds its inputs alone)."""
    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    if task is not None and get_task(task).scored:
        arrays = {"task": np.array(task), **arrays}
    try:
        with atomic_path(Path(path)) as tmp:
            with open(tmp, "wb") as handle:
                (np.savez_compressed if compressed else np.savez)(handle, **arrays)
    except OSError as exc:
        raise UserError(f"{path}: the evaluation set cannot be written ({exc.strerror or exc})") from None


def read_eval_arrays(path) -> dict:
    """Every array of an evaluation set, by name (checked, without pickles)."""
    from .images import read_npz

    return read_npz(path)


def load_eval(path):
    """Evaluation data as (inputs, targets, task): an ``eval.npz`` of a run (targets and task), or any
    ``.npy`` / ``.npz`` of model inputs (targets None: timed, not scored).

    Classification: an array of model-ready images and their labels.
    Denoising: lists of noisy inputs and clean targets (sizes may differ).
    """
    from .images import read_npy

    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        return read_npy(path).astype(np.float32, copy=False), None, None
    if suffix != ".npz":
        raise UserError(f"{path}: evaluation data is an .npz (a run's eval.npz) or a .npy of model inputs")
    data = read_eval_arrays(path)
    if not data:
        raise UserError(f"{path}: holds no arrays; give a run's eval.npz, or the model's inputs by input name")
    if "task" not in data and set(data) == {"x", "y"}:  # pictures and their labels, as edgedl's .npz data is
        if len(data["x"]) != len(data["y"]) or data["y"].ndim != 1:
            raise UserError(f"{path}: {len(data['x'])} inputs in x but labels of shape {data['y'].shape} in y; give "
                            "one class number per input")  # fmt: skip
        return data["x"].astype(np.float32, copy=False), data["y"].astype(np.int64), "classification"
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
    names = read_eval_arrays(path).get("names") if Path(path).suffix.lower() == ".npz" else None
    if names is None or len(names) != count:
        return [f"#{i + 1}" for i in range(count)]
    return [str(n) for n in names]


# -- the compression record -------------------------------------------------------------------------------


def write_compression(path, after: dict, techniques=(), configs=(), before: Optional[dict] = None,
                      source: Optional[str] = None, artifact: Optional[str] = None) -> dict:  # fmt: skip
    """What a compression did: the model's figures ``after`` it (params, MACs, sparsity, ...) and ``before``,
    the techniques and their settings, what it started from and the artifact made; atomically."""
    record = {"kind": COMPRESSION_KIND, "version": COMPRESSION_VERSION, "source": source,
              "techniques": list(techniques), "configs": [str(c) for c in configs], "artifact": artifact,
              "before": before, "after": after}  # fmt: skip
    write_json(Path(path), record)
    return record


def read_compression(path) -> Optional[dict]:
    """A compression record, or None when there is none, or it is cut short or of another version (the
    compression is then made again)."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(record, dict) and record.get("kind") == COMPRESSION_KIND
    if not ok or record.get("version") != COMPRESSION_VERSION or not isinstance(record.get("after"), dict):
        return None
    return record
