import json

import numpy as np
import pytest

import runtime
from runtime.errors import UserError
from runtime.metadata import ModelMetadata, Quantization, TensorSpec, sidecar_path
from runtime.model import _dequantize, _quantize


def test_metadata_round_trips_through_json():
    meta = ModelMetadata(
        task="classification", format="tflite", precision="int8",
        input=TensorSpec("x", (None, 28, 28, 1), "int8", Quantization(1 / 255, -128)),
        output=TensorSpec("y", (None, 10), "int8", Quantization(1 / 256, -128)),
        labels=tuple("0123456789"), techniques=("prune",),
    )  # fmt: skip
    back = ModelMetadata.from_dict(json.loads(meta.to_json()))
    assert back == meta
    assert back.image_shape == (28, 28, 1)


def test_metadata_rejects_unknown_task_and_newer_schema():
    spec = TensorSpec("x", (None, 4), "float32")
    with pytest.raises(UserError, match="unknown task"):
        ModelMetadata(task="detection", format="onnx", precision="float32", input=spec, output=spec)
    d = ModelMetadata(task="classification", format="onnx", precision="float32", input=spec, output=spec).to_dict()
    d["schema_version"] = 99
    with pytest.raises(UserError, match="upgrade edgedl"):
        ModelMetadata.from_dict(d)


def test_quantize_dequantize_match_the_affine_mapping():
    q = Quantization(scale=0.5, zero_point=-10)
    x = np.array([-100.0, -5.0, 0.0, 0.24, 0.26, 200.0], dtype=np.float32)
    qx = _quantize(x, q, np.dtype(np.int8))
    assert qx.dtype == np.int8
    assert qx.tolist() == [-128, -20, -10, -10, -9, 127]  # clipped at both ends, rounded to nearest
    assert _dequantize(qx, q).tolist() == [-59.0, -5.0, 0.0, 0.0, 0.5, 68.5]


@pytest.mark.parametrize("key", [("tflite", "float32"), ("tflite", "int8"), ("onnx", "float32"), ("onnx", "int8")])
def test_predict_returns_float_probabilities_for_any_precision(artifacts, mnist, key):
    _, ev = mnist
    model = runtime.load(artifacts[key].path, threads=1)
    out = model.predict(ev.x[:50])
    assert out.dtype == np.float32 and out.shape == (50, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=0.02)
    assert np.mean(out.argmax(1) == ev.y[:50]) > 0.85


def test_tflite_batch_size_can_change_between_calls(artifacts, mnist):
    _, ev = mnist
    model = runtime.load(artifacts[("tflite", "float32")].path, threads=1)
    a = model.predict(ev.x[:7])
    b = model.predict(ev.x[:1])
    c = model.predict(ev.x[:7])
    np.testing.assert_allclose(a[:1], b, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(a, c)


def test_wrong_input_shape_is_a_user_error(artifacts):
    model = runtime.load(artifacts[("tflite", "float32")].path)
    with pytest.raises(UserError, match=r"input has shape 2×32×32×1, the model expects N×28×28×1"):
        model.predict(np.zeros((2, 32, 32, 1), np.float32))


def test_missing_corrupt_and_mismatched_files_are_refused(tmp_path, artifacts):
    with pytest.raises(UserError, match="no such model file"):
        runtime.load(tmp_path / "nope.tflite")
    with pytest.raises(UserError, match="unknown model format '.pt'"):
        (tmp_path / "m.pt").write_bytes(b"x")
        runtime.load(tmp_path / "m.pt")

    src = artifacts[("tflite", "float32")].path
    copy = tmp_path / "copy.tflite"
    copy.write_bytes(src.read_bytes())
    with pytest.raises(UserError, match="metadata file copy.tflite.json is missing"):
        runtime.load(copy)
    sidecar_path(copy).write_text(sidecar_path(src).read_text())
    assert runtime.load(copy).metadata.precision == "float32"
    copy.write_bytes(src.read_bytes()[: len(src.read_bytes()) // 2])  # truncated in transit
    with pytest.raises(UserError, match="does not match its metadata"):
        runtime.load(copy)

    bad_onnx = tmp_path / "bad.onnx"
    bad_onnx.write_bytes(artifacts[("onnx", "float32")].path.read_bytes()[:1000])
    with pytest.raises(UserError, match="not a valid ONNX model"):
        runtime.load(bad_onnx)


def test_corrupt_tflite_with_forged_sidecar_is_refused(tmp_path, artifacts):
    src = artifacts[("tflite", "float32")].path
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\0" * 64)
    meta = json.loads(sidecar_path(src).read_text())
    meta["artifact_sha256"] = ""  # no checksum to catch it: the interpreter must
    sidecar_path(bad).write_text(json.dumps(meta))
    with pytest.raises(UserError, match="not a valid TFLite model"):
        runtime.load(bad)
