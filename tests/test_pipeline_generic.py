"""Keras models that are neither classifiers nor denoisers through ``edgedl pipeline``: a detector-like model
(one picture in; boxes and scores out) and a model with two inputs (a picture and a vector).

Such a model has no targets here: every variant is compared with the original, output by output, and
compression fine-tunes (or distills) towards the original's own outputs. Results are checked against Keras.
"""
import json

import numpy as np
import pytest

from tests.conftest import run_cli

FAST = ["--runs", "10", "--warmup", "2"]


def _report(out):
    return {v["name"]: v for v in json.loads((out / "report.json").read_text())["variants"]}


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    """28×28 grey picture -> boxes (5×4, unbounded) and scores (5, sigmoid): outputs in another order than
    TFLite gives them back, and a head (Dense -> Reshape) whose width the student must keep."""
    from exporters.tfkeras import keras

    k = keras()
    k.utils.set_random_seed(0)
    image = k.Input((28, 28, 1), name="image")
    h = k.layers.Conv2D(8, 3, activation="relu")(image)
    h = k.layers.MaxPooling2D()(h)
    h = k.layers.Conv2D(8, 3, activation="relu")(h)
    h = k.layers.GlobalAveragePooling2D()(h)
    boxes = k.layers.Reshape((5, 4), name="boxes")(k.layers.Dense(20)(h))
    scores = k.layers.Dense(5, activation="sigmoid", name="scores")(h)
    model = k.Model(image, [boxes, scores])
    path = tmp_path_factory.mktemp("detector") / "detector.keras"
    model.save(path)
    return path, model


