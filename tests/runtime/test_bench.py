import numpy as np
import pytest

from runtime.bench import latency, run_all
from runtime.metrics import accuracy


def test_latency_counts_calls_and_measures_what_they_cost():
    import time

    calls = []
    stats = latency(lambda: calls.append(1), runs=50, warmup=5)
    assert len(calls) == 55 and stats["runs"] == 50
    slow = latency(lambda: time.sleep(0.002), runs=5, warmup=0)
    assert 2.0 <= slow["p50"] < 200.0 and slow["p50"] > 10 * stats["p50"]  # milliseconds, and it tells them apart
    budget = latency(lambda: time.sleep(0.002), warmup=0, seconds=0.05)
    assert 5 <= budget["runs"] <= 25
    with pytest.raises(ValueError):
        latency(lambda: None, runs=0)


def test_run_all_batches_and_accuracy():
    x = np.arange(10, dtype=np.float32)[:, None]
    seen = []
    out = run_all(lambda b: seen.append(len(b)) or np.hstack([b, -b]), x, batch=4)
    assert seen == [4, 4, 2] and len(out) == 10 and out[3].tolist() == [3.0, -3.0]
    two = run_all(lambda f: {"a": f["x"], "b": 2 * f["x"]}, {"x": x}, batch=3)  # several inputs and outputs
    assert len(two) == 10 and (two[4]["a"].tolist(), two[4]["b"].tolist()) == ([4.0], [8.0])
    assert accuracy(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), np.array([0, 1, 1])) == pytest.approx(2 / 3)
