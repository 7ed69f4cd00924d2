"""Filter pruning removes whole filters: a thinner model, fewer MACs, and the outputs of the original with the
removed channels cut off (checked against an independent masking of the original's weights)."""
import numpy as np
import pytest

from runtime.errors import UserError


def _keras():
    from exporters.tfkeras import keras

    return keras()


def _l1_kept(kernel: np.ndarray, ratio: float) -> np.ndarray:
    score = np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)
    return np.sort(np.argsort(-score, kind="stable")[: max(1, round(len(score) * (1 - ratio)))])


def test_the_seed_cnn_loses_half_its_filters_and_keeps_the_outputs_of_its_strongest_ones(trained_cnn):
    from edgedl.compress._distill import output_heads
    from edgedl.compress._filters import filter_pruned
    from edgedl.compress._stats import copy_model, count_macs

    thin, widths = filter_pruned(trained_cnn, 0.5, output_heads(trained_cnn))
    convs = [layer for layer in trained_cnn.layers if type(layer).__name__ in ("Conv2D", "Dense")]
    assert widths == {c.name: [c.get_weights()[0].shape[-1] // 2, c.get_weights()[0].shape[-1]] for c in convs[:-1]}
    assert thin.output_shape == trained_cnn.output_shape and count_macs(thin) < count_macs(trained_cnn) / 3

    # The original with the consumers' rows for the removed channels zeroed computes what the thin model does.
    masked = copy_model(trained_cnn)
    for producer, consumer in zip(convs[:-1], [masked.get_layer(c.name) for c in convs[1:]]):
        kernel, bias = consumer.get_weights()
        channels = producer.get_weights()[0].shape[-1]  # ranked on the original's weights, as the pruner does
        removed = np.setdiff1d(np.arange(channels), _l1_kept(producer.get_weights()[0], 0.5))
        if kernel.ndim == 2 and type(producer).__name__ == "Conv2D":  # after Flatten: every position's channel
            kernel = kernel.reshape(-1, channels, kernel.shape[-1])
            kernel[:, removed, :] = 0
            kernel = kernel.reshape(-1, kernel.shape[-1])
        else:
            kernel[..., removed, :] = 0
        consumer.set_weights([kernel, bias])
    x = np.random.default_rng(0).random((16, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(thin(x)), np.asarray(masked(x)), atol=1e-5)


def _residual():
    k = _keras()
    k.utils.set_random_seed(0)
    x = k.Input((16, 16, 3))
    a = k.layers.ReLU()(k.layers.BatchNormalization()(k.layers.Conv2D(8, 3, padding="same", name="a")(x)))
    b = k.layers.BatchNormalization()(k.layers.Conv2D(8, 3, padding="same", name="b")(a))
    c = k.layers.DepthwiseConv2D(3, padding="same")(k.layers.Add()([a, b]))
    left = k.layers.Conv2D(6, 1, name="left")(c)
    right = k.layers.Conv2D(6, 1, name="right")(c)
    joined = k.layers.Concatenate()([left, right])
    return k.Model(x, k.layers.Dense(4, name="out")(k.layers.GlobalAveragePooling2D()(joined)))


def test_a_residual_group_shares_its_channels_and_a_concatenation_keeps_its_inputs_whole():
    from edgedl.compress._distill import output_heads
    from edgedl.compress._filters import filter_pruned

    model = _residual()
    x = np.random.default_rng(0).random((2, 16, 16, 3), dtype=np.float32)
    thin, widths = filter_pruned(model, 0.5, output_heads(model))
    assert widths == {"a": [4, 8], "b": [4, 8]}  # the Add's two inputs alike; left/right feed the Concatenate
    assert thin.output_shape == model.output_shape
    same, _ = filter_pruned(model, 0.0, output_heads(model))
    np.testing.assert_allclose(np.asarray(same(x)), np.asarray(model(x)), atol=1e-6)


def test_a_model_with_nothing_to_thin_is_refused_in_one_line():
    from edgedl.compress._distill import output_heads
    from edgedl.compress._filters import filter_pruned

    k = _keras()
    x = k.Input((8,))
    model = k.Model(x, k.layers.Dense(3)(k.layers.Reshape((8,))(x)))
    with pytest.raises(UserError, match="no layer of .* can be thinned"):
        filter_pruned(model, 0.5, output_heads(model))


def test_filter_pruning_through_compress_is_distilled_exports_and_says_what_it_removed(trained_cnn, mnist, tmp_path):
    import runtime
    from edgedl.compress import FilterPruneConfig, compress
    from exporters import ModelInfo, export

    train, ev = mnist
    result = compress(trained_cnn, [FilterPruneConfig(0.5, epochs=2)], train.take(slice(0, 4096)))
    assert result.techniques == ("filter_prune",)
    assert result.stats["layer_widths"]["conv2d_1"] == [32, 64] and result.stats["macs"] < 1_000_000
    x, y = ev.x[:500], ev.y[:500]
    assert np.mean(result.model.predict(x, verbose=0).argmax(-1) == y) > 0.9
    art = export(result.model, tmp_path / "thin.tflite", "tflite", ModelInfo(task="classification"),
                 check_inputs=x[:32])  # fmt: skip
    np.testing.assert_allclose(runtime.load(art.path).predict(x[:8]), result.model(x[:8]), atol=1e-5)
