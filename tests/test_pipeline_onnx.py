"""An .onnx made elsewhere through the pipeline: edgedl's ONNX variants of it, calibrated on the user's own
pictures as the model takes them, measured and reported like any run; ranked by fidelity without labels."""
import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

import runtime
from tests.conftest import run_cli

FAST = ["--runs", "10", "--warmup", "1"]


@pytest.fixture(scope="module")
def pytorch_like_onnx(tmp_path_factory):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.normal(size=(8, 3, 3, 3)).astype(np.float32), "w"),
               numpy_helper.from_array(rng.normal(size=(8, 3)).astype(np.float32), "fc")]  # fmt: skip
    nodes = [helper.make_node("Conv", ["images", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]), helper.make_node("GlobalAveragePool", ["r"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]), helper.make_node("MatMul", ["f", "fc"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["probs"], axis=1)]  # fmt: skip
    graph = helper.make_graph(nodes, "classifier",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 16, 16])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 3])], weights)  # fmt: skip
    path = tmp_path_factory.mktemp("onnx") / "classifier.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    return path


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    root = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(1)
    for name in ("cat", "dog", "fox"):
        (root / name).mkdir()
        for i in range(40):
            Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def test_an_onnx_model_gets_its_variants_and_a_report(pytorch_like_onnx, pictures, tmp_path):
    out = tmp_path / "run"
    proc = run_cli("edgedl", "pipeline", "--model", str(pytorch_like_onnx), "--eval-data", str(pictures), "--out",
                   str(out), "--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225", "--resize", "crop",
                   *FAST)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    by_name = {v["name"]: v for v in report["variants"]}
    assert list(by_name)[:5] == ["original", "onnx_float32", "onnx_float16", "onnx_dynamic", "onnx_int8"]
    assert list(by_name)[5:] in ([], ["onnx_int8_mixed"])  # mixed where int8 misses the classifier's target
    # The 24×20 pictures were cropped to the input's square, and the artifacts say so: the device does the same.
    from runtime.images import load_image, to_layout
    from runtime.runfolder import read_eval_arrays

    device = runtime.read_metadata(out / "artifacts" / "onnx_float32.onnx")
    assert device.resize == "crop"
    stretched = replace(device, resize="stretch")
    seen = read_eval_arrays(out / "eval.npz")["x"][0]
    for meta, expected in ((device, True), (stretched, False)):  # one of the pictures, fitted by crop alone
        fitted = [to_layout(load_image(f, meta)[None], meta)[0] for f in sorted(pictures.glob("*/*.png"))]
        assert any(np.allclose(seen, f, atol=1e-5) for f in fitted) == expected
    assert report["metric"] == "accuracy" and all(v["status"] == "ok" for v in by_name.values()), report
    assert by_name["onnx_float32"]["metrics"]["top1_agreement"] == 1.0
    assert by_name["onnx_float16"]["size_bytes"] < by_name["onnx_float32"]["size_bytes"]
    assert by_name["onnx_int8"]["metrics"]["top1_agreement"] > 0.8
    meta = runtime.read_metadata(out / "artifacts" / "onnx_int8.onnx")
    assert (meta.layout, meta.task, meta.labels) == ("NCHW", "classification", ("cat", "dog", "fox"))
    assert meta.normalization.offset == pytest.approx((-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225))
    assert "calibrating on the first 24 evaluation inputs" in " ".join(proc.stderr.split())


def test_without_labels_variants_are_ranked_by_their_agreement_with_the_original(pytorch_like_onnx, pictures,
                                                                                  tmp_path):  # fmt: skip
    flat = tmp_path / "flat"
    flat.mkdir()
    for i, f in enumerate(sorted(pictures.glob("*/*.png"))[:60]):
        (flat / f"{i}.png").write_bytes(f.read_bytes())
    out = tmp_path / "run"
    proc = run_cli("edgedl", "pipeline", "--model", str(pytorch_like_onnx), "--eval-data", str(flat), "--out",
                   str(out), "--variants", "post", *FAST)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["metric"] == "top1_agreement" and report["task"] == "generic"
    original, *variants = report["variants"]
    assert original["metric_delta"] == 0.0
    for v in variants:  # each variant's shortfall from the original's agreement with itself (1.0), in points
        assert v["metric_delta"] == pytest.approx((v["metrics"]["top1_agreement"] - 1.0) * 100)
    assert report["variants"][1]["name"] == "onnx_float32" and report["variants"][1]["metric_delta"] == 0.0
    proc = run_cli("edgedl", "select", str(out), "--max-drop", "0")  # the run folder, as its report.json
    assert proc.returncode == 0, proc.stderr
    chosen = json.loads((out / "selected" / "selection.json").read_text())["variant"]
    assert next(v for v in report["variants"] if v["name"] == chosen)["metric_delta"] == 0.0  # the original too


