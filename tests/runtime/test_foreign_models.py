"""Models edgedl did not make: a two-output ``.tflite`` from plain TensorFlow and an NCHW ``.onnx`` with free
batch and spatial dimensions, neither with edgedl's metadata, through describe, run, bench and bundle.
Results are checked against the framework that made each model."""
import json

import numpy as np
import pytest
from PIL import Image

import runtime
from tests.conftest import run_cli

pytestmark = pytest.mark.tf  # the models are made with TensorFlow and onnx here


@pytest.fixture(scope="module")
def two_output_tflite(tmp_path_factory):
    """A detector-like Keras model (boxes and class scores) converted by plain ``TFLiteConverter``."""
    from exporters.tfkeras import keras, tf

    k = keras()
    tf().random.set_seed(0)
    x = k.Input((32, 32, 3), name="image")
    h = k.layers.Conv2D(8, 3, activation="relu")(x)
    h = k.layers.GlobalAveragePooling2D()(h)
    boxes = k.layers.Dense(4, name="boxes")(h)
    scores = k.layers.Dense(3, activation="softmax", name="scores")(h)
    model = k.Model(x, [boxes, scores])
    path = tmp_path_factory.mktemp("foreign") / "detector.tflite"
    path.write_bytes(tf().lite.TFLiteConverter.from_keras_model(model).convert())
    return path, model


