"""A variant that fails is recorded and the run goes on; re-runs merge; bad arguments stop before any work.

The failing variant is real: a Keras ConvLSTM2D has no unrolled form, so it does not convert to TFLite with
builtin operators, while its ONNX export works.
"""
import csv
import json

import pytest

from tests.conftest import run_cli

FAST = ["--runs", "20", "--warmup", "2"]


@pytest.fixture(scope="module")
def convlstm_h5(tmp_path_factory):
    from exporters.tfkeras import keras

    k = keras()
    model = k.Sequential([k.Input((28, 28, 1)), k.layers.Reshape((4, 7, 28, 1)),
                          k.layers.ConvLSTM2D(4, 3, name="memory"),
                          k.layers.Flatten(), k.layers.Dense(10, activation="softmax")])  # fmt: skip
    path = tmp_path_factory.mktemp("convlstm") / "convlstm.h5"  # the legacy format users still bring
    model.save(path, save_format="h5")
    return path


@pytest.fixture(scope="module")
def run(convlstm_h5, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "convlstm"
    proc = run_cli("edgedl", "pipeline", "--model", str(convlstm_h5), "--out", str(out), "--variants",
                   "tflite_float32,onnx_float32", *FAST)  # fmt: skip
    return out, proc


def test_one_failing_variant_is_recorded_and_the_others_are_measured(run):
    out, proc = run
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    by_name = {v["name"]: v for v in report["variants"]}
    assert list(by_name) == ["original", "tflite_float32", "onnx_float32"]
    failed = by_name["tflite_float32"]
    assert failed["status"] == "failed" and "\n" not in failed["error"]
    assert failed["error"].startswith("layer 'memory' (ConvLSTM2D) does not convert to TFLite builtin operators")
    assert by_name["onnx_float32"]["status"] == "ok" and by_name["onnx_float32"]["latency_ms"]["runs"] == 20
    assert "1 of 3 variants failed (tflite_float32)" in " ".join(proc.stderr.split())
    rows = list(csv.reader((out / "report" / "report.csv").open()))
    assert any(r[0] == "tflite_float32" and any(c.startswith("failed: ") for c in r) for r in rows)
    assert "failed: " in (out / "report" / "report.md").read_text()
    assert "failed: " in (out / "report" / "report.html").read_text()


def test_a_rerun_of_one_variant_keeps_the_others_in_the_report(run, convlstm_h5):
    out, _ = run
    proc = run_cli("edgedl", "pipeline", "--model", str(convlstm_h5), "--out", str(out), "--variants", "onnx_float32",
                   *FAST)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "export: onnx_float32 (reused)" in proc.stderr
    names = [v["name"] for v in json.loads((out / "report.json").read_text())["variants"]]
    assert names == ["original", "tflite_float32", "onnx_float32"]  # the previous order, this run's record in place


@pytest.mark.parametrize("argv, message", [
    (["--max-drop", "-1"], "--max-drop must be zero or more"),
    (["--max-drop", "nan"], "--max-drop must be zero or more"),
    (["--by", "speed"], "--by 'speed': choose latency or size"),
    (["--threads", "100000"], "--threads 100000: give 1 to"),
    (["--runs", "0"], "--runs must be at least 1"),
    (["--variants", "nope"], "unknown variant 'nope'"),
    (["--max-drop", "0.5", "--target", "toaster"], "unknown target 'toaster'"),
    (["--max-drop", "0.5", "--search-seconds", "0"], "--search-seconds must be in (0, 86400]"),
])  # fmt: skip
def test_bad_arguments_stop_before_any_work(tmp_path, argv, message):
    out = tmp_path / "never"
    proc = run_cli("edgedl", "pipeline", "--model", "cnn", "--out", str(out), *argv)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert not out.exists()


def test_a_users_model_is_distilled_into_a_copy_of_itself_not_the_zoos_student(convlstm_h5, tmp_path):
    from edgedl.pipeline.stages import Pipeline, PipelineConfig

    user = Pipeline(PipelineConfig(model=str(convlstm_h5), out=tmp_path))
    assert [c.student for c in user.recipe_configs("distill")] == ["width:0.5"]
    zoo = Pipeline(PipelineConfig(model="cnn", out=tmp_path))
    assert [c.student for c in zoo.recipe_configs("distill")] == ["cnn_student"]
    assert user._settings("distill") != zoo._settings("distill")  # and the build key says which


def test_every_variant_reports_its_fidelity_to_the_original(run):
    out, _ = run
    onnx = next(v for v in json.loads((out / "report.json").read_text())["variants"] if v["name"] == "onnx_float32")
    assert onnx["metrics"]["top1_agreement"] == 1.0 and onnx["metrics"]["snr_db"] > 60  # float32: the same model
    assert onnx["metrics"]["cosine"] > 0.9999 and onnx["metrics"]["max_abs_error"] < 1e-4
    assert "top-1 agree" in (out / "report" / "report.md").read_text()
