import json

import numpy as np
import pytest

import runtime
from runtime.errors import UserError
from runtime.files import sha256_file
from tests.fuzz_harness import strip_record
from runtime.metadata import ModelMetadata, Quantization, TensorSpec, sidecar_path
from runtime.quantization import Dequantizer, Quantizer


def test_metadata_round_trips_through_json():
    meta = ModelMetadata(
        task="classification", format="tflite", precision="int8",
        inputs=(TensorSpec("x", (None, 28, 28, 1), "int8", Quantization(1 / 255, -128)),),
        outputs=(TensorSpec("y", (None, 10), "int8", Quantization(1 / 256, -128)),),
        labels=tuple("0123456789"), techniques=("prune",),
    )  # fmt: skip
    back = ModelMetadata.from_dict(json.loads(meta.to_json()))
    assert back == meta
    assert back.image_shape == (28, 28, 1)


def test_metadata_rejects_unknown_task_and_newer_schema():
    spec = TensorSpec("x", (None, 4), "float32")
    with pytest.raises(UserError, match="task 'pose' is unknown"):
        ModelMetadata(task="pose", format="onnx", precision="float32", inputs=(spec,), outputs=(spec,))
    d = ModelMetadata(task="classification", format="onnx", precision="float32", inputs=(spec,), outputs=(spec,)).to_dict()
    d["schema_version"] = 99
    with pytest.raises(UserError, match="upgrade edgedl"):
        ModelMetadata.from_dict(d)


def test_quantize_dequantize_match_the_affine_mapping():
    q = Quantization(scale=0.5, zero_point=-10)
    x = np.array([-100.0, -5.0, 0.0, 0.24, 0.26, 200.0, np.inf, -np.inf, 1e30], dtype=np.float32)
    qx = Quantizer(q, np.dtype(np.int8))(x)
    assert qx.dtype == np.int8
    assert qx.tolist() == [-128, -20, -10, -10, -9, 127, 127, -128, 127]  # clipped at both ends, rounded to nearest
    assert Dequantizer(q)(qx).tolist() == [-59.0, -5.0, 0.0, 0.0, 0.5, 68.5, 68.5, -59.0, 68.5]
    assert Quantizer(q, np.dtype(np.int8))(x.astype(np.float64)).tolist() == qx.tolist()  # any real dtype in


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
    with pytest.raises(UserError, match=r"has shape 2×32×32×1, the model expects N×28×28×1"):
        model.predict(np.zeros((2, 32, 32, 1), np.float32))


def test_an_artifact_is_one_file_and_a_damaged_copy_is_refused_by_name(tmp_path, artifacts):
    with pytest.raises(UserError, match="no such model file"):
        runtime.load(tmp_path / "nope.tflite")
    with pytest.raises(UserError, match="unknown model format '.pt'"):
        (tmp_path / "m.pt").write_bytes(b"x")
        runtime.load(tmp_path / "m.pt")
    for key in (("tflite", "int8"), ("onnx", "float32")):
        data = artifacts[key].path.read_bytes()
        copy = tmp_path / f"copy.{key[0]}"
        copy.write_bytes(data)
        assert runtime.load(copy).metadata.origin == "edgedl"  # no sidecar needed
        flipped = bytearray(data)
        flipped[len(data) // 2] ^= 0x10  # one bit, in the weights
        copy.write_bytes(bytes(flipped))
        with pytest.raises(UserError, match=f"copy.{key[0]}: the file is damaged"):
            runtime.load(copy)
        copy.write_bytes(data[: len(data) // 2])  # truncated in transit
        with pytest.raises(UserError, match=f"copy.{key[0]}"):
            runtime.load(copy)


def test_an_older_artifact_with_a_sidecar_still_loads_and_is_checked(tmp_path, artifacts):
    src = artifacts[("tflite", "float32")].path
    legacy = tmp_path / "old.tflite"
    legacy.write_bytes(strip_record(src.read_bytes(), ".tflite"))
    assert runtime.load(legacy).metadata.origin == "file"  # another tool's model: what the file says
    old = runtime.read_metadata(src).to_dict()
    old.update(schema_version=1, input=old["inputs"][0], output=old["outputs"][0], artifact_sha256=sha256_file(legacy))
    sidecar_path(legacy).write_text(json.dumps(old))
    meta = runtime.load(legacy).metadata
    assert (meta.origin, meta.task, meta.labels) == ("edgedl", "classification", tuple("0123456789"))
    legacy.write_bytes(legacy.read_bytes()[:-100])
    with pytest.raises(UserError, match="does not match its metadata"):
        runtime.load(legacy)


def test_garbage_with_the_right_suffix_is_not_a_model(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\0" * 64)
    with pytest.raises(UserError, match="bad.tflite: not a TFLite flatbuffer"):
        runtime.load(bad)
    text = tmp_path / "notes.onnx"
    text.write_text("hello, I am a text file")
    with pytest.raises(UserError, match="notes.onnx: not an ONNX protobuf"):
        runtime.load(text)
