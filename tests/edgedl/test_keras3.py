"""Keras 3 models (what ``tf.keras`` is since TensorFlow 2.16) and ``keras.applications`` networks: their
tf-keras twins, their MACs, their exports."""
import numpy as np
import pytest

from runtime.errors import UserError


def _keras3():
    from exporters.tfkeras import keras

    keras()  # TF_USE_LEGACY_KERAS decided before Keras 3 loads next to it
    import keras as keras3

    return keras3


APPLICATIONS = {
    "MobileNetV2": dict(alpha=0.35),
    "MobileNetV3Small": dict(minimalistic=False),
    "EfficientNetB0": {},
    "ResNet50": {},
}


@pytest.mark.parametrize("name", sorted(APPLICATIONS))
def test_a_keras_applications_network_has_a_tf_keras_twin_that_computes_the_same(name):
    from edgedl.compress import model_stats
    from edgedl.training.twin import tf_keras_twin
    from exporters.tfkeras import keras

    k3 = _keras3()
    model = getattr(k3.applications, name)(input_shape=(64, 64, 3), weights=None, classes=5, **APPLICATIONS[name])
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    twin = tf_keras_twin(model, x)
    assert isinstance(twin, keras().Model)
    np.testing.assert_allclose(twin(x, training=False).numpy(), np.asarray(model(x, training=False)), atol=1e-5)
    assert model_stats(twin)["params"] == model.count_params()
    assert model_stats(twin)["macs"] == model_stats(model)["macs"]  # counted on the Keras 3 layers alike


def test_mobilenet_v2_macs_match_the_published_figure():
    """MobileNetV2 1.0 at 224: 300 M multiply-adds in Sandler et al. (2018), Table 3; both Kerases."""
    from edgedl.compress import model_stats
    from exporters.tfkeras import keras

    for k in (keras(), _keras3()):
        model = k.applications.MobileNetV2(input_shape=(224, 224, 3), weights=None)
        assert model_stats(model)["macs"] == pytest.approx(300e6, rel=0.03), k.__name__


def test_a_layer_without_a_tf_keras_twin_is_named():
    from edgedl.training.twin import tf_keras_twin

    k3 = _keras3()

    class Gate(k3.layers.Layer):  # a user's own layer: nothing of the same name in tf-keras
        def call(self, x):
            return x * 0.5

    inputs = k3.Input((8,))
    model = k3.Model(inputs, k3.layers.Dense(2)(Gate(name="my_gate")(inputs)))
    with pytest.raises(UserError, match=r"layer 'my_gate' \(Gate\) has no tf-keras twin"):
        tf_keras_twin(model)


def test_a_keras3_sequential_exports_to_both_formats_like_the_model(tmp_path):
    from tests.conftest import run_cli

    k3 = _keras3()
    model = k3.Sequential([k3.Input((28, 28, 1)), k3.layers.Conv2D(4, 3, activation="relu"),
                           k3.layers.DepthwiseConv2D(3), k3.layers.Flatten(),
                           k3.layers.Dense(10, activation="softmax")])  # fmt: skip
    model.save(tmp_path / "k3.keras")
    import runtime

    x = np.random.default_rng(1).random((4, 28, 28, 1), dtype=np.float32)
    want = np.asarray(model(x))
    for fmt in ("tflite", "onnx"):
        out = tmp_path / f"k3.{fmt}"
        proc = run_cli("edgedl", "export", str(tmp_path / "k3.keras"), "--format", fmt, "--out", str(out))
        assert proc.returncode == 0, proc.stderr[-2000:]
        got = runtime.load(out, threads=1).predict(x)
        np.testing.assert_allclose(got, want, atol=1e-5)


def _small_npz(path, mnist, n=512):
    train, ev = mnist
    np.savez(path, x_train=train.x[:n], y_train=train.y[:n], x_test=ev.x[:200], y_test=ev.y[:200])
    return path


def test_a_keras3_model_is_compressed_through_its_twin(tmp_path, mnist):
    import json

    from tests.conftest import run_cli

    k3 = _keras3()
    model = k3.Sequential([k3.Input((28, 28, 1)), k3.layers.Conv2D(8, 3, activation="relu"), k3.layers.MaxPooling2D(),
                           k3.layers.Flatten(), k3.layers.Dense(10, activation="softmax")])  # fmt: skip
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(mnist[0].x[:2000], mnist[0].y[:2000], epochs=1, verbose=0)
    model.save(tmp_path / "k3.keras")
    data = _small_npz(tmp_path / "d.npz", mnist)
    proc = run_cli("edgedl", "pipeline", "--model", str(tmp_path / "k3.keras"), "--data", str(data), "--out",
                   str(tmp_path / "run"), "--variants", "tflite_int8,onnx_int8,prune,qat", "--runs", "20",
                   "--warmup", "2")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rebuilt in tf-keras" in " ".join(proc.stderr.split())
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    by_name = {v["name"]: v for v in report["variants"]}
    assert {"prune_tflite_int8", "qat_tflite_int8", "onnx_int8"} <= set(by_name)
    assert all(v["status"] == "ok" for v in by_name.values()), [v.get("error") for v in by_name.values()]
    assert by_name["prune_tflite_float32"]["sparsity"] == pytest.approx(0.8, abs=0.01)


def test_a_keras3_model_without_a_twin_gets_its_post_training_variants_and_a_reason(tmp_path, mnist):
    from tests.conftest import run_cli

    k3 = _keras3()
    inputs = k3.Input((28, 28, 1))
    x = k3.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = k3.layers.AdaptiveAveragePooling2D((4, 4), name="adaptive")(x)  # Keras 3 alone has it
    model = k3.Model(inputs, k3.layers.Dense(10, activation="softmax")(k3.layers.Flatten()(x)))
    model.save(tmp_path / "k3.keras")
    data = _small_npz(tmp_path / "d.npz", mnist)
    common = ["edgedl", "pipeline", "--model", str(tmp_path / "k3.keras"), "--data", str(data), "--runs", "20",
              "--warmup", "2"]  # fmt: skip
    proc = run_cli(*common, "--out", str(tmp_path / "post"), "--variants", "tflite_float32,onnx_float32")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "post-training variants only: layer 'adaptive' (AdaptiveAveragePooling2D)" in " ".join(proc.stderr.split())
    proc = run_cli(*common, "--out", str(tmp_path / "prune"), "--variants", "prune")
    assert proc.returncode == 2
    assert "need a tf-keras model: layer 'adaptive' (AdaptiveAveragePooling2D)" in proc.stderr.strip().splitlines()[-1]
