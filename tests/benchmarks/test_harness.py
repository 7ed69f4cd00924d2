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

    from edgedl.pipeline import keras_measure
    from edgedl.training.model_io import save_model

    save_model(trained_cnn, tmp_path / "m.keras")
    variant = Variant("original", "keras", "float32", tmp_path / "m.keras", measurer=keras_measure.__name__)
    record = measure_variant(variant, eval_npz, BenchConfig(runs=20, warmup=2), root=tmp_path)
    _, ev = mnist
    keras_acc = float(np.mean(trained_cnn.predict(ev.x[:300], verbose=0).argmax(1) == ev.y[:300]))
    assert record["metrics"]["accuracy"] == pytest.approx(keras_acc, abs=1e-9)
    assert record["path"] == "m.keras" and record["latency_ms"]["runs"] == 20


def test_a_failing_measurement_names_the_variant_and_measure_all_records_it(tmp_path, eval_npz):
    from benchmarks import measure_all
    from benchmarks.harness import MeasurementError

    (tmp_path / "bad.tflite").write_bytes(b"junk")
    bad = Variant("bad", "tflite", "float32", tmp_path / "bad.tflite")
    with pytest.raises(MeasurementError, match="measuring bad failed: .*bad.tflite: not a TFLite flatbuffer"):
        measure_variant(bad, eval_npz, BenchConfig(runs=1))
    (record,) = measure_all([bad], eval_npz, BenchConfig(runs=1))
    assert record["status"] == "failed" and "not a TFLite flatbuffer" in record["error"]


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


def test_bench_config_is_validated_with_a_message_for_people():
    with pytest.raises(UserError, match=r"^--runs must be at least 1 \(got 0\)"):
        BenchConfig(runs=0)
    with pytest.raises(UserError, match="--threads 999: give 1 to"):
        BenchConfig(threads=999)
