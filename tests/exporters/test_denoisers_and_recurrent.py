"""Fully convolutional and recurrent models: any image size, tiling, no state between calls, no Flex."""
import json

import numpy as np
import pytest

import runtime
from runtime.denoise import denoise
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def small_dncnn():
    from edgedl.models import create_model

    return create_model("dncnn", depth=3, width=8)  # receptive field 7×7: tiles with overlap 16 are exact


@pytest.fixture(scope="module")
def dncnn_artifacts(tmp_path_factory, small_dncnn):
    from exporters import ModelInfo, export

    out = tmp_path_factory.mktemp("dncnn")
    calib = np.random.default_rng(0).random((32, 40, 40, 1)).astype(np.float32)
    info = ModelInfo(task="denoising")
    return {
        (fmt, p): export(small_dncnn, out / f"d_{p}.{fmt}", fmt, info, precision=p, calibration=calib,
                         check_inputs=calib[:4])  # fmt: skip
        for fmt, p in (("tflite", "float32"), ("tflite", "int8"), ("onnx", "float32"), ("onnx", "int8"))
    }


@pytest.mark.parametrize("key", [("tflite", "float32"), ("tflite", "int8"), ("onnx", "float32"), ("onnx", "int8")])
def test_denoiser_output_has_the_input_size(dncnn_artifacts, small_dncnn, key):
    model = runtime.load(dncnn_artifacts[key].path, threads=1)
    assert model.metadata.input.shape == (None, None, None, 1)
    rng = np.random.default_rng(1)
    for h, w in ((17, 23), (64, 64), (100, 37), (28, 28)):
        x = rng.random((1, h, w, 1)).astype(np.float32)
        y = model.predict(x)
        assert y.shape == (1, h, w, 1)
        atol = 1e-4 if key[1] == "float32" else 0.1
        np.testing.assert_allclose(y, small_dncnn.predict(x, verbose=0), atol=atol)


def test_tiles_give_the_same_pixels_as_the_whole_image(dncnn_artifacts):
    model = runtime.load(dncnn_artifacts[("tflite", "float32")].path, threads=1)
    image = np.random.default_rng(2).random((150, 130, 1)).astype(np.float32)
    whole = denoise(model, image, tile=512)
    tiled = denoise(model, image, tile=64, overlap=16)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    with pytest.raises(ValueError, match="tile"):
        denoise(model, image, tile=32, overlap=16)


@pytest.fixture(scope="module")
def dilated_artifacts(tmp_path_factory):
    """ircnn_lite's plan (dilations 1-2-3-4-3-2-1, a 33 × 33 view) at width 8, briefly fitted so its
    batch-norm statistics are not the identity, exported to every format."""
    from edgedl.models import create_model
    from exporters import ModelInfo, export

    model = create_model("ircnn_lite", width=8)
    rng = np.random.default_rng(0)
    calib = rng.random((32, 40, 40, 1)).astype(np.float32)
    model.compile("adam", "mse")
    model.fit(calib, calib * 0.9, epochs=1, verbose=0)
    out = tmp_path_factory.mktemp("ircnn")
    arts = {(fmt, p): export(model, out / f"i_{p}.{fmt}", fmt, ModelInfo(task="denoising"), precision=p,
                             calibration=calib, check_inputs=calib[:4])  # fmt: skip
            for fmt, p in (("tflite", "float32"), ("tflite", "int8"), ("onnx", "float32"))}
    return model, arts


