"""Mixed precision that finds and repairs int8's damage: a YOLO-style head whose one output concatenates box
coordinates (0–320) and class scores (0–1). Plain int8 quantizes the joined tensor on the boxes' range, and
the scores collapse to a couple of values; the report must show it, name the layer, and the mixed variant
must keep that layer in float and the scores within 0.05."""
import json
import re

import numpy as np
import pytest

import runtime
from runtime.report import layer_rows
from tests.conftest import run_cli

CLASSES = 80
FAST = ["--runs", "10", "--warmup", "1"]


def _yolo_like(path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def conv(name, cin, cout, k):
        const(f"{name}_w", (rng.standard_normal((cout, cin, k, k)) * (2 / (cin * k * k)) ** 0.5).astype(np.float32))
        return const(f"{name}_b", np.zeros(cout, np.float32))

    conv("c1", 3, 16, 3), conv("c2", 16, 16, 3), conv("box", 16, 4, 1), conv("cls", 16, CLASSES, 1)
    const("k320", np.float32(320.0))
    const("box_shape", np.array([1, 4, -1], np.int64)), const("cls_shape", np.array([1, CLASSES, -1], np.int64))
    node = helper.make_node
    nodes = [node("Conv", ["images", "c1_w", "c1_b"], ["t1"], name="conv1", pads=[1] * 4, strides=[2, 2]),
             node("Relu", ["t1"], ["t2"], name="relu1"),
             node("Conv", ["t2", "c2_w", "c2_b"], ["t3"], name="conv2", pads=[1] * 4),
             node("Relu", ["t3"], ["t4"], name="relu2"),
             node("Conv", ["t4", "box_w", "box_b"], ["b1"], name="box_conv"),
             node("Sigmoid", ["b1"], ["b2"], name="box_sigmoid"), node("Mul", ["b2", "k320"], ["b3"], name="box_scale"),
             node("Reshape", ["b3", "box_shape"], ["boxes"], name="box_reshape"),
             node("Conv", ["t4", "cls_w", "cls_b"], ["s1"], name="score_conv"),
             node("Sigmoid", ["s1"], ["s2"], name="score_sigmoid"),
             node("Reshape", ["s2", "cls_shape"], ["scores"], name="score_reshape"),
             node("Concat", ["boxes", "scores"], ["output0"], name="head_concat", axis=1)]  # fmt: skip
    graph = helper.make_graph(nodes, "yolo_like", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + CLASSES, 256])],
                              inits)  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    return path


@pytest.fixture(scope="module")
def detector_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("yolo")
    model = _yolo_like(root / "yolo.onnx")
    x = np.random.default_rng(1).random((120, 3, 32, 32), dtype=np.float32)
    np.save(root / "x.npy", x)
    out = root / "run"
    proc = run_cli("edgedl", "pipeline", "--model", str(model), "--eval-data", str(root / "x.npy"), "--variants",
                   "onnx_int8,onnx_int8_mixed", "--out", str(out), *FAST)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return model, x, out, json.loads((out / "report.json").read_text())


def _scores(path, x):
    model = runtime.load(path, threads=1)
    return np.concatenate([model.run(x[i : i + 1])["output0"] for i in range(len(x))])[:, 4:]


def test_the_report_shows_int8_collapsing_the_scores_and_names_the_layer(detector_run):
    model, x, out, report = detector_run
    by_name = {v["name"]: v for v in report["variants"]}
    assert report["metric"] == "channels_ok"
    int8 = by_name["onnx_int8"]
    # whole-tensor figures look healthy (the boxes' range dominates); the channels do not
    assert int8["metrics"]["snr_db"] > 30 and int8["metrics"]["channels_ok"] < 0.2
    assert int8["metrics"]["channel_psnr_min"] < 10 and int8["metric_delta"] < -80
    assert np.unique(np.round(_scores(out / "artifacts" / "onnx_int8.onnx", x[:20]), 3)).size <= 3
    worst = int8["layers"][0]
    assert (worst["node"], worst["op"]) == ("head_concat", "Concat") and worst["own_db"] < 10
    page = (out / "report" / "report.md").read_text()
    assert "int8's worst layers" in page and "| onnx_int8 | head_concat | Concat |" in page
    assert (out / "report" / "layers.png").stat().st_size > 0


