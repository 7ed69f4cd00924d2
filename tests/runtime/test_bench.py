import numpy as np
import pytest

from runtime.bench import latency, run_all
from runtime.metrics import accuracy


class FakeClock:
    """Nanoseconds that pass only when a call says so: timings that no other process can move."""

    def __init__(self):
        self.now = 0

    def __call__(self) -> int:
        return self.now

    def spend(self, ms: float) -> None:
        self.now += int(ms * 1e6)


def test_latency_counts_calls_and_measures_what_they_cost():
    calls = []
    stats = latency(lambda: calls.append(1), runs=50, warmup=5)
    assert len(calls) == 55 and stats["runs"] == 50
    clock = FakeClock()
    costs = iter([2.0, 3.0, 2.0, 10.0, 2.0])
    slow = latency(lambda: clock.spend(next(costs)), runs=5, warmup=0, clock=clock)
    assert (slow["p50"], slow["min"], slow["runs"]) == (2.0, 2.0, 5) and slow["mean"] == pytest.approx(3.8)
    budget = latency(lambda: clock.spend(2.0), warmup=3, seconds=0.05, clock=clock)  # milliseconds, in seconds
    assert budget["runs"] == 25 and budget["p50"] == 2.0  # 50 ms of 2 ms calls; the warm-up is not timed
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
