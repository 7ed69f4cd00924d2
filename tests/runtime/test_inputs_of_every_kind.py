"""Models that are not a batch of pictures: a recurrent voice model with its state as an input and an output
and a scalar int64 sample rate, a keyword spotter taking 16,000 samples without a batch axis, and a model
whose free size must keep a rule. Built here with onnx.helper; no downloads."""
import json

import numpy as np
import pytest

import runtime
from runtime.errors import UserError
from runtime.feeds import state_pairs
from tests.conftest import run_cli

onnx = pytest.importorskip("onnx")
from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402


def _save(nodes, inputs, outputs, inits, path, props=None):
    model = helper.make_model(helper.make_graph(nodes, path.stem, inputs, outputs, inits),
                              opset_imports=[helper.make_opsetid("", 13)], ir_version=8)  # fmt: skip
    if props:
        helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def voice_model(path):
    """Silero-VAD-shaped, at ``path``: input 1×512, state 2×1×128 in and ``stateN`` out, a scalar int64 ``sr``."""
    rng = np.random.default_rng(0)
    const = lambda name, v: numpy_helper.from_array(np.asarray(v), name)  # noqa: E731
    inits = [const("W", (rng.standard_normal((512, 128)) * 0.05).astype(np.float32)),
             const("U", (rng.standard_normal((128, 128)) * 0.2).astype(np.float32)),
             const("V", (rng.standard_normal((128, 1)) * 0.5).astype(np.float32)), const("axes", np.array([0])),
             const("zero", np.array(0)), const("one", np.array(1)), const("k", np.float32(16000.0))]  # fmt: skip
    n = helper.make_node
    nodes = [n("MatMul", ["input", "W"], ["xw"]), n("Gather", ["state", "zero"], ["h"], axis=0),
             n("MatMul", ["h", "U"], ["hu"]), n("Add", ["xw", "hu"], ["pre"]), n("Tanh", ["pre"], ["h2"]),
             n("Gather", ["state", "one"], ["c"], axis=0), n("Add", ["c", "h2"], ["c2"]),
             n("Unsqueeze", ["h2", "axes"], ["h3"]), n("Unsqueeze", ["c2", "axes"], ["c3"]),
             n("Concat", ["h3", "c3"], ["stateN"], axis=0), n("MatMul", ["h2", "V"], ["logit"]),
             n("Cast", ["sr"], ["srf"], to=T.FLOAT), n("Div", ["srf", "k"], ["srn"]),
             n("Mul", ["logit", "srn"], ["l2"]), n("Sigmoid", ["l2"], ["output"])]  # fmt: skip
    inputs = [helper.make_tensor_value_info("input", T.FLOAT, [1, 512]),
              helper.make_tensor_value_info("state", T.FLOAT, [2, 1, 128]),
              helper.make_tensor_value_info("sr", T.INT64, [])]  # fmt: skip
    outputs = [helper.make_tensor_value_info("output", T.FLOAT, [1, 1]),
               helper.make_tensor_value_info("stateN", T.FLOAT, [2, 1, 128])]  # fmt: skip
    return _save(nodes, inputs, outputs, inits, path)


@pytest.fixture(scope="module")
def voice(tmp_path_factory):
    return voice_model(tmp_path_factory.mktemp("voice") / "vad.onnx")


def _reference_loop(path, frames, sr):
    import onnxruntime as ort

    session, state, found = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]), None, []
    state = np.zeros((2, 1, 128), np.float32)
    for frame in frames:
        out, state = session.run(None, {"input": frame[None], "state": state, "sr": np.array(sr, np.int64)})
        found.append(float(out[0, 0]))
    return np.array(found)


def test_the_state_is_found_by_name_and_shape():
    from runtime.metadata import ModelMetadata, TensorSpec

    def meta(ins, outs):
        spec = lambda n, s: TensorSpec(n, s, "float32")  # noqa: E731
        return ModelMetadata(task="generic", format="onnx", precision="float32",
                             inputs=tuple(spec(*i) for i in ins), outputs=tuple(spec(*o) for o in outs))  # fmt: skip

    assert state_pairs(meta([("x", (1, 8)), ("h0", (1, 4)), ("c0", (1, 4))],
                            [("y", (1, 2)), ("hn", (1, 4)), ("cn", (1, 4))])) == {"h0": "hn", "c0": "cn"}
    assert state_pairs(meta([("x", (1, 8)), ("h_in", (1, 4))], [("h_out", (1, 4))])) == {"h_in": "h_out"}
    # a denoiser's picture in and picture out is no state; neither is an output of another name
    assert state_pairs(meta([("image", (1, 8, 8, 1))], [("image_out", (1, 8, 8, 1))])) == {}
    assert state_pairs(meta([("x", (1, 4)), ("mask", (1, 4))], [("scores", (1, 4))])) == {}
    assert state_pairs(meta([("mask", (1, 4)), ("input", (1, 4))], [("output", (1, 4))])) == {}


