"""ONNX execution providers as a Jetson has them, and ``edgedl-run bench`` outside a bundle."""
import json

import pytest

from runtime.errors import UserError
from runtime.providers import choose_providers
from tests.conftest import run_cli

JETSON = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_providers_prefer_tensorrt_then_cuda_and_always_keep_the_cpu():
    assert choose_providers(JETSON) == JETSON
    assert choose_providers(["CUDAExecutionProvider", "CPUExecutionProvider"]) == ["CUDAExecutionProvider",
                                                                                  "CPUExecutionProvider"]
    assert choose_providers(["AzureExecutionProvider", "CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert choose_providers(JETSON, ["CUDAExecutionProvider"]) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    with pytest.raises(UserError, match="TensorrtExecutionProvider is not in this onnxruntime"):
        choose_providers(["CPUExecutionProvider"], ["TensorrtExecutionProvider"])


def test_bench_measures_a_loose_artifact_on_a_given_evaluation_set(artifacts, eval_npz, tmp_path):
    out = tmp_path / "device.json"
    proc = run_cli("edgedl-run", "bench", str(artifacts[("onnx", "float32")].path), "--eval", str(eval_npz), "--runs", "10",
                   "--warmup", "1", "--json", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    (record,) = doc["variants"]
    assert doc["metric"] == "accuracy" and doc["measured_by"] == "edgedl-run bench"
    assert record["delegate"] == "CPUExecutionProvider" and record["latency_ms"]["runs"] == 10
    assert record["metrics"]["accuracy"] > 0.8 and record["metric_delta"] is None
    assert doc["metric_delta_against"] is None  # no host reference outside a bundle


def test_bench_without_evaluation_data_times_synthetic_inputs_and_says_so(artifacts, tmp_path):
    out = tmp_path / "synthetic.json"
    proc = run_cli("edgedl-run", "bench", str(artifacts[("tflite", "int8")].path), "--runs", "5", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "synthetic inputs (seed 0) of the model's shape: no accuracy measured" in proc.stdout
    (record,) = json.loads(out.read_text())["variants"]
    assert record["metrics"] == {} and record["latency_ms"]["runs"] == 5 and record["input_shape"] == [1, 28, 28, 1]


def test_bench_with_a_bad_option_says_what_to_do(artifacts, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    proc = run_cli("edgedl-run", "bench", str(artifacts[("tflite", "int8")].path), "--eval", str(bad))
    assert proc.returncode == 2 and "bad.npz: not a readable .npz archive" in proc.stderr
    proc = run_cli("edgedl-run", "bench", str(artifacts[("tflite", "int8")].path), "--eval", str(bad), "--providers", "CUDA")
    assert proc.returncode == 2 and "--providers is for .onnx models" in proc.stderr
    proc = run_cli("edgedl-run", "bench", str(artifacts[("tflite", "int8")].path), "--runs", "0", "--eval", str(bad))
    assert proc.returncode == 2 and "--runs must be at least 1" in proc.stderr
    proc = run_cli("edgedl-run", "bench", str(artifacts[("tflite", "int8")].path), "--shape", "nope=1x2")
    assert proc.returncode == 2 and "--shape names 'nope'" in proc.stderr
