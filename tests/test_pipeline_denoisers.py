"""The zoo's denoisers and recurrent classifier through the same pipeline: a denoiser, an LSTM, a sequence
denoiser with its per-frame baseline."""
import numpy as np
import pytest

from tests.conftest import run_cli, zoo_pipeline as _pipeline


def test_dncnn_lite_on_noisy_digits_reports_psnr_and_ssim(tmp_path):
    report = _pipeline(tmp_path, "--model", "dncnn_lite", "--epochs", "2", "--variants", "tflite_float32,tflite_int8",
                       "--sigma", "50")  # fmt: skip
    assert report["task"] == "denoising" and report["metric"] == "psnr"
    original, f32, i8 = report["variants"]
    noisy_psnr = 10 * __import__("math").log10(1 / (50 / 255) ** 2)  # about 14.2 dB before any denoising
    assert original["metrics"]["psnr"] > noisy_psnr + 3
    assert 0 < original["metrics"]["ssim"] <= 1
    assert f32["metrics"]["psnr"] == pytest.approx(original["metrics"]["psnr"], abs=0.01)
    assert abs(i8["metric_delta"]) < 1.0
    assert report["data"]["eval_size"] == 2000
    # Every image's PSNR change against the original, and the worst named (digits have no file names).
    deltas = i8["psnr_delta_per_image"]
    assert len(deltas) == 2000 and min(deltas) == pytest.approx(i8["metrics"]["psnr_delta_min"], abs=1e-3)
    assert i8["worst_sample"] == f"#{deltas.index(min(deltas)) + 1}"


def test_lstm_classifier_goes_through_with_its_own_recipes(tmp_path):
    report = _pipeline(tmp_path, "--model", "lstm", "--epochs", "2", "--variants", "tflite_int8,onnx_float32")
    names = [v["name"] for v in report["variants"]]
    assert names == ["original", "tflite_int8", "onnx_float32"]
    assert report["variants"][0]["metrics"]["accuracy"] > 0.8
    assert report["variants"][1]["metric_delta"] > -2.0
    proc = run_cli("edgedl", "pipeline", "--model", "lstm", "--out", str(tmp_path / "x"), "--variants", "qat")
    assert proc.returncode == 2 and "unknown variant 'qat' for this classification model" in proc.stderr


def test_seq_denoiser_report_carries_the_per_frame_baseline(tmp_path):
    report = _pipeline(tmp_path, "--model", "seq_denoiser", "--epochs", "1", "--variants", "tflite_int8",
                       "--sigma", "50", "--train-size", "2000")  # fmt: skip
    assert "2000 moving-digit sequences" in report["data"]["train"]  # --train-size: a quick trial run
    metrics = report["variants"][0]["metrics"]
    assert {"psnr", "ssim", "psnr_per_frame_baseline", "ssim_per_frame_baseline"} <= set(metrics)
    noisy_psnr = 20 * np.log10(255 / 50)  # σ = 50 on the 0–255 scale: what the input scores
    assert metrics["psnr"] > noisy_psnr + 1 and metrics["psnr_per_frame_baseline"] > noisy_psnr + 1
    assert (tmp_path / "run" / "baseline" / "model.keras").exists()
    assert report["variants"][1]["precision"] == "int8"
