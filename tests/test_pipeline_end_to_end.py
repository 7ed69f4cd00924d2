"""The README's main job, for real: default epochs on the embedded data, every variant, report.json.

Then the int8 artifact classifies the 2,000 evaluation images with ``edgedl-run``
in a process that cannot import TensorFlow, within 0.5 points of the original.
"""
import json

import numpy as np
import pytest

from tests.conftest import run_cli, run_python

VARIANT_KEYS = {"name", "format", "precision", "techniques", "path", "size_bytes", "gzip_bytes", "metrics",
                "latency_ms", "metric_delta", "init_ms", "first_inference_ms"}  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipeline") / "cnn"
    proc = run_cli("edgedl", "pipeline", "--model", "cnn", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


@pytest.fixture(scope="module")
def report(run_dir):
    return json.loads((run_dir[0] / "report.json").read_text())


def test_report_has_every_variant_and_the_schema(report):
    assert report["schema_version"] == 1 and report["model"] == "cnn" and report["task"] == "classification"
    assert {"cpu", "cores", "versions", "threads"} <= set(report["machine"])
    assert "ai-edge-litert" in report["machine"]["versions"] and "onnxruntime" in report["machine"]["versions"]
    names = [v["name"] for v in report["variants"]]
    assert names == ["original", "tflite_float32", "tflite_float16", "tflite_dynamic", "tflite_int8",
                     "onnx_float32", "onnx_dynamic", "onnx_int8"]  # fmt: skip
    for v in report["variants"]:
        assert VARIANT_KEYS <= set(v), v["name"]
        assert v["format"] in ("keras", "tflite", "onnx") and v["precision"] in ("float32", "float16", "dynamic", "int8")
        assert v["techniques"] == []
        lat = v["latency_ms"]
        assert lat["runs"] >= 200 and 0 < lat["p50"] <= lat["p90"] <= lat["p99"]
        assert 0 < v["gzip_bytes"] and 0 < v["size_bytes"]


def test_trained_cnn_reaches_98_percent_on_the_2000_evaluation_images(report):
    original = report["variants"][0]
    assert report["data"]["eval_size"] == 2000
    assert original["metrics"]["accuracy"] >= 0.980


def test_every_variant_stays_close_to_the_original(report):
    for v in report["variants"]:
        assert v["metric_delta"] >= -0.5, v["name"]


def test_int8_tflite_with_edgedl_run_without_tensorflow_matches_the_report(run_dir, report, tmp_path):
    out, _ = run_dir
    with np.load(out / "eval.npz") as data:
        x, y = data["x"], data["y"]
    np.save(tmp_path / "eval_images.npy", x)
    int8 = next(v for v in report["variants"] if v["name"] == "tflite_int8")
    proc = run_python(
        """
        import sys
        from runtime.cli import main
        sys.exit(main([sys.argv[1], sys.argv[2], "--json", "--threads", "1"]))
        """,
        str(out / int8["path"]), str(tmp_path / "eval_images.npy"),
        block_host=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    assert doc["precision"] == "int8" and len(doc["results"]) == 2000
    predicted = np.array([int(r["label"]) for r in doc["results"]])
    accuracy = float(np.mean(predicted == y))
    assert accuracy == pytest.approx(int8["metrics"]["accuracy"], abs=1e-9)
    assert accuracy >= report["variants"][0]["metrics"]["accuracy"] - 0.005


def test_a_rerun_reuses_the_model_and_artifacts(run_dir):
    out, _ = run_dir
    before = {p.name: p.stat().st_mtime_ns for p in (out / "artifacts").iterdir()}
    model_mtime = (out / "model.keras").stat().st_mtime_ns
    proc = run_cli("edgedl", "pipeline", "--model", "cnn", "--out", str(out), "--runs", "200",
                   "--variants", "tflite_int8,onnx_float32")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "reusing" in proc.stderr and proc.stderr.count("(reused)") == 2
    assert (out / "model.keras").stat().st_mtime_ns == model_mtime
    after = {p.name: p.stat().st_mtime_ns for p in (out / "artifacts").iterdir()}
    assert after == before
    names = [v["name"] for v in json.loads((out / "report.json").read_text())["variants"]]
    assert names == ["original", "tflite_int8", "onnx_float32"]


def test_a_users_saved_model_goes_through_the_same_pipeline(tmp_path, trained_cnn):
    from edgedl.train import save_model

    save_model(trained_cnn, tmp_path / "mine.h5")
    proc = run_cli("edgedl", "pipeline", "--model", str(tmp_path / "mine.h5"), "--out", str(tmp_path / "run"),
                   "--variants", "tflite_int8", "--runs", "200")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "not retrained" in proc.stderr and not (tmp_path / "run" / "model.keras").exists()
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert [v["name"] for v in report["variants"]] == ["original", "tflite_int8"]
    assert report["variants"][0]["path"].endswith("mine.h5")