@pytest.fixture(scope="module")
def detector_run(detector, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "detector"
    proc = run_cli("edgedl", "pipeline", "--model", str(detector[0]), "--out", str(out),
                   "--variants", "tflite_float32,tflite_int8,onnx_float32,onnx_int8,prune,distill", *FAST)  # fmt: skip
    return out, proc


def test_a_two_output_model_gets_every_variant_compared_with_the_original(detector_run):
    out, proc = detector_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    # Two outputs: no top-1 over them joined; ranked by the share of channels that kept their own range.
    assert report["task"] == "generic" and report["metric"] == "channels_ok"
    by_name = _report(out)
    assert [v["status"] for v in by_name.values()] == ["ok"] * len(by_name), proc.stderr[-3000:]
    assert {"prune_tflite_int8", "distill_onnx_float32", "onnx_int8"} <= set(by_name)
    assert by_name["original"]["metrics"]["snr_db"] == 200.0  # the original is its own reference
    assert by_name["tflite_float32"]["metrics"]["snr_db"] > 60 and by_name["onnx_float32"]["metrics"]["snr_db"] > 60
    for name in ("tflite_int8", "onnx_int8"):
        assert 0.95 < by_name[name]["metrics"]["cosine"] < 1.0 and 15 < by_name[name]["metrics"]["snr_db"] < 80
        assert by_name[name]["metrics"]["channel_psnr_min"] <= by_name[name]["metrics"]["channel_psnr_mean"]
    assert by_name["prune_tflite_float32"]["sparsity"] > 0.5
    assert by_name["distill_tflite_float32"]["params"] < by_name["original"]["params"]  # a thinner copy of itself
    with np.load(out / "eval.npz") as ev:
        assert ev.files == ["image"] and ev["image"].shape[1:] == (28, 28, 1)


def test_the_artifacts_give_the_keras_outputs_by_name(detector, detector_run):
    import runtime

    out, _ = detector_run
    _, model = detector
    x = np.random.default_rng(1).random((4, 28, 28, 1), dtype=np.float32)
    want = dict(zip(model.output_names, (np.asarray(y) for y in model(x))))
    for name in ("tflite_float32.tflite", "onnx_float32.onnx"):
        got = runtime.load(out / "artifacts" / name).run(x)
        assert set(got) == {"boxes", "scores"}
        for key in want:
            np.testing.assert_allclose(got[key], want[key], atol=1e-4, err_msg=f"{name} {key}")


def test_the_bundle_of_a_two_output_run_is_a_variant_of_the_users_model(detector_run, tmp_path):
    out, _ = detector_run
    proc = run_cli("edgedl", "bundle", str(out), "--target", "rpi-arm64", "--out", str(tmp_path / "b.tar.gz"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    picked = proc.stdout.split()[1]  # "bundled NAME for rpi-arm64 (NAME: the fastest of N variants within ...)"
    assert picked in _report(out) and picked != "original" and "within 1.0 points" in proc.stdout


@pytest.fixture(scope="module")
def two_inputs(tmp_path_factory):
    from exporters.tfkeras import keras

    k = keras()
    k.utils.set_random_seed(0)
    image, meta = k.Input((16, 16, 3), name="image"), k.Input((4,), name="meta")
    h = k.layers.GlobalAveragePooling2D()(k.layers.Conv2D(6, 3, activation="relu")(image))
    score = k.layers.Dense(3, activation="softmax", name="score")(k.layers.Concatenate()([h, meta]))
    model = k.Model([image, meta], score)
    folder = tmp_path_factory.mktemp("two_inputs")
    model.save(folder / "two.keras")
    rng = np.random.default_rng(0)
    np.savez(folder / "eval.npz", image=rng.random((120, 16, 16, 3), dtype=np.float32),
             meta=rng.random((120, 4), dtype=np.float32))  # fmt: skip
    return folder, model


def test_a_two_input_model_is_fed_by_input_name_in_every_format(two_inputs, tmp_path):
    import runtime

    folder, model = two_inputs
    out = tmp_path / "run"
    proc = run_cli("edgedl", "pipeline", "--model", str(folder / "two.keras"), "--eval-data", str(folder / "eval.npz"),
                   "--out", str(out), "--variants", "tflite_float32,tflite_int8,onnx_float32,onnx_int8", *FAST,
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # onnxruntime's debug file is not left where it ran
    by_name = _report(out)
    assert [v["status"] for v in by_name.values()] == ["ok"] * 5, proc.stderr[-3000:]
    assert json.loads((out / "report.json").read_text())["metric"] == "top1_agreement"  # one score vector
    assert "calibrating on the first 24 evaluation inputs" in " ".join(proc.stderr.split())
    x = {"image": np.full((2, 16, 16, 3), 0.5, np.float32), "meta": np.eye(2, 4, dtype=np.float32)}
    want = np.asarray(model(x))
    for name in ("tflite_float32.tflite", "onnx_float32.onnx"):
        loaded = runtime.load(out / "artifacts" / name)
        assert sorted(loaded.input_names) == ["image", "meta"]
        np.testing.assert_allclose(loaded.predict(x), want, atol=1e-5)
    assert by_name["tflite_int8"]["metrics"]["top1_agreement"] > 0.8


@pytest.mark.parametrize("argv, message", [
    ([], "does not take one picture: give --eval-data FILE.npz with one array per input name (image, meta)"),
    (["--eval-data", "{folder}"], "does not take one picture; give an .npz with one array per input name"),
    (["--eval-data", "{folder}/eval.npz", "--retrain"], "--retrain needs targets"),
])  # fmt: skip
def test_a_two_input_model_without_fitting_data_is_refused_in_one_line(two_inputs, tmp_path, argv, message):
    folder, _ = two_inputs
    out = tmp_path / "run"
    proc = run_cli("edgedl", "pipeline", "--model", str(folder / "two.keras"), "--out", str(out),
                   *[a.format(folder=folder) for a in argv])  # fmt: skip
    assert proc.returncode == 2 and message in " ".join(proc.stderr.split()), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and not (out / "report.json").exists()


def test_the_task_of_a_users_model_comes_from_its_shape():
    from edgedl.tasks import task_of
    from exporters.tfkeras import keras

    k = keras()

    def model(shape, head):
        x = k.Input(shape)
        return k.Model(x, head(x))

    assert task_of(model((8, 8, 1), lambda x: k.layers.Dense(3)(k.layers.Flatten()(x)))) == "classification"
    assert task_of(model((None, None, 1), lambda x: k.layers.Conv2D(1, 3, padding="same")(x))) == "denoising"
    assert task_of(model((8, 8, 3), lambda x: k.layers.Conv2D(5, 1)(x))) == "generic"  # a 5-class mask
    assert task_of(model((8, 8, 1), lambda x: [k.layers.Flatten()(x), x])) == "generic"


def test_export_and_compress_take_a_generic_models_inputs_from_data(two_inputs, detector, tmp_path):
    import runtime

    folder, model = two_inputs
    out = tmp_path / "two_int8.onnx"
    proc = run_cli("edgedl", "export", str(folder / "two.keras"), "--format", "onnx", "--precision", "int8",
                   "--data", str(folder / "eval.npz"), "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = runtime.load(out)
    assert loaded.metadata.task == "generic" and loaded.metadata.precision == "int8"
    with np.load(folder / "eval.npz") as ev:
        x = {k: ev[k][-20:] for k in ev.files}
    assert np.mean(loaded.predict(x).argmax(-1) == np.asarray(model(x)).argmax(-1)) > 0.8
    proc = run_cli("edgedl", "compress", str(detector[0]), "--technique", "distill", "--epochs", "1",
                   "--out", str(tmp_path / "kd"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "kd" / "compression.json").read_text())
    assert summary["techniques"] == ["distill"] and summary["after"]["params"] < summary["before"]["params"]