def test_params_and_macs_are_counted_from_the_artifacts_operators(pytorch_like_onnx, artifacts, trained_cnn):
    from edgedl.deploy.artifact_stats import artifact_stats
    from edgedl.compress import model_stats

    # 16×16 pictures: a 3×3 convolution to 8 channels, then 8 → 3.
    assert artifact_stats(pytorch_like_onnx, {"images": (1, 3, 16, 16)}) == {
        "params": 8 * 3 * 3 * 3 + 8 * 3, "macs": 16 * 16 * 8 * 27 + 8 * 3}
    keras = model_stats(trained_cnn)
    for key in (("tflite", "float32"), ("tflite", "int8"), ("onnx", "float32")):
        counted = artifact_stats(artifacts[key].path)
        assert counted["macs"] == keras["macs"], key
        assert abs(counted["params"] - keras["params"]) <= 0.01 * keras["params"], key  # biases as stored


def test_a_variant_with_nothing_to_do_is_left_out_by_default_and_refused_when_asked_for(tmp_path):
    """A graph of convolutions alone has no matrix product for dynamic quantization to speed up."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(1, 1, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["noisy", "w"], ["clean"], pads=[1, 1, 1, 1])], "denoiser",
                              [helper.make_tensor_value_info("noisy", TensorProto.FLOAT, ["N", 1, 12, 12])],
                              [helper.make_tensor_value_info("clean", TensorProto.FLOAT, ["N", 1, 12, 12])], [w])  # fmt: skip
    model = tmp_path / "conv.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), model)
    np.save(tmp_path / "x.npy", np.random.default_rng(1).random((30, 1, 12, 12), dtype=np.float32))
    common = ["edgedl", "pipeline", "--model", str(model), "--eval-data", str(tmp_path / "x.npy"), *FAST]
    proc = run_cli(*common, "--out", str(tmp_path / "all"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = [v["name"] for v in json.loads((tmp_path / "all" / "report.json").read_text())["variants"]]
    assert names == ["original", "onnx_float32", "onnx_float16", "onnx_int8"]
    assert "skipped: onnx_dynamic: dynamic quantization: the graph has no MatMul or Gemm" in " ".join(proc.stderr.split())
    proc = run_cli(*common, "--out", str(tmp_path / "group"), "--variants", "post")  # a group does not name it
    assert proc.returncode == 0 and "skipped: onnx_dynamic" in " ".join(proc.stderr.split())
    proc = run_cli(*common, "--out", str(tmp_path / "asked"), "--variants", "onnx_dynamic")
    # Its only variant failed: the report says why, and the exit code that nothing came of the run.
    assert proc.returncode == 2 and "every variant failed to build or run: onnx_dynamic" in proc.stderr
    (record,) = [v for v in json.loads((tmp_path / "asked" / "report.json").read_text())["variants"]
                 if v["name"] == "onnx_dynamic"]  # fmt: skip
    assert record["status"] == "failed" and "use int8 (static, calibrated)" in record["error"]


def test_a_model_with_a_state_and_a_scalar_input_is_measured_from_an_npz(tmp_path):
    from tests.runtime.test_inputs_of_every_kind import voice_model

    model = voice_model(tmp_path / "vad.onnx")
    rng = np.random.default_rng(3)
    np.savez(tmp_path / "eval.npz", input=rng.standard_normal((60, 512)).astype(np.float32),
             sr=np.array(16000, np.int64))  # the state absent: zeros; the sample rate once for every sample
    out = tmp_path / "run"
    proc = run_cli("edgedl", "pipeline", "--model", str(model), "--eval-data", str(tmp_path / "eval.npz"),
                   "--variants", "onnx_float32,onnx_int8", "--out", str(out), *FAST)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    by_name = {v["name"]: v for v in json.loads((out / "report.json").read_text())["variants"]}
    assert all(v["status"] == "ok" for v in by_name.values()), by_name
    assert by_name["onnx_float32"]["metrics"]["channels_ok"] == 1.0
    assert "arrays: input 1×512 float32, state 2×1×128 float32, sr scalar int64" in " ".join(proc.stderr.split())


def test_a_run_from_a_relative_path_evaluated_on_arrays_is_bundled(pytorch_like_onnx, tmp_path):
    import shutil
    import tarfile

    (tmp_path / "models").mkdir()
    shutil.copy(pytorch_like_onnx, tmp_path / "models" / "classifier.onnx")
    np.save(tmp_path / "x.npy", np.random.default_rng(4).random((40, 3, 16, 16), dtype=np.float32))
    proc = run_cli("edgedl", "pipeline", "--model", "models/classifier.onnx", "--eval-data", "x.npy", "--variants",
                   "onnx_float32,onnx_int8", "--out", "run", *FAST, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()  # bundled from another folder: the report's paths are the run folder's
    proc = run_cli("edgedl", "bundle", str(tmp_path / "run"), "--target", "jetson", "--out", "b.tar.gz", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with tarfile.open(elsewhere / "b.tar.gz") as tar:
        names = tar.getnames()
    assert any(n.endswith("data/eval.npz") for n in names) and any(n.endswith(".onnx") for n in names)
