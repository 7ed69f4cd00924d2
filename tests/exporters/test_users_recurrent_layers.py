"""A user's recurrent layers, as Keras has them, to TFLite with builtin operators: unrolled, same weights, no
state between calls; or a one-line refusal naming the layer and the way out."""
import numpy as np
import pytest

import runtime
from exporters import ModelInfo, export
from runtime.errors import UserError


def _over_rows(layer):
    from exporters.tfkeras import keras

    k = keras()
    return k.Sequential([k.Input((28, 28, 1)), k.layers.Reshape((28, 28)), layer,
                         k.layers.Dense(10, activation="softmax")])  # fmt: skip


@pytest.mark.parametrize("kind", ["GRU", "BidirectionalLSTM", "SimpleRNN"])
@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_recurrent_layers_export_unrolled_and_run_like_keras(kind, precision, mnist, tmp_path):
    from exporters.tfkeras import keras

    layers = keras().layers
    layer = {"GRU": lambda: layers.GRU(16), "BidirectionalLSTM": lambda: layers.Bidirectional(layers.LSTM(8)),
             "SimpleRNN": lambda: layers.SimpleRNN(16)}[kind]()  # fmt: skip
    model = _over_rows(layer)
    x = mnist[1].x[:64]
    art = export(model, tmp_path / "m.tflite", "tflite", ModelInfo(task="classification"), precision=precision,
                 calibration=mnist[0].x[:100], check_inputs=x)  # fmt: skip
    loaded = runtime.load(art.path)
    first = loaded.predict(x[:8])
    np.testing.assert_allclose(first, np.asarray(model(x[:8])), atol=0.02 if precision == "int8" else 1e-5)
    np.testing.assert_array_equal(loaded.predict(x[:8]), first)  # nothing carried over from the call before
    assert model.layers[1].get_config().get("unroll", False) is False  # the user's model is left as it was


def test_a_layer_that_cannot_be_unrolled_is_refused_in_one_line(tmp_path):
    from exporters.tfkeras import keras

    k = keras()
    model = k.Sequential([k.Input((28, 28, 1)), k.layers.Reshape((4, 7, 28, 1)),
                          k.layers.ConvLSTM2D(4, 3, name="memory"),
                          k.layers.Flatten(), k.layers.Dense(10)])  # fmt: skip
    with pytest.raises(UserError, match=r"layer 'memory' \(ConvLSTM2D\) does not convert .* ONNX variants"):
        export(model, tmp_path / "c.tflite", "tflite", ModelInfo(task="classification"))
    assert not (tmp_path / "c.tflite").exists()
