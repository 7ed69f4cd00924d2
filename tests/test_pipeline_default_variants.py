"""A user's model, built with Keras 3 or with tf-keras, through ``edgedl pipeline`` with the default variants:
every variant that applies is built and measured, compression included, and none fails.

Two models a user brings: a small CNN on digits, and keras.applications' MobileNetV2 (width 0.35, 96×96) on a
few hundred photos the test makes. Every technique fine-tunes for its own epochs, so the four runs take close to
an hour on two cores (the two CNNs a minute each): ``slow`` (``pytest -m slow tests/test_pipeline_default_variants.py``).
"""
import json

import numpy as np
import pytest

from benchmarks.realscale import make_photos
from tests.conftest import run_cli

pytestmark = pytest.mark.slow

# Fine-tuned on the user's data (a technique the model's Keras cannot take would be refused, not failed).
COMPRESSED = {"prune", "filter_prune", "cluster", "qat", "distill"}


def _keras(which: str):
    if which == "keras3":
        import keras

        return keras
    import tf_keras

    return tf_keras


def _cnn(k):
    return k.Sequential([k.Input((28, 28, 1)), k.layers.Conv2D(8, 3, activation="relu"), k.layers.MaxPooling2D(),
                         k.layers.Conv2D(16, 3, activation="relu"), k.layers.Flatten(),
                         k.layers.Dense(10, activation="softmax")])  # fmt: skip


def _mobilenet(k):
    return k.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=3)


@pytest.mark.parametrize("which", ["keras3", "tf_keras"])
@pytest.mark.parametrize("model_name", ["cnn", "mobilenet_v2"])
def test_every_default_variant_of_a_users_model_is_built(tmp_path, mnist, which, model_name):
    k = _keras(which)
    model = _cnn(k) if model_name == "cnn" else _mobilenet(k)
    model.compile("adam", "sparse_categorical_crossentropy")
    if model_name == "cnn":
        train, ev = mnist
        data = tmp_path / "digits.npz"
        np.savez(data, x_train=train.x[:600], y_train=train.y[:600], x_test=ev.x[:300], y_test=ev.y[:300])
        model.fit(train.x[:2000], train.y[:2000], epochs=1, verbose=0)
        options = ["--data", str(data)]
    else:
        data = make_photos(tmp_path / "photos", 300, size=(120, 90))
        options = ["--data", str(data), "--resize", "crop"]
    source = tmp_path / f"{model_name}.keras"
    model.save(source)
    out = tmp_path / "run"
    proc = run_cli("edgedl", "pipeline", "--model", str(source), *options, "--out", str(out), "--runs", "10",
                   "--warmup", "2", "--quiet")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    failed = {v["name"]: v.get("error") for v in report["variants"] if v.get("status", "ok") != "ok"}
    assert failed == {}
    techniques = {t for v in report["variants"] for t in v.get("techniques", ())}
    assert COMPRESSED <= techniques, COMPRESSED - techniques
    formats = {(v["format"], v["precision"]) for v in report["variants"]}
    assert {("tflite", "int8"), ("onnx", "int8"), ("tflite", "float32"), ("onnx", "float32")} <= formats