def test_a_recurrent_model_runs_over_a_sequence_carrying_its_state(voice, tmp_path):
    frames = np.random.default_rng(1).standard_normal((7, 512)).astype(np.float32)
    np.savez(tmp_path / "clip.npz", input=frames, sr=np.array(16000, np.int64))  # no state: it starts at zeros
    proc = run_cli("edgedl-run", str(voice), str(tmp_path / "clip.npz"), "--json")
    assert proc.returncode == 0, proc.stderr
    got = [r["outputs"]["output"]["values"][0] for r in json.loads(proc.stdout)["results"]]
    want = _reference_loop(voice, frames, 16000)
    np.testing.assert_allclose(got, want, atol=1e-6)
    # and not the same as each frame from a fresh state: the state did carry
    fresh = [_reference_loop(voice, frames[i : i + 1], 16000)[0] for i in range(len(frames))]
    assert np.abs(np.array(fresh) - want)[1:].max() > 1e-3


def test_bench_times_one_step_with_the_state_and_the_scalar_fed(voice, tmp_path):
    proc = run_cli("edgedl-run", "bench", str(voice), "--runs", "20", "--warmup", "2", "--json", str(tmp_path / "b.json"))
    assert proc.returncode == 0, proc.stderr
    figures = json.loads((tmp_path / "b.json").read_text())["variants"][0]
    # one step: a frame, the whole state and the scalar, each with its sample axis of one
    assert figures["input_shape"] == {"input": [1, 512], "state": [1, 2, 1, 128], "sr": [1]}
    assert figures["latency_ms"]["p50"] > 0


def test_an_input_without_a_batch_axis_takes_one_sample_or_several_stacked(tmp_path):
    rng = np.random.default_rng(2)
    inits = [numpy_helper.from_array((rng.standard_normal((1600, 10)) * 0.05).astype(np.float32), "W"),
             numpy_helper.from_array(np.array([10, 1600], np.int64), "shape")]  # fmt: skip
    n = helper.make_node
    nodes = [n("Reshape", ["audio", "shape"], ["frames"]), n("MatMul", ["frames", "W"], ["fw"]),
             n("ReduceMean", ["fw"], ["m"], axes=[0], keepdims=0), n("Softmax", ["m"], ["scores"], axis=0)]
    path = _save(nodes, [helper.make_tensor_value_info("audio", T.FLOAT, [16000])],
                 [helper.make_tensor_value_info("scores", T.FLOAT, [10])], inits, tmp_path / "kws.onnx")  # fmt: skip
    clips = rng.standard_normal((3, 16000)).astype(np.float32)
    np.save(tmp_path / "clips.npy", clips)
    np.save(tmp_path / "clip.npy", clips[1])
    described = run_cli("edgedl-run", str(path), "--describe").stdout
    assert "audio: float32 16000" in described and "picture" not in described
    several = json.loads(run_cli("edgedl-run", str(path), str(tmp_path / "clips.npy"), "--json").stdout)["results"]
    one = json.loads(run_cli("edgedl-run", str(path), str(tmp_path / "clip.npy"), "--json").stdout)["results"]
    assert len(several) == 3 and len(one) == 1 and one[0]["label"] == several[1]["label"]
    model = runtime.load(path, threads=1)
    np.testing.assert_allclose(model.run({"audio": clips})["scores"][1], model.run({"audio": clips[1]})["scores"][0],
                               atol=1e-6)  # fmt: skip


def test_a_size_the_model_cannot_take_is_a_shape_error_naming_the_rule(tmp_path):
    n = helper.make_node
    nodes = [n("MaxPool", ["images"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             n("Resize", ["p", "", "scales"], ["u"], mode="nearest"), n("Add", ["u", "images"], ["out"])]
    io = ([helper.make_tensor_value_info("images", T.FLOAT, [1, 3, "H", "W"])],
          [helper.make_tensor_value_info("out", T.FLOAT, [1, 3, "H", "W"])],
          [numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")])  # fmt: skip
    plain = _save(nodes, *io, tmp_path / "updown.onnx")
    strided = _save(nodes, *io, tmp_path / "detector.onnx", props={"stride": "32"})
    odd = np.random.default_rng(0).random((1, 3, 31, 64), dtype=np.float32)
    model = runtime.load(plain, threads=1)
    assert model.run(odd[:, :, :30, :30])["out"].shape == (1, 3, 30, 30)
    with pytest.raises(UserError) as failed:
        model.run(odd)
    message = str(failed.value)
    assert "cannot take images 1×3×31×64" in message and "it ran at 1×3×30×30" in message
    assert "damaged" not in message
    with pytest.raises(UserError, match=r"its height must be a multiple of 32 \(the model's stride, from its "
                                        r"metadata\); give --size 32x64"):  # fmt: skip
        runtime.load(strided, threads=1).run(odd)
