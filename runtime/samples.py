"""The original's outputs a measurement keeps, which every variant's fidelity is measured against (the
evaluation set itself is ``runfolder``'s)."""
from __future__ import annotations


import numpy as np

from .metrics import flat


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
