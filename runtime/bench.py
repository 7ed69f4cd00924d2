"""Measure a predictor the same way on the host and on the device.

``latency`` times any callable (a runtime ``Model``'s predict, or the host's
compiled Keras function), so every variant, the original included, goes
through the same clock and the same statistics.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from .metrics import accuracy  # noqa: F401  (re-exported: the bench's classifier metric)


def latency(fn: Callable[[], object], runs: int = 200, warmup: int = 20) -> dict:
    """Call ``fn`` ``warmup`` times untimed, then ``runs`` times; milliseconds per call.

    Returns ``p50``, ``p90``, ``p99``, ``mean``, ``std``, ``min`` and ``runs``.
    """
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    for _ in range(warmup):
        fn()
    samples = np.empty(runs, dtype=np.float64)
    clock = time.perf_counter_ns
    for i in range(runs):
        start = clock()
        fn()
        samples[i] = clock() - start
    ms = samples / 1e6
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "mean": float(ms.mean()),
        "std": float(ms.std()),
        "min": float(ms.min()),
        "runs": runs,
    }


def predict_batched(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch: int = 200) -> np.ndarray:
    """Run ``predict`` over ``x`` in chunks of ``batch`` and stack the results."""
    return np.concatenate([predict(x[i : i + batch]) for i in range(0, len(x), batch)])

