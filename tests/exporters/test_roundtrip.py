"""Every registered format and precision: export, run through runtime/, compare with Keras."""
import json

import numpy as np
import pytest

import runtime
from exporters import get_exporter, list_formats
from exporters._check import TOLERANCE

CASES = [(fmt, p) for fmt in list_formats() for p in get_exporter(fmt).config_cls.PRECISIONS]


def test_every_format_is_covered():
    assert {"tflite", "onnx"} <= set(list_formats())
    assert ("tflite", "int8") in CASES and ("onnx", "int8") in CASES


@pytest.mark.parametrize("fmt,precision", CASES)
def test_artifact_matches_keras(artifacts, trained_cnn, mnist, fmt, precision):
    _, ev = mnist
    art = artifacts[(fmt, precision)]
    x = ev.x[100:300]  # not the inputs the exporter checked with
    expected = trained_cnn.predict(x, verbose=0)
    got = runtime.load(art.path, threads=1).predict(x)
    # float32 must match to rounding; quantized variants within the documented looser tolerance.
    atol = 1e-5 if precision == "float32" else 10 * TOLERANCE[precision]
    np.testing.assert_allclose(got, expected, atol=atol)
    agreement = np.mean(got.argmax(1) == expected.argmax(1))
    assert agreement >= (1.0 if precision == "float32" else 0.97)


@pytest.mark.parametrize("fmt,precision", CASES)
def test_artifact_describes_itself(artifacts, model_info, fmt, precision):
    meta = runtime.read_metadata(artifacts[(fmt, precision)].path)
    assert (meta.format, meta.precision, meta.task) == (fmt, precision, "classification")
    assert meta.labels == model_info.labels
    assert meta.source_sha256 == model_info.source_sha256 and len(meta.source_sha256) == 64
    assert meta.input.shape == (None, 28, 28, 1) and meta.output.shape[-1] == 10
    assert meta.normalization.scale == pytest.approx((1 / 255,)) and meta.origin == "edgedl"
    assert meta.edgedl_version


def test_tflite_int8_is_integer_end_to_end(artifacts):
    from ai_edge_litert.interpreter import Interpreter

    art = artifacts[("tflite", "int8")]
    assert art.input.dtype == "int8" and art.input.quantization is not None
    assert art.output.dtype == "int8" and art.output.quantization is not None
    interp = Interpreter(model_path=str(art.path))
    float_tensors = [t["name"] for t in interp.get_tensor_details() if t["dtype"] == np.float32]
    assert float_tensors == []  # a "quantized" model that kept float ops fails here
    ops = {op["op_name"] for op in interp._get_ops_details()}
    assert "DEQUANTIZE" not in ops and "CONV_2D" in ops


def test_tflite_dynamic_and_float16_store_smaller_weights(artifacts):
    sizes = {p: artifacts[("tflite", p)].size_bytes for p in ("float32", "float16", "dynamic")}
    assert sizes["float16"] < 0.6 * sizes["float32"]
    assert sizes["dynamic"] < 0.35 * sizes["float32"]


def _onnx_ops(path):
    import onnx

    model = onnx.load(str(path))
    return [n.op_type for n in model.graph.node], {i.name: i.data_type for i in model.graph.initializer}


def test_onnx_int8_is_qdq_with_int8_weights(artifacts):
    import onnx

    ops, inits = _onnx_ops(artifacts[("onnx", "int8")].path)
    assert ops.count("QuantizeLinear") >= 4 and ops.count("DequantizeLinear") >= 8
    int8_inits = [n for n, t in inits.items() if t == onnx.TensorProto.INT8]
    assert len(int8_inits) >= 5  # the five weight tensors of the CNN
    ops_f, _ = _onnx_ops(artifacts[("onnx", "float32")].path)
    assert "QuantizeLinear" not in ops_f


def test_onnx_dynamic_quantizes_weights(artifacts):
    ops, _ = _onnx_ops(artifacts[("onnx", "dynamic")].path)
    assert "DynamicQuantizeLinear" in ops and "MatMulInteger" in ops
    assert "ConvInteger" not in ops  # onnxruntime's dynamic Conv is slower than float32: left in float


