"""The denoisers' target table, on hand-made reports."""
import pytest

from benchmarks.denoisers import rows
from runtime.errors import UserError


def record(name, psnr, delta, **extra):
    return {"name": name, "format": "keras" if name == "original" else "tflite", "precision": "float32",
            "metrics": {"psnr": psnr}, "metric_delta": delta, "status": "ok", **extra}  # fmt: skip


def test_the_table_compares_with_bm3d_int8_and_the_student_without_teacher():
    report = {"model": "ircnn_lite", "metric": "psnr", "variants": [
        record("original", 29.50, 0.0, macs_per_pixel=104_544), record("tflite_int8", 29.41, -0.09),
        record("qat_tflite_int8", 29.45, -0.05),
        record("distill_tflite_float32", 28.90, -0.60), record("student_tflite_float32", 28.75, -0.75)]}
    sequence = {"model": "seq_denoiser", "metric": "psnr", "variants": [
        {"metrics": {"psnr": 25.3, "psnr_per_frame_baseline": 24.1}}]}
    (bm3d, int8, qat, macs, distill, seq) = [value for _, value, _ in rows(report, sequence)]
    assert bm3d == "29.50 dB (-0.47 vs BM3D)" and int8 == "-0.09 dB" and qat == "-0.05 dB" and macs == "104,544"
    assert distill.startswith("+0.15 dB") and seq == "+1.20 dB"
    with pytest.raises(UserError, match="scores psnr"):
        rows({**report, "metric": "accuracy"})
