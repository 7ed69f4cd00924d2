import pytest

from edgedl.models import create_model, list_models, model_entry
from runtime.errors import UserError


def test_cnn_is_the_seed_classifier_exactly():
    model = create_model("cnn")
    layers = [(type(l).__name__, getattr(l, "filters", None) or getattr(l, "units", None)) for l in model.layers]
    assert layers == [
        ("Conv2D", 32), ("MaxPooling2D", None), ("Conv2D", 64), ("MaxPooling2D", None), ("Conv2D", 64),
        ("Flatten", None), ("Dense", 64), ("Dense", 10),
    ]  # fmt: skip
    assert tuple(model.inputs[0].shape) == (None, 28, 28, 1)
    assert model.count_params() == 93_322
    assert model.layers[-1].activation.__name__ == "softmax"
    assert type(model).__module__.startswith("tf_keras")  # Keras 2: tfmot can prune it


def test_registry_lists_and_rejects_unknown_names():
    assert "cnn" in list_models()
    assert model_entry("cnn").task == "classification"
    with pytest.raises(UserError, match=r"unknown model 'resnet9000'; known models: .*cnn"):
        create_model("resnet9000")


def test_num_classes_changes_the_head():
    assert create_model("cnn", num_classes=3).outputs[0].shape[-1] == 3


def test_each_model_gets_only_the_recipes_tfmot_can_apply():
    from edgedl.pipeline.recipes import select_variants

    def recipes(name):
        entry = model_entry(name)
        return {s.recipe for s in select_variants(None, entry.task, entry.recipes) if s.recipe}

    assert {"qat", "prune_qat", "distill"} <= recipes("cnn")
    assert recipes("dncnn_lite") == {"prune", "prune_2_4", "cluster", "qat"}  # QAT: the Subtract annotated alone
    assert "qat" not in recipes("lstm") and "distill" in recipes("lstm")  # no QAT for LSTM layers
    assert recipes("seq_denoiser") == set()


def test_denoisers_are_fully_convolutional_and_residual():
    import numpy as np

    model = create_model("dncnn_lite")
    assert tuple(model.inputs[0].shape) == (None, None, None, 1)
    assert model.layers[-1].name == "denoised" and type(model.layers[-1]).__name__ == "Subtract"
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert len(convs) == 8 and convs[0].filters == 32
    full = create_model("dncnn")
    assert len([layer for layer in full.layers if type(layer).__name__ == "Conv2D"]) == 17
    assert 550_000 < full.count_params() < 560_000  # DnCNN-S: about 556 k
    from edgedl.compress import model_stats

    # 9·(1·64 + 15·64·64 + 64·1) multiply-accumulates per output pixel; no total for an image of any size.
    assert model_stats(full) == {"params": full.count_params(), "macs_per_pixel": 9 * (64 + 15 * 64 * 64 + 64)}
    assert model.predict(np.zeros((1, 13, 21, 1), np.float32), verbose=0).shape == (1, 13, 21, 1)


def test_macs_count_every_convolution_of_the_recurrent_denoiser():
    from edgedl.compress import model_stats

    pixels, frames = 32 * 32, 8
    # Per pixel and frame, all 3×3: the CNN on [frame, mean, previous, cost] (4 -> 24), 3 × (24 -> 24), the
    # noise (24 -> 1); from the second frame on, the 9 one-hot shifts (a 3×3 convolution to 9 channels) of
    # each of the two carried images.
    cnn = 9 * (4 * 24 + 3 * 24 * 24 + 24 * 1)
    expected = pixels * (frames * cnn + (frames - 1) * 2 * 9 * 9)
    assert model_stats(create_model("seq_denoiser"))["macs"] == expected
    # Within the budget of the ConvLSTM model it replaced (23,472 MACs per pixel and frame).
    assert expected / (pixels * frames) <= 9 * (2 * 16 + 16 * 64 + 16 * 64 + 32 * 16 + 16 * 1) == 23_472
    # The per-frame twin shifts nothing.
    assert model_stats(create_model("seq_denoiser_per_frame"))["macs"] == pixels * frames * cnn


def test_macs_are_counted_for_keras_3_and_unknown_rather_than_zero_for_layers_the_counter_does_not_know():
    import keras as keras3

    from exporters.tfkeras import keras
    from edgedl.compress import model_stats

    k3 = keras3.Sequential([keras3.Input((8, 8, 1)), keras3.layers.Conv2D(4, 3), keras3.layers.Flatten(),
                            keras3.layers.Dense(10)])  # fmt: skip
    assert model_stats(k3)["macs"] == 6 * 6 * (3 * 3 * 1 * 4) + 144 * 10

    k = keras()

    class Gate(k.layers.Layer):  # a user's own layer with weights
        def build(self, shape):
            self.w = self.add_weight(name="w", shape=(shape[-1],))

        def call(self, x):
            return x * self.w

    mine = k.Sequential([k.Input((8,)), k.layers.Dense(4), Gate(), k.layers.Dense(2)])
    assert model_stats(mine)["macs"] == "unknown"
    rnn = k.Sequential([k.Input((5, 3)), k.layers.SimpleRNN(4), k.layers.Dense(2)])
    assert model_stats(rnn)["macs"] == 5 * (3 * 4 + 4 * 4) + 4 * 2
