"""The original's outputs a measurement keeps, which every variant's fidelity is measured against (the
evaluation set itself is ``runfolder``'s)."""
from __future__ import annotations


import numpy as np


def save_outputs(path, outputs: list) -> None:
    """Per-sample outputs (the original's, for the variants' fidelity), atomically; each in its own shape (a
    flattened image or sequence would pass for a score vector and get a top-1 agreement); a model's several
    outputs each under its name (``s<sample>.<name>``), so that each output's channels are measured apart."""
    from .files import atomic_path

    several = isinstance(outputs[0], dict)
    if several:
        arrays = {f"s{i}.{name}": np.asarray(v) for i, o in enumerate(outputs) for name, v in o.items()}
    else:
        arrays = {f"arr_{i}": np.asarray(o) for i, o in enumerate(outputs)}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays, several=np.array(several), samples=np.array(len(outputs)))


def load_outputs(path) -> list:
    from .images import read_npz

    arrays = read_npz(path)
    if "samples" not in arrays:  # kept by an older edgedl: several outputs joined into one vector
        rows = [arrays[f"arr_{i}"] for i in range(len(arrays) - 1)]
        return [{"outputs": r} for r in rows] if bool(arrays["several"]) else rows
    n = int(arrays["samples"])
    if not bool(arrays["several"]):
        return [arrays[f"arr_{i}"] for i in range(n)]
    rows = [{} for _ in range(n)]
    for key, value in arrays.items():
        if key.startswith("s") and "." in key:
            index, name = key[1:].split(".", 1)
            rows[int(index)][name] = value
    return rows
