"""The figures each variant's process records, and the speed benchmark's pieces (no wall-clock assertions)."""
import numpy as np
import pytest

from benchmarks import BenchConfig, Variant, measure_variant
from benchmarks.speed import _raw, paired_p50
from runtime.bench import peak_rss_mb


@pytest.fixture()
def eval_npz(tmp_path, mnist):
    path = tmp_path / "eval.npz"
    mnist[1].take(slice(0, 200)).save_npz(path, "classification")
    return path


def test_every_record_has_the_full_set_of_figures(artifacts, eval_npz):
    record = measure_variant(Variant("f32", "tflite", "float32", artifacts[("tflite", "float32")].path), eval_npz,
                             BenchConfig(runs=20, warmup=2))  # fmt: skip
    assert record["init_ms"] > 0 and record["first_inference_ms"] > 0
    assert record["throughput"]["batch"] == 32 and record["throughput"]["items_per_s"] > 0
    # The measuring process's own peak, not its parent's (the test process has TensorFlow loaded: far bigger).
    assert 0 < record["peak_rss_mb"] < peak_rss_mb()
    assert record["delegate"] == "xnnpack" and record["input_shape"] == [1, 28, 28, 1]


def test_a_time_budget_replaces_the_run_count(artifacts, eval_npz, tmp_path):
    from benchmarks.harness import measure_command

    variant = Variant("f32", "tflite", "float32", artifacts[("tflite", "float32")].path)
    config = BenchConfig(runs=1, warmup=1, seconds=0.3)
    command = measure_command(variant, eval_npz, config)
    assert command[command.index("--seconds") + 1] == "0.3"  # the measurer is handed the budget
    record = measure_variant(variant, eval_npz, config)
    assert record["latency_ms"]["runs"] >= 1 and record["metrics"]["accuracy"] > 0.5
    # How a budget turns into runs is checked with an injected clock in tests/runtime/test_bench.py.


def test_raw_and_runtime_paths_compute_the_same_thing(artifacts, mnist):
    import runtime

    x = mnist[1].x[:1]
    for key in (("tflite", "float32"), ("tflite", "int8")):
        path = artifacts[key].path
        raw_out = _raw(path, 1, x)()
        model = runtime.load(path, threads=1)
        ours = model.predict(x)
        if key[1] == "int8":
            q = model.metadata.output.quantization
            raw_out = (raw_out.astype(np.float32) - q.zero_point) * q.scale
        np.testing.assert_allclose(ours, raw_out, atol=1e-6)
    ticks = iter(range(0, 10**9, 1000))  # an injected clock: every call takes 1 µs
    p50 = paired_p50({"a": lambda: None, "b": lambda: sum(range(50))}, runs=20, warmup=1, clock=lambda: next(ticks))
    assert p50 == {"a": 1.0, "b": 1.0}
    if_int8 = model.predict(x)  # the last model: int8, whose raw call can convert as a user would
    converted = _raw(artifacts[("tflite", "int8")].path, 1, x, convert=True)()
    np.testing.assert_allclose(if_int8, converted, atol=1e-6)
