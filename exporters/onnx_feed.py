"""Samples of a batch by input name, as an ONNX graph takes them (``runtime.feeds``: an input the graph takes
whole carries a sample axis of its own in a batch)."""
from __future__ import annotations

import numpy as np


def one_sample(batch: dict, i: int, ranks: dict) -> dict:
    """Sample ``i`` of a batch by input name as a graph of inputs of ``ranks`` takes it: an input the graph
    takes whole (its array one axis longer than the graph's input: ``runtime.feeds``' sample axis) without
    that axis, the others as a batch of one."""
    return {k: np.asarray(v[i] if np.ndim(v) == ranks.get(k, -1) + 1 else v[i : i + 1]) for k, v in batch.items()}


def input_ranks(inputs) -> dict:
    """{name: rank} of a graph's inputs (onnx value infos, or an onnxruntime session's ``get_inputs()``)."""
    return {i.name: len(i.shape) if hasattr(i, "shape") else len(i.type.tensor_type.shape.dim) for i in inputs}
