import json

import numpy as np
import pytest

from edgedl.models import create_model
from edgedl.training.model_io import load_keras_model
from edgedl.training.train import TrainConfig, train
from runtime.errors import UserError


def test_mirrored_strategy_trains_over_several_devices():
    """The multi-GPU path, on two virtual CPU devices (a fresh process: they must exist before TF starts):
    two replicas, mixed precision with float32 outputs, and a stream of per-replica batches taken two a step."""
    from tests.conftest import run_python

    proc = run_python(
        """
        import json
        import numpy as np
        from exporters.tfkeras import tf, keras
        cpu = tf().config.list_physical_devices("CPU")[0]
        tf().config.set_logical_device_configuration(cpu, [tf().config.LogicalDeviceConfiguration()] * 2)
        from edgedl.training import distribute
        from edgedl.training.train import compile_for_task
        from edgedl.models import create_model
        dist = distribute.Distribution(distribute.choose("mirrored", ["/cpu:0", "/cpu:1"], mixed_precision="on"))
        keras().mixed_precision.set_global_policy("mixed_float16")
        distribute._CURRENT = dist
        with dist.strategy.scope():
            model = create_model("cnn")
            compile_for_task(model, "classification", 1e-3)
        class Batches(keras().utils.Sequence):  # 6 batches of 4: 3 steps of 2 replicas
            def __len__(self): return 6
            def __getitem__(self, i): return np.zeros((4, 28, 28, 1), np.float32), np.zeros(4)
        seen = []
        count = keras().callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(b))
        hist = distribute.fit(model, Batches(), batch_size=4, epochs=1, callbacks=[count], verbose=0)
        print(json.dumps({"strategy": type(dist.strategy).__name__, "replicas": dist.replicas,
                          "policy": keras().mixed_precision.global_policy().name, "steps": len(seen),
                          "out_dtype": model.layers[-1].compute_dtype,
                          "loss_finite": bool(np.isfinite(hist.history["loss"][0]))}))
        """
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"strategy": "MirroredStrategy", "replicas": 2, "policy": "mixed_float16", "steps": 3,
                      "out_dtype": "float32", "loss_finite": True}


def test_train_config_is_validated():
    for bad in ({"epochs": 0}, {"batch_size": 0}, {"learning_rate": 0}):
        with pytest.raises(UserError):
            TrainConfig(**bad)


def test_training_saves_model_and_history_and_is_reproducible(mnist, tmp_path):
    train_data, eval_data = mnist
    small_train, small_eval = train_data.take(slice(0, 512)), eval_data.take(slice(0, 256))
    cfg = TrainConfig(epochs=1, batch_size=64, seed=3, deterministic=True)
    a = train(lambda: create_model("cnn"), "classification", small_train, small_eval, cfg, tmp_path / "a")
    b = train(lambda: create_model("cnn"), "classification", small_train, small_eval, cfg, tmp_path / "b")
    for w1, w2 in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(w1, w2)  # op determinism: the same bits
    history = json.loads((tmp_path / "a" / "history.json").read_text())
    assert history["distribution"]["kind"] == "default" and len(history["history"]["loss"]) == 1
    reloaded = load_keras_model(tmp_path / "a" / "model.keras")
    np.testing.assert_allclose(reloaded.predict(small_eval.x[:8], verbose=0), a.predict(small_eval.x[:8], verbose=0),
                               atol=1e-6)  # fmt: skip


def test_an_interrupted_run_resumes_from_its_checkpoint(mnist, tmp_path):
    from exporters.tfkeras import keras

    train_data, eval_data = mnist
    small_train, small_eval = train_data.take(slice(0, 256)), eval_data.take(slice(0, 64))
    epochs_run = []

    class StopAfterFirstEpoch(keras().callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            epochs_run.append(epoch)
            if epoch == 0:
                raise KeyboardInterrupt

    from edgedl.training import train as train_module

    original_fit = keras().Model.fit

    def fit_with_interrupt(self, *args, **kwargs):
        kwargs["callbacks"] = list(kwargs.get("callbacks", [])) + [StopAfterFirstEpoch()]
        return original_fit(self, *args, **kwargs)

    cfg = TrainConfig(epochs=3, batch_size=64)
    keras().Model.fit = fit_with_interrupt
    try:
        with pytest.raises(KeyboardInterrupt):
            train(lambda: create_model("cnn"), "classification", small_train, small_eval, cfg, tmp_path)
    finally:
        keras().Model.fit = original_fit
    assert not (tmp_path / "model.keras").exists()
    assert any((tmp_path / "backup").iterdir())
    epochs_run.clear()

    class Record(keras().callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            epochs_run.append(epoch)

    keras().Model.fit = lambda self, *a, **k: original_fit(self, *a, **{**k, "callbacks": k["callbacks"] + [Record()]})
    try:
        train_module.train(lambda: create_model("cnn"), "classification", small_train, small_eval, cfg, tmp_path)
    finally:
        keras().Model.fit = original_fit
    assert epochs_run == [1, 2]  # epoch 0 was not trained again
    assert (tmp_path / "model.keras").exists()


def test_loading_bad_model_files_names_the_problem(tmp_path):
    with pytest.raises(UserError, match="no such model file"):
        load_keras_model(tmp_path / "none.keras")
    (tmp_path / "m.pt").write_bytes(b"0")
    with pytest.raises(UserError, match="unknown Keras model format '.pt'"):
        load_keras_model(tmp_path / "m.pt")
    (tmp_path / "broken.keras").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(UserError, match="broken.keras: cannot load this Keras model"):
        load_keras_model(tmp_path / "broken.keras")
    (tmp_path / "folder").mkdir()
    with pytest.raises(UserError, match="not a SavedModel"):
        load_keras_model(tmp_path / "folder")
