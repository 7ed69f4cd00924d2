import numpy as np
import pytest

from runtime.bench import accuracy, latency, predict_batched


def test_latency_counts_calls_and_orders_percentiles():
    calls = []
    stats = latency(lambda: calls.append(1), runs=50, warmup=5)
    assert len(calls) == 55 and stats["runs"] == 50
    assert 0 <= stats["min"] <= stats["p50"] <= stats["p90"] <= stats["p99"]
    with pytest.raises(ValueError):
        latency(lambda: None, runs=0)


def test_predict_batched_and_accuracy():
    x = np.arange(10, dtype=np.float32)[:, None]
    seen = []
    out = predict_batched(lambda b: seen.append(len(b)) or np.hstack([b, -b]), x, batch=4)
    assert seen == [4, 4, 2] and out.shape == (10, 2)
    assert accuracy(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), np.array([0, 1, 1])) == pytest.approx(2 / 3)
