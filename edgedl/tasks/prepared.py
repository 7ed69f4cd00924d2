"""What a task's data comes to on the host: ``Prepared`` (training input, calibration and check inputs, the
evaluation arrays), and the content hash that fingerprints it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from runtime.runfolder import write_eval

CALIBRATION_SAMPLES = 300
CHECK_SAMPLES = 64
FEW = 30  # an evaluation set smaller than this gives figures that move by whole points from one input


def too_few(count: int) -> str:
    """What a log line adds about an evaluation set of ``count`` inputs: a warning when there are too few."""
    if count >= FEW:
        return ""
    return (f" [yellow]warning: only {count} evaluation input(s): one of them is {100 / max(count, 1):.0f} points; "
            f"give {FEW} or more[/]")

@dataclass(frozen=True)
class Prepared:
    """Everything the pipeline needs from the data of one task."""

    task: str
    fit: object  # a Dataset, or a Keras Sequence of (input, target) batches
    validation: object  # a Dataset, a tuple of arrays, or None
    calibration: np.ndarray
    check: np.ndarray
    labels: Optional[tuple]
    eval_arrays: dict  # what eval.npz holds, besides the task
    train_source: str
    eval_source: str
    eval_size: int
    fingerprint: str = ""  # sha256 of the training and evaluation arrays and the noise: what the data *is*
    held_out: object = None  # a Dataset of the training classes kept out of training (an embedder's threshold)
    resize: str = "stretch"  # how a picture of another aspect was fitted to the input (the artifacts record it)

    def save_eval(self, path: Path) -> None:
        """``eval.npz``; a generic model's holds its inputs alone (by input name): no targets to score."""
        write_eval(path, self.eval_arrays, self.task)


def content_hash(*parts) -> str:
    """sha256 over arrays (their dtype, shape and bytes) and plain values, in order."""
    import hashlib

    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            digest.update(f"{part.dtype}{part.shape}".encode())
            digest.update(np.ascontiguousarray(part).tobytes())
        elif isinstance(part, (list, tuple)) and part and isinstance(part[0], np.ndarray):
            for item in part:
                digest.update(content_hash(item).encode())
        else:
            digest.update(repr(part).encode())
    return digest.hexdigest()
