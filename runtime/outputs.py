"""What ``edgedl-run`` says about a model's outputs: top-k where an output is a score vector, every output
in JSON (small ones whole, large ones summarised), non-finite values flagged, never written as NaN."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from .feeds import whole_inputs
from .metadata import ModelMetadata
from .tasks import get_task

INLINE_VALUES = 64  # an output of at most this many values per input is printed whole


def is_score_vector(meta: ModelMetadata, index: int, value: np.ndarray) -> bool:
    """Whether output ``index`` of one input is one score per class: a classifier's, one whose labels match
    its width, or a probability vector (in [0, 1], summing to 1)."""
    if value.ndim != 1 or value.shape[0] < 2 or value.dtype.kind != "f":
        return False
    if index == 0 and get_task(meta.task).class_scores:
        return True
    if index == 0 and meta.labels is not None and len(meta.labels) == value.shape[0]:
        return True
    finite = np.isfinite(value).all()
    return bool(finite and value.min() >= 0 and value.max() <= 1 and abs(float(value.sum()) - 1) <= 1e-2)


def _number(v: float):
    return float(v) if np.isfinite(v) else None  # JSON has no NaN: null, and the output is flagged


def describe_value(arr: np.ndarray) -> dict:
    """One input's output: the values themselves when small, a summary otherwise; non-finite counted."""
    finite = np.isfinite(arr) if arr.dtype.kind == "f" else np.ones(arr.shape, bool)
    doc = {"shape": list(arr.shape), "dtype": arr.dtype.name}
    bad = int(arr.size - finite.sum())
    if bad:
        doc["non_finite"] = bad
    if arr.size <= INLINE_VALUES:
        doc["values"] = [_number(v) if arr.dtype.kind == "f" else v.item() for v in arr.reshape(-1)]
    elif finite.any():
        good = arr[finite].astype(np.float64)
        doc["summary"] = {"min": float(good.min()), "max": float(good.max()), "mean": float(good.mean())}
    return doc


def top_k(row: np.ndarray, labels: Optional[tuple], k: int) -> dict:
    labels = labels if labels is not None and len(labels) == len(row) else tuple(str(i) for i in range(len(row)))
    safe = np.where(np.isfinite(row), row, -np.inf)
    order = np.argsort(-safe, kind="stable")[:k]  # ties (common in int8 output) go to the lower index, as argmax
    return {
        "label": labels[order[0]],
        "class_index": int(order[0]),
        "score": _number(row[order[0]]),
        "top": [{"label": labels[i], "score": _number(row[i])} for i in order],
    }


def per_input(model, x, batch: int) -> list[dict]:
    """Every input's outputs by name, run ``batch`` at a time (the model's own batch where it is fixed).

    An output whose first dimension is the batch is split by rows; one that is not (a detector's list of
    boxes after non-maximum suppression: ``detections × 4``) is kept whole, its inputs run one at a time.
    """
    n = len(next(iter(x.values()))) if isinstance(x, dict) else len(x)
    fixed = model.fixed_batch
    batch = fixed or batch
    by_rows = {s.name for s in model.metadata.outputs if s.shape and s.shape[0] == fixed}  # None == None: free
    if whole_inputs(model.metadata.inputs):  # run a sample at a time: every output has the sample axis
        by_rows = {s.name for s in model.metadata.outputs}

    def take(i, j):
        return {k: v[i:j] for k, v in x.items()} if isinstance(x, dict) else x[i:j]

    def split(out: dict, size: int) -> list[dict]:
        return [{k: v[j] if k in by_rows and v.ndim and v.shape[0] == size else v for k, v in out.items()}
                for j in range(size)]  # fmt: skip

    found: list[dict] = []
    for start in range(0, n, batch):
        size = min(batch, n - start)
        out = model.run(take(start, start + size))
        if size == 1 or all(k in by_rows and v.ndim and v.shape[0] == size for k, v in out.items()):
            found += split(out, size)
        else:
            found += [split(model.run(take(i, i + 1)), 1)[0] for i in range(start, start + size)]
    return found


def results(meta: ModelMetadata, names: list[str], per_input: list[dict], top: int) -> list[dict]:
    """One JSON-ready record per input (``per_input``: its outputs by name): every output, and top-k of the
    first score vector."""
    docs = []
    for name, outputs in zip(names, per_input):
        doc = {"input": name}
        first = next((k for i, (k, v) in enumerate(outputs.items()) if is_score_vector(meta, i, v)), None)
        if first is not None:
            doc.update(top_k(outputs[first], meta.labels, top))
        doc["outputs"] = {k: describe_value(v) for k, v in outputs.items()}
        flagged = sum(o.get("non_finite", 0) for o in doc["outputs"].values())
        if flagged:
            doc["non_finite"] = flagged
        docs.append(doc)
    return docs


def table(docs: list[dict]) -> str:
    """A table for people: label and score where there are scores, each output's shape and range otherwise."""
    width = max(len("input"), *(len(d["input"]) for d in docs))
    if all("label" in d for d in docs):
        runners_up = any(len(d["top"]) > 1 for d in docs)
        lines = [f"{'input':<{width}}  {'label':>8}  {'score':>7}" + ("  next" if runners_up else "")]
        for d in docs:
            score = "nan" if d["score"] is None else f"{d['score']:.4f}"
            line = f"{d['input']:<{width}}  {d['label']:>8}  {score:>7}"
            if runners_up:
                line += "  " + ", ".join(f"{t['label']} {t['score'] if t['score'] is None else round(t['score'], 4)}"
                                         for t in d["top"][1:])  # fmt: skip
            lines.append(line)
        return "\n".join(lines)
    lines = [f"{'input':<{width}}  output"]
    for d in docs:
        for i, (key, o) in enumerate(d["outputs"].items()):
            shape = "×".join(map(str, o["shape"])) or "scalar"
            if "values" in o and len(o["values"]) <= 8:
                what = "[" + ", ".join("nan" if v is None else f"{v:.4g}" for v in o["values"]) + "]"
            elif "summary" in o:
                what = "min {min:.4g}, max {max:.4g}, mean {mean:.4g}".format(**o["summary"])
            else:
                what = f"{len(o.get('values', []))} values"
            flag = f"  ({o['non_finite']} non-finite)" if o.get("non_finite") else ""
            lines.append(f"{d['input'] if i == 0 else '':<{width}}  {key} {shape}: {what}{flag}")
    return "\n".join(lines)


def save_outputs(folder: Path, names: list[str], per_input: list[dict]) -> list[Path]:
    """Every output of every input as ``NNNN_<input>.<output>.npy`` in ``folder``, atomically."""
    import re

    from .files import atomic_path

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for row, (name, outputs) in enumerate(zip(names, per_input)):
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name.split("[")[0]).stem)[:60]
        for key, value in outputs.items():
            target = folder / f"{row:04d}_{stem}.{re.sub(r'[^A-Za-z0-9_.-]+', '_', key)[:60]}.npy"
            with atomic_path(target) as tmp:
                np.save(tmp, value)
            written.append(target)
    return written