def test_onnx_metadata_is_inside_the_file(artifacts):
    import onnx

    props = {p.key: p.value for p in onnx.load(str(artifacts[("onnx", "int8")].path)).metadata_props}
    assert json.loads(props["edgedl"])["precision"] == "int8"


def _activation_types(path) -> set:
    """The element types of the zero points the graph's QuantizeLinear nodes quantize activations to."""
    import onnx

    model = onnx.load(str(path))
    inits = {i.name: i.data_type for i in model.graph.initializer}
    return {inits[n.input[2]] for n in model.graph.node if n.op_type == "QuantizeLinear" and len(n.input) > 2}


def test_onnx_int8_activations_follow_the_processor():
    from exporters import activation_type
    from runtime.errors import UserError

    assert activation_type("auto", arch="x86_64", extensions=["avx512_vnni"]) == ("uint8", False)
    assert activation_type("auto", arch="x86_64", extensions=["avx2"]) == ("uint8", True)  # no VNNI: 7-bit weights
    assert activation_type("auto", arch="aarch64", extensions=["asimd"]) == ("int8", False)
    assert activation_type("int8", arch="x86_64", extensions=[]) == ("int8", False)
    with pytest.raises(UserError, match="--onnx-activations 'u8' is not one of auto, uint8, int8"):
        activation_type("u8", arch="x86_64", extensions=[])


def test_onnx_int8_activation_type_is_chosen_and_recorded(artifacts, trained_cnn, model_info, mnist, tmp_path):
    import onnx

    from exporters import activation_type, export

    form, _ = activation_type()  # this machine's
    auto = artifacts[("onnx", "int8")]
    want = onnx.TensorProto.UINT8 if form == "uint8" else onnx.TensorProto.INT8
    assert _activation_types(auto.path) == {want}
    assert any(f"int8 activations: {form}" in n for n in runtime.read_metadata(auto.path).notes)
    other = "int8" if form == "uint8" else "uint8"
    train, ev = mnist
    art = export(trained_cnn, tmp_path / "other.onnx", "onnx", model_info, precision="int8",
                 calibration=train.x[:200], check_inputs=ev.x[:32], activations=other)  # fmt: skip
    assert _activation_types(art.path) == {onnx.TensorProto.UINT8 if other == "uint8" else onnx.TensorProto.INT8}
    assert any(f"int8 activations: {other}" in n for n in art.metadata.notes)
    got = runtime.load(art.path, threads=1).predict(ev.x[100:300])
    assert np.mean(got.argmax(1) == trained_cnn.predict(ev.x[100:300], verbose=0).argmax(1)) >= 0.97


def test_an_opset_11_graph_with_conv_then_add_quantizes_to_a_valid_int8(tmp_path):
    """Older exporters wrote a convolution's bias as an Add after it. onnxruntime's pre-processing fuses the
    two, and its per-channel bias then needed opset 13's DequantizeLinear axis: an invalid graph."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from exporters import ModelInfo, convert_onnx

    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.normal(size=s).astype(np.float32) * 0.3, n)
               for n, s in (("w", (8, 3, 3, 3)), ("b", (1, 8, 1, 1)), ("w2", (4, 8, 3, 3)), ("b2", (1, 4, 1, 1)))]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Add", ["c", "b"], ["a"]),
             helper.make_node("Relu", ["a"], ["r"]), helper.make_node("Conv", ["r", "w2"], ["c2"], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c2", "b2"], ["y"])]  # fmt: skip
    graph = helper.make_graph(nodes, "old", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 24, 24])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 24, 24])], weights)  # fmt: skip
    source = tmp_path / "opset11.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], ir_version=6), source)
    x = rng.random((48, 3, 24, 24), dtype=np.float32)
    art = convert_onnx(source, tmp_path / "int8.onnx", "int8", ModelInfo(task="generic", layout="NCHW"),
                       calibration=x[:32], check=x[32:])  # fmt: skip
    notes = " ".join(art.metadata.notes)
    assert "opset 11 brought to 13" in notes and "int8 form: QDQ, per-channel, pre-processed" in notes
    got = runtime.load(art.path, threads=1).predict(x[32:])
    want = runtime.load(source, threads=1).predict(x[32:])
    assert np.mean(np.abs(got - want)) < 0.05 * np.mean(np.abs(want))
