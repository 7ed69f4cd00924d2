import gzip

import pytest

from benchmarks import BenchConfig, Variant, make_report, measure_variant
from runtime.errors import UserError
from runtime.files import file_sizes


def test_an_artifact_is_measured_in_its_own_process(artifacts, eval_npz, trained_cnn, mnist):
    import numpy as np

    art = artifacts[("tflite", "dynamic")]
    record = measure_variant(Variant("dyn", "tflite", "dynamic", art.path), eval_npz, BenchConfig(runs=30, warmup=3))
    assert record["latency_ms"]["runs"] == 30 and record["size_bytes"] == art.size_bytes
    assert record["gzip_bytes"] == len(gzip.compress(art.path.read_bytes(), 9))
    _, ev = mnist
    keras_acc = float(np.mean(trained_cnn.predict(ev.x[:300], verbose=0).argmax(1) == ev.y[:300]))
    assert abs(record["metrics"]["accuracy"] - keras_acc) <= 0.02


def test_the_keras_original_is_measured_the_same_way(tmp_path, eval_npz, trained_cnn, mnist):
    import numpy as np

    from edgedl.train import save_model

    save_model(trained_cnn, tmp_path / "m.keras")
    variant = Variant("original", "keras", "float32", tmp_path / "m.keras", measurer="edgedl.measure_keras")
    record = measure_variant(variant, eval_npz, BenchConfig(runs=20, warmup=2), root=tmp_path)
    _, ev = mnist
    keras_acc = float(np.mean(trained_cnn.predict(ev.x[:300], verbose=0).argmax(1) == ev.y[:300]))
    assert record["metrics"]["accuracy"] == pytest.approx(keras_acc, abs=1e-9)
    assert record["path"] == "m.keras" and record["latency_ms"]["runs"] == 20


def test_a_failing_measurement_names_the_variant(tmp_path, eval_npz):
    (tmp_path / "bad.tflite").write_bytes(b"junk")
    with pytest.raises(RuntimeError, match="measuring bad failed: .*metadata file bad.tflite.json is missing"):
        measure_variant(Variant("bad", "tflite", "float32", tmp_path / "bad.tflite"), eval_npz, BenchConfig(runs=1))


def test_report_deltas_are_points_against_the_original():
    def rec(name, fmt, acc):
        return {"name": name, "format": fmt, "precision": "float32", "metrics": {"accuracy": acc}}

    report = make_report("cnn", "classification", [rec("original", "keras", 0.985), rec("q", "tflite", 0.981)], 1)
    assert [round(v["metric_delta"], 6) for v in report["variants"]] == [0.0, -0.4]
    assert report["metric"] == "accuracy" and report["machine"]["threads"] == 1


def test_sizes_of_a_folder_add_up(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 100)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_bytes(b"y" * 50)
    assert file_sizes(tmp_path)[0] == 150


def test_bench_config_is_validated():
    with pytest.raises(UserError):
        BenchConfig(runs=0)