@pytest.fixture(scope="module")
def nchw_onnx(tmp_path_factory):
    """A PyTorch-style graph: NCHW input with free batch, height and width; a map and a pooled output."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["images", "w"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["mask"]),
        helper.make_node("GlobalAveragePool", ["mask"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes, "segmenter",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", 4, "height", "width"]),
         helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])],
        [w],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="not-edgedl",
                              ir_version=8)  # what PyTorch's exporter writes for opset 13-17
    path = tmp_path_factory.mktemp("foreign") / "segmenter.onnx"
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    rgb = np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    Image.fromarray(rgb).save(path)
    return path, rgb


def test_a_two_output_tflite_without_metadata_runs_as_tensorflow_computes_it(two_output_tflite, photo):
    path, keras_model = two_output_tflite
    model = runtime.load(path)
    assert model.metadata.origin == "file" and len(model.output_names) == 2
    assert "assumed pixel / 255" in model.metadata.notes[0]
    proc = run_cli("edgedl-run", str(path), str(photo[0]), "--json")
    assert proc.returncode == 0, proc.stderr
    (result,) = json.loads(proc.stdout)["results"]
    resized = np.asarray(Image.open(photo[0]).convert("RGB").resize((32, 32), Image.Resampling.BILINEAR))
    expected = [np.asarray(o)[0] for o in keras_model(resized[None].astype(np.float32) / 255.0)]
    got = {o["shape"][0]: np.array(o["values"]) for o in result["outputs"].values()}
    np.testing.assert_allclose(got[4], expected[0], atol=0.02)  # boxes (bilinear resize differs by a level or so)
    np.testing.assert_allclose(got[3], expected[1], atol=0.02)  # scores
    assert result["label"] in ("0", "1", "2") and len(result["top"]) == 1  # the scores are a score vector


def test_an_nchw_onnx_with_free_dimensions_describes_runs_and_saves_every_output(nchw_onnx, photo, tmp_path):
    import onnxruntime as ort

    proc = run_cli("edgedl-run", str(nchw_onnx), "--describe")
    assert proc.returncode == 0, proc.stderr
    assert "images: float32 N×3×?×?" in proc.stdout and "laid out NCHW" in proc.stdout
    assert "kept at its own size (the model's is free)" in proc.stdout
    out = tmp_path / "outs"
    proc = run_cli("edgedl-run", str(nchw_onnx), str(photo[0]), "--json", "--save-outputs", str(out),
                   "--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (result,) = json.loads(proc.stdout)["results"]
    assert result["outputs"]["mask"]["shape"] == [4, 30, 40] and "summary" in result["outputs"]["mask"]
    x = ((photo[1] / 255.0 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]).astype(np.float32)
    mask, logits = ort.InferenceSession(str(nchw_onnx)).run(None, {"images": x.transpose(2, 0, 1)[None]})
    np.testing.assert_allclose(np.load(next(out.glob("*.mask.npy"))), mask[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.load(next(out.glob("*.logits.npy"))), logits[0], rtol=1e-4, atol=1e-4)
    np.save(tmp_path / "batch.npy", np.stack([x.transpose(2, 0, 1)] * 2))  # .npy in the model's own layout
    proc = run_cli("edgedl-run", str(nchw_onnx), str(tmp_path / "batch.npy"), "--json")
    assert proc.returncode == 0, proc.stderr
    values = json.loads(proc.stdout)["results"][1]["outputs"]["logits"]["values"]
    np.testing.assert_allclose(values, logits[0], rtol=1e-4, atol=1e-4)


def test_bench_times_a_foreign_model_without_data_and_asks_for_free_sizes(nchw_onnx, two_output_tflite, tmp_path):
    proc = run_cli("edgedl-run", "bench", str(nchw_onnx), "--runs", "5")
    assert proc.returncode == 2 and "give --shape images=1x3xSIZExSIZE with the sizes to time" in proc.stderr
    out = tmp_path / "b.json"
    proc = run_cli("edgedl-run", "bench", str(nchw_onnx), "--runs", "5", "--shape", "images=1x3x64x48", "--json",
                   str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "no accuracy measured" in proc.stdout
    (record,) = json.loads(out.read_text())["variants"]
    assert record["input_shape"] == [1, 3, 64, 48] and record["metrics"] == {} and record["latency_ms"]["runs"] == 5
    proc = run_cli("edgedl-run", "bench", str(two_output_tflite[0]), "--runs", "5")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("target", ["rpi-arm64", "rpi-armv7", "jetson"])
def test_foreign_models_bundle_for_the_targets_that_can_run_them(two_output_tflite, nchw_onnx, tmp_path, target):
    model = nchw_onnx if target == "jetson" else two_output_tflite[0]
    proc = run_cli("edgedl", "bundle", str(model), "--target", target, "--out", str(tmp_path / "b.tar.gz"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    root = runtime.bundle.extract(tmp_path / "b.tar.gz", tmp_path / "unpacked")
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["eval"] is None and manifest["artifacts"][0]["task"] == "generic"
    wrong = two_output_tflite[0] if target == "jetson" else nchw_onnx
    proc = run_cli("edgedl", "bundle", str(wrong), "--target", target, "--out", str(tmp_path / "c.tar.gz"))
    assert proc.returncode == 2 and f"{target} runs ." in proc.stderr and not (tmp_path / "c.tar.gz").exists()


@pytest.fixture(scope="module")
def nms_like_onnx(tmp_path_factory):
    """A detector's shape: a fixed batch of 1, and an output whose length depends on the picture."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    threshold = numpy_helper.from_array(np.array(0.8, np.float32), "threshold")
    nodes = [
        helper.make_node("ReduceMax", ["images"], ["peak"], axes=[1], keepdims=1),
        helper.make_node("Greater", ["peak", "threshold"], ["hot"]),
        helper.make_node("NonZero", ["hot"], ["where"]),
        helper.make_node("Transpose", ["where"], ["boxes"], perm=[1, 0]),
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=[2, 3], keepdims=0),
        helper.make_node("Softmax", ["mean"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes, "detector", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("boxes", TensorProto.INT64, ["detections", 4]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 3])], [threshold],
    )  # fmt: skip
    path = tmp_path_factory.mktemp("nms") / "detector.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    return path


def test_a_batch_1_detector_with_a_variable_number_of_boxes_runs_on_several_pictures(nms_like_onnx, tmp_path):
    import onnxruntime as ort

    rng = np.random.default_rng(2)
    expected = []
    session = ort.InferenceSession(str(nms_like_onnx))
    for i in range(3):
        rgb = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(tmp_path / f"p{i}.png")
        x = rgb.astype(np.float32) * np.float32(1 / 255)  # as the runtime normalises: same bits at the threshold
        expected.append(session.run(None, {"images": x.transpose(2, 0, 1)[None]}))
    proc = run_cli("edgedl-run", str(nms_like_onnx), str(tmp_path), "--json", "--save-outputs", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)["results"]
    assert len({r["outputs"]["boxes"]["shape"][0] for r in results}) > 1  # the pictures gave different counts
    for i, r in enumerate(results):
        np.testing.assert_array_equal(np.load(tmp_path / "o" / f"{i:04d}_p{i}.boxes.npy"), expected[i][0])
        np.testing.assert_allclose([t["score"] for t in r["top"]][:1], [expected[i][1][0].max()], rtol=1e-5)
    proc = run_cli("edgedl-run", "bench", str(nms_like_onnx), "--runs", "5")
    assert proc.returncode == 0, proc.stderr
