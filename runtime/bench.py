"""Measure a predictor the same way on the host and on the device.

``latency`` times any callable (a runtime ``Model``'s predict, or the host's
compiled Keras function), so every variant, the original included, goes
through the same clock and the same statistics.
"""
from __future__ import annotations

import sys
import time
from typing import Callable, Optional

import numpy as np

from .metrics import accuracy  # noqa: F401  (re-exported: the bench's classifier metric)


def latency(fn: Callable[[], object], runs: int = 200, warmup: int = 20, seconds: Optional[float] = None) -> dict:
    """Call ``fn`` ``warmup`` times untimed, then ``runs`` times (or, given ``seconds``, for that long);
    milliseconds per call.

    Returns ``p50``, ``p90``, ``p99``, ``mean``, ``std``, ``min`` and ``runs``.
    """
    if runs < 1 or warmup < 0 or (seconds is not None and seconds <= 0):
        raise ValueError(f"runs must be >= 1, warmup >= 0, seconds > 0: got {runs}, {warmup}, {seconds}")
    for _ in range(warmup):
        fn()
    clock = time.perf_counter_ns
    samples = []
    deadline = None if seconds is None else clock() + int(seconds * 1e9)
    while (len(samples) < runs) if deadline is None else (not samples or clock() < deadline):
        start = clock()
        fn()
        samples.append(clock() - start)
    ms = np.asarray(samples, dtype=np.float64) / 1e6
    runs = len(samples)
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


def peak_rss_mb() -> Optional[float]:
    """Peak resident memory of this process so far, in MiB (None where the OS does not say).

    On Linux this is VmHWM: getrusage's ru_maxrss survives exec, so a child
    started by a large parent would report the parent's peak.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def profile(load: Callable[[], Callable], inputs, runs: int = 200, warmup: int = 20, seconds=None,
            throughput_batch: int = 32) -> tuple[dict, Callable]:  # fmt: skip
    """The figures every variant gets, measured the same way on the host and on a device.

    ``load()`` returns a predict function (float batch in, float batch out).
    Measures the time to load, the first inference, batch-1 latency and the
    throughput at ``throughput_batch`` (when the inputs share a shape).
    Returns the figures and the predict function (to score the model with).
    """
    start = time.perf_counter()
    predict = load()
    init_ms = (time.perf_counter() - start) * 1e3
    one = np.asarray(inputs[0], dtype=np.float32)[None]
    start = time.perf_counter()
    predict(one)
    first_ms = (time.perf_counter() - start) * 1e3
    figures = {
        "input_shape": list(one.shape),
        "init_ms": init_ms,
        "first_inference_ms": first_ms,
        "latency_ms": latency(lambda: predict(one), runs=runs, warmup=warmup, seconds=seconds),
    }
    n = min(throughput_batch, len(inputs))
    if all(np.shape(x) == one.shape[1:] for x in inputs[:n]):
        batch = np.asarray(inputs[:n], dtype=np.float32)
        stats = latency(lambda: predict(batch), runs=max(3, runs // 20), warmup=2)
        figures["throughput"] = {"batch": n, "items_per_s": n / (stats["p50"] / 1e3), "batch_ms_p50": stats["p50"]}
    return figures, predict


def predict_batched(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch: int = 200) -> np.ndarray:
    """Run ``predict`` over ``x`` in chunks of ``batch`` and stack the results."""
    return np.concatenate([predict(x[i : i + batch]) for i in range(0, len(x), batch)])

