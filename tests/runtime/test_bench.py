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


def test_a_long_timing_step_is_announced_and_a_short_one_is_not():
    from runtime.bench import profile

    def clock_with(first_call_s: float):
        """A clock for ``profile``: the load takes 1 ms, the first call ``first_call_s``."""
        ticks = iter([0.0, 0.001, 0.002, 0.002 + first_call_s])
        return lambda: next(ticks, 1.0)

    heard = []
    profile(lambda: (lambda x: x), np.zeros((4, 3), np.float32), runs=200, warmup=20, say=heard.append,
            clock=clock_with(0.06))  # a large model's first call: 220 calls would take 13 s  # fmt: skip
    assert len(heard) == 1 and heard[0].startswith("timing 200 calls, about 13 s") and "60 ms the first" in heard[0]
    heard.clear()
    profile(lambda: (lambda x: x), np.zeros((4, 3), np.float32), runs=20, warmup=2, say=heard.append,
            clock=clock_with(0.0001))  # fmt: skip
    assert heard == []
