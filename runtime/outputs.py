"""What ``edgedl-run`` says about a model's outputs: top-k where an output is a score vector, every output
in JSON (small ones whole, large ones summarised), non-finite values flagged, never written as NaN."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from .metadata import ModelMetadata

INLINE_VALUES = 64  # an output of at most this many values per input is printed whole


def is_score_vector(meta: ModelMetadata, index: int, batch: np.ndarray) -> bool:
    """Whether output ``index`` holds one score per class: a classifier's, one whose labels match its
    width, or rows that are probabilities (in [0, 1], summing to 1)."""
    if batch.ndim != 2 or batch.shape[1] < 2 or batch.dtype.kind != "f":
        return False
    if index == 0 and meta.task == "classification":
        return True
    if index == 0 and meta.labels is not None and len(meta.labels) == batch.shape[1]:
        return True
    finite = np.isfinite(batch).all()
    return bool(finite and batch.min() >= 0 and batch.max() <= 1 and np.allclose(batch.sum(1), 1, atol=1e-2))


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


def results(meta: ModelMetadata, names: list[str], outputs: dict, top: int) -> list[dict]:
    """One JSON-ready record per input: every output, and top-k of the first score vector."""
    keys = list(outputs)
    scores = {k: is_score_vector(meta, i, outputs[k]) for i, k in enumerate(keys)}
    docs = []
    for row, name in enumerate(names):
        doc = {"input": name}
        first = next((k for k in keys if scores[k]), None)
        if first is not None:
            doc.update(top_k(outputs[first][row], meta.labels, top))
        doc["outputs"] = {k: describe_value(outputs[k][row]) for k in keys}
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


def save_outputs(folder: Path, names: list[str], outputs: dict) -> list[Path]:
    """Every output of every input as ``NNNN_<input>.<output>.npy`` in ``folder``, atomically."""
    import re

    from .files import atomic_path

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for row, name in enumerate(names):
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name.split("[")[0]).stem)[:60]
        for key, batch in outputs.items():
            target = folder / f"{row:04d}_{stem}.{re.sub(r'[^A-Za-z0-9_.-]+', '_', key)[:60]}.npy"
            with atomic_path(target) as tmp:
                np.save(tmp, batch[row])
            written.append(target)
    return written
