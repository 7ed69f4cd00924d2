import pytest

import exporters
from exporters import TFLiteConfig, export
from runtime.errors import UserError


def test_unknown_format_and_precision_name_the_known_ones(trained_cnn, model_info, tmp_path):
    with pytest.raises(UserError, match="unknown export format 'coreml'; known formats: onnx, tflite"):
        export(trained_cnn, tmp_path / "m.mlmodel", "coreml", model_info)
    with pytest.raises(UserError, match="precision 'int4' is not supported by OnnxConfig; choose one of float32, dynamic, int8"):
        export(trained_cnn, tmp_path / "m.onnx", "onnx", model_info, precision="int4")


def test_int8_without_calibration_is_refused():
    with pytest.raises(UserError, match="int8 export needs calibration data"):
        TFLiteConfig(precision="int8")


def test_a_failed_export_leaves_nothing_behind(trained_cnn, model_info, mnist, tmp_path, monkeypatch):
    from exporters import tflite

    def broken_check(*args, **kwargs):
        raise RuntimeError("artifact strays from the Keras model")

    monkeypatch.setattr(tflite, "check_if_asked", broken_check)
    target = tmp_path / "out" / "m.tflite"
    with pytest.raises(RuntimeError, match="strays"):
        export(trained_cnn, target, "tflite", model_info, check_inputs=mnist[1].x[:4])
    assert list(target.parent.iterdir()) == []  # no model, no sidecar, no staging folder


def test_an_existing_artifact_survives_a_failed_re_export(trained_cnn, model_info, mnist, tmp_path, monkeypatch):
    from exporters import tflite

    target = tmp_path / "m.tflite"
    first = export(trained_cnn, target, "tflite", model_info, check_inputs=mnist[1].x[:4])
    before = target.read_bytes()
    monkeypatch.setattr(tflite, "check_if_asked", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        export(trained_cnn, target, "tflite", model_info, precision="dynamic", check_inputs=mnist[1].x[:4])
    assert target.read_bytes() == before and first.sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tflite"]  # the record is inside the file


def test_registry_is_public():
    assert exporters.list_formats() == ["onnx", "tflite"]


def test_dynamic_onnx_of_a_graph_without_matrix_products_is_refused_with_the_way_out(tmp_path):
    from edgedl.models import create_model

    denoiser = create_model("dncnn_lite")
    with pytest.raises(UserError, match="no MatMul or Gemm.*use int8"):
        export(denoiser, tmp_path / "d.onnx", "onnx", exporters.ModelInfo("denoising"), precision="dynamic")
    assert list(tmp_path.iterdir()) == []


def test_onnx_conversion_leaves_out_tf2onnx_reshape_optimizer():
    """It folded a Reshape and a Squeeze into a Reshape of the wrong rank in about one conversion in 30 (a
    DnCNN's N×H×W×1 output came out 1×N×H×W×1); the other optimizers, the transpose one first, stay."""
    from exporters.onnx import _optimizers

    kept = _optimizers()
    assert "reshape_optimizer" not in kept and "optimize_transpose" in kept and len(kept) >= 10