def test_a_dilated_denoiser_keeps_any_size_and_tiles_without_seams(dilated_artifacts):
    keras_model, arts = dilated_artifacts
    rng = np.random.default_rng(4)
    for key, art in arts.items():
        model = runtime.load(art.path, threads=1)
        for h, w in ((5, 7), (33, 21), (97, 130)):  # smaller than the widest dilation, odd, larger
            x = rng.random((1, h, w, 1)).astype(np.float32)
            y = model.predict(x)
            assert y.shape == x.shape, (key, y.shape)
            if key[1] == "float32":
                np.testing.assert_allclose(y, keras_model.predict(x, verbose=0), atol=1e-4)
    from edgedl.deploy.targets import tflite_operators

    for precision in ("float32", "int8"):  # one convolution with dilation factors, not a space-to-batch detour
        kinds = [name for name, _ in tflite_operators(arts[("tflite", precision)].path)]
        assert "CONV_2D" in kinds and not {"SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND", "MUL"} & set(kinds), kinds
    import onnx

    graph = onnx.load(str(arts[("onnx", "float32")].path)).graph
    assert "SpaceToDepth" not in {n.op_type for n in graph.node} and len(graph.node) < 30  # was 330 nodes
    dilations = [list(a.ints) for n in graph.node if n.op_type == "Conv" for a in n.attribute if a.name == "dilations"]
    assert dilations == [[d, d] for d in (1, 2, 3, 4, 3, 2, 1)]
    model = runtime.load(arts[("tflite", "int8")].path, threads=1)  # builtin int8 kernels and XNNPACK alike
    image = rng.random((300, 260, 1)).astype(np.float32)
    whole = denoise(model, image, tile=512)
    tiled = denoise(model, image, tile=128, overlap=16)  # 16 = half the 33-pixel view: no seam
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_edgedl_run_writes_denoised_images_of_the_same_size(dncnn_artifacts, tmp_path):
    from PIL import Image

    (tmp_path / "in").mkdir()
    rng = np.random.default_rng(3)
    for name, size in (("a.png", (40, 60)), ("b.png", (33, 21))):
        Image.fromarray(rng.integers(0, 256, size, dtype=np.uint8)).save(tmp_path / "in" / name)
    model = str(dncnn_artifacts[("tflite", "int8")].path)
    proc = run_cli("edgedl-run", model, str(tmp_path / "in"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    for name, size in (("a.png", (40, 60)), ("b.png", (33, 21))):
        with Image.open(tmp_path / "out" / name) as img:
            assert (img.height, img.width) == size and img.mode == "L"
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [r["shape"] for r in summary["results"]] == [[40, 60, 1], [33, 21, 1]]
    no_out = run_cli("edgedl-run", model, str(tmp_path / "in"))
    assert no_out.returncode == 2 and "give --out DIR" in no_out.stderr


def _ops(path):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_path=str(path),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)  # fmt: skip
    interp.allocate_tensors()
    return {op["op_name"] for op in interp._get_ops_details()}


@pytest.fixture(scope="module")
def recurrent_artifacts(tmp_path_factory, mnist):
    from edgedl.models import create_model
    from exporters import ModelInfo, export

    out = tmp_path_factory.mktemp("recurrent")
    lstm = create_model("lstm", units=16)
    seq = create_model("seq_denoiser", filters=4)
    calib_seq = np.random.default_rng(4).random((8, 8, 32, 32, 1)).astype(np.float32)
    arts = {}
    for p in ("float32", "float16", "dynamic", "int8"):
        arts[("lstm", p)] = export(lstm, out / f"lstm_{p}.tflite", "tflite", ModelInfo("classification"),
                                   precision=p, calibration=mnist[0].x[:64], check_inputs=mnist[1].x[:16])
        arts[("seq", p)] = export(seq, out / f"seq_{p}.tflite", "tflite", ModelInfo("denoising"),
                                  precision=p, calibration=calib_seq, check_inputs=calib_seq[:2])  # fmt: skip
    arts[("lstm", "onnx")] = export(lstm, out / "lstm.onnx", "onnx", ModelInfo("classification"),
                                    check_inputs=mnist[1].x[:16])  # fmt: skip
    return arts


@pytest.mark.parametrize("model", ["lstm", "seq"])
@pytest.mark.parametrize("precision", ["float32", "float16", "dynamic", "int8"])
def test_recurrent_artifacts_use_builtin_ops_and_keep_no_state(recurrent_artifacts, mnist, model, precision):
    path = recurrent_artifacts[(model, precision)].path
    ops = _ops(path)
    assert not [op for op in ops if op.startswith("Flex") or op in ("CUSTOM", "DELEGATE")], ops
    assert "WHILE" not in ops  # unrolled: no loop whose state could carry over
    rng = np.random.default_rng(5)
    shape = (1, 28, 28, 1) if model == "lstm" else (1, 8, 32, 32, 1)
    a, b = rng.random(shape).astype(np.float32), rng.random(shape).astype(np.float32)
    reused = runtime.load(path, threads=1)
    in_a_row = [reused.predict(a), reused.predict(b), reused.predict(a)]
    fresh_a, fresh_b = runtime.load(path).predict(a), runtime.load(path).predict(b)
    np.testing.assert_array_equal(in_a_row[0], fresh_a)
    np.testing.assert_array_equal(in_a_row[1], fresh_b)
    np.testing.assert_array_equal(in_a_row[2], fresh_a)


def test_lstm_onnx_runs_and_matches_tflite(recurrent_artifacts, mnist):
    x = mnist[1].x[:10]
    onnx_out = runtime.load(recurrent_artifacts[("lstm", "onnx")].path).predict(x)
    tflite_out = runtime.load(recurrent_artifacts[("lstm", "float32")].path).predict(x)
    np.testing.assert_allclose(onnx_out, tflite_out, atol=1e-5)


def test_frames_one_at_a_time_carry_the_sequence_state(recurrent_artifacts):
    from runtime.errors import UserError
    from runtime.sequence import FrameStream

    model = runtime.load(recurrent_artifacts[("seq", "float32")].path, threads=1)
    rng = np.random.default_rng(6)
    sequence = rng.random((12, 32, 32, 1)).astype(np.float32)
    stream = FrameStream(model)
    streamed = [stream.push(frame) for frame in sequence]
    # Frame t's output is the whole-sequence model's last output over frames t-7..t.
    for t in range(7, 12):
        whole = model.predict(sequence[None, t - 7 : t + 1])[0, -1]
        np.testing.assert_allclose(streamed[t], whole, atol=1e-6)
    # The history matters: the same frame after a different past gives a different answer.
    stream.reset()
    alone = stream.push(sequence[11])
    assert np.abs(alone - streamed[11]).max() > 1e-4
    with pytest.raises(UserError, match="not a sequence model"):
        FrameStream(runtime.load(recurrent_artifacts[("lstm", "float32")].path))


def test_edgedl_run_streams_a_clip_of_any_length_through_a_sequence_model(recurrent_artifacts, tmp_path):
    clip = np.random.default_rng(7).random((11, 32, 32, 1)).astype(np.float32)
    np.save(tmp_path / "clip.npy", clip)
    model = str(recurrent_artifacts[("seq", "int8")].path)
    proc = run_cli("edgedl-run", model, str(tmp_path / "clip.npy"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert np.load(tmp_path / "out" / "clip.npy").shape == (11, 32, 32, 1)
    np.save(tmp_path / "bad.npy", clip[:, :16])
    bad = run_cli("edgedl-run", model, str(tmp_path / "bad.npy"), "--out", str(tmp_path / "out"))
    assert bad.returncode == 2 and "is neither frames of (32, 32, 1) nor sequences" in bad.stderr
