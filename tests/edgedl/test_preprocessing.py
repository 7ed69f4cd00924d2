"""A model's own input normalisation is respected and recorded: a Rescaling layer takes raw pixels; a model
trained on [-1, 1] is exported with --mean/--std; the device then feeds a picture exactly as the model wants."""
import json

import numpy as np
import pytest
from PIL import Image

import runtime
from edgedl.data.preprocessing import RAW_PIXELS, model_normalization, normalizes_itself, to_model_inputs
from runtime.metadata import Normalization
from tests.conftest import run_cli


def _classifier(first_layers):
    from exporters.tfkeras import keras

    k = keras()
    k.utils.set_random_seed(0)
    return k.Sequential([k.Input((28, 28, 1)), *first_layers, k.layers.Conv2D(4, 3, activation="relu"),
                         k.layers.Flatten(), k.layers.Dense(10, activation="softmax")])  # fmt: skip


def test_the_normalisation_a_model_takes_is_found_or_given():
    from exporters.tfkeras import keras

    own = _classifier([keras().layers.Rescaling(1 / 127.5, offset=-1)])
    assert normalizes_itself(own) and model_normalization(own)[0] == RAW_PIXELS
    plain = _classifier([])
    assert model_normalization(plain)[0] == Normalization()
    norm, why = model_normalization(plain, (0.5,), (0.5,))
    assert norm.scale == pytest.approx((1 / 127.5,)) and norm.offset == pytest.approx((-1.0,)) and "--mean" in why
    np.testing.assert_allclose(to_model_inputs(np.array([0.0, 0.5, 1.0]), norm), [-1.0, 0.0, 1.0], atol=1e-6)


@pytest.mark.parametrize("kind", ["rescaling_layer", "mean_std"])
def test_the_device_feeds_a_picture_as_the_model_was_trained(kind, tmp_path):
    from exporters.tfkeras import keras

    if kind == "rescaling_layer":
        model, extra = _classifier([keras().layers.Rescaling(1 / 127.5, offset=-1)]), []
        expected_input = lambda pixels: pixels  # noqa: E731 - the model rescales them itself
    else:
        model, extra = _classifier([]), ["--mean", "0.5", "--std", "0.5"]
        expected_input = lambda pixels: pixels / 127.5 - 1  # noqa: E731
    model.save(tmp_path / "m.keras")
    out = tmp_path / "m.tflite"
    proc = run_cli("edgedl", "export", str(tmp_path / "m.keras"), "--format", "tflite", "--out", str(out), *extra)
    assert proc.returncode == 0, proc.stderr[-2000:]
    pixels = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "d.png")
    proc = run_cli("edgedl-run", str(out), str(tmp_path / "d.png"), "--json", "--top", "10")
    assert proc.returncode == 0, proc.stderr
    (result,) = json.loads(proc.stdout)["results"]
    got = sorted((int(t["label"]), t["score"]) for t in result["top"])
    want = np.asarray(model(expected_input(pixels.astype(np.float32))[None, :, :, None]))[0]
    np.testing.assert_allclose([s for _, s in got], want, atol=1e-5)
    assert runtime.read_metadata(out).normalization != Normalization()  # recorded, not the default