def test_the_mixed_variant_keeps_the_damaging_layer_in_float_and_the_scores_within_005(detector_run):
    model, x, out, report = detector_run
    mixed = {v["name"]: v for v in report["variants"]}["onnx_int8_mixed"]
    assert mixed["metrics"]["channels_ok"] == 1.0 and mixed["metric_delta"] == 0.0
    path = out / "artifacts" / "onnx_int8_mixed.onnx"
    reference = _scores(model, x)
    assert np.abs(_scores(path, x) - reference).max() < 0.05
    kept = [layer["node"] for layer in mixed["layers"] if layer["kept_float"]]
    assert kept[0] == "head_concat"
    notes = " ".join(runtime.read_metadata(path).notes)
    assert re.search(r"int8_mixed: [0-9]+ of [0-9]+ layers kept in float \([0-9]+ nodes\): head_concat", notes)
    import onnx  # still int8 where it did not hurt: the first convolution's weights are quantized

    graph = onnx.load(str(path)).graph
    assert any(n.op_type == "DequantizeLinear" for n in graph.node)
    assert not any(n.op_type == "QuantizeLinear" and n.input[0] in ("boxes", "scores") for n in graph.node)


def _keras_yolo_like():
    from exporters.tfkeras import keras

    k = keras()
    images = k.Input((32, 32, 3))
    x = k.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(images)
    x = k.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    boxes = k.layers.Rescaling(320.0)(k.layers.Conv2D(4, 1, activation="sigmoid")(x))
    scores = k.layers.Conv2D(CLASSES, 1, activation="sigmoid")(x)
    joined = k.layers.Concatenate(name="head_concat")([k.layers.Reshape((-1, 4))(boxes), k.layers.Reshape((-1, CLASSES))(scores)])
    return k.Model(images, joined)


def test_tflite_mixed_keeps_a_concatenated_head_in_float_and_the_scores_within_005(tmp_path):
    from exporters import ModelInfo, export

    model = _keras_yolo_like()
    x = np.random.default_rng(2).random((64, 32, 32, 3), dtype=np.float32)
    info = ModelInfo(task="generic")
    art = export(model, tmp_path / "mixed.tflite", "tflite", info, precision="int8_mixed", calibration=x)
    want = model.predict(x[:32], verbose=0)[..., 4:]

    def scores(path):
        m = runtime.load(path, threads=1)
        return np.concatenate([next(iter(m.run(x[i : i + 1]).values())) for i in range(32)])[..., 4:]

    assert np.abs(scores(art.path) - want).max() < 0.05
    notes = runtime.read_metadata(art.path).notes
    alone = float(re.search(r"int8 alone (-?[0-9.]+) dB", " ".join(notes)).group(1))
    assert alone < 15  # int8 alone: the scores requantized on the boxes' scale (its export check refuses it)
    # TFLite's Concatenation shares one scale with its inputs: the damage shows at the scores' Reshape before it
    layers = layer_rows(notes)
    assert layers[0]["kept_float"] and layers[0]["own_db"] < 20 and "reshape" in layers[0]["node"].lower()
    assert any(n.startswith("int8_mixed:") and "kept in float" in n for n in notes), notes


@pytest.mark.parametrize("method", ["minmax", "percentile", "entropy"])
def test_the_onnx_calibration_method_is_chosen_and_recorded(tmp_path, method):
    from exporters import ModelInfo, convert_onnx

    model = _yolo_like(tmp_path / "yolo.onnx")
    x = np.random.default_rng(3).random((40, 3, 32, 32), dtype=np.float32)
    art = convert_onnx(model, tmp_path / "int8.onnx", "int8", ModelInfo(task="generic"), calibration=x,
                       calibration_method=method)  # fmt: skip
    assert f"int8 calibration: {method} (--onnx-calibration)" in art.metadata.notes
    boxes = runtime.load(art.path, threads=1).run(x[:1])["output0"][0, :4]
    assert np.all((boxes >= 0) & (boxes <= 330))  # a working graph: boxes stay in their range
