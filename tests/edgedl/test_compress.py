"""Each technique does what it claims: measured on the model and on the exported artifact."""
import numpy as np
import pytest

from edgedl.compress import ClusterConfig, DistillConfig, PruneConfig, QATConfig, compress, model_stats
from edgedl.compress._stats import count_macs, distinct_kernel_values, layer_sparsity
from runtime.errors import UserError


@pytest.fixture(scope="module")
def small_train(mnist):
    return mnist[0].take(slice(0, 1024))


def _accuracy(model, data):
    return float(np.mean(model.predict(data.x, verbose=0).argmax(-1) == data.y))


def test_pruning_reaches_the_target_on_every_layer_and_leaves_the_original_alone(trained_cnn, small_train, mnist):
    before = [w.copy() for w in trained_cnn.get_weights()]
    result = compress(trained_cnn, [PruneConfig(target_sparsity=0.6, epochs=2)], small_train)
    assert result.techniques == ("prune",)
    for name, sparsity in layer_sparsity(result.model).items():
        assert sparsity == pytest.approx(0.6, abs=0.01), name
    assert result.stats["sparsity"] == pytest.approx(0.6, abs=0.01)
    assert set(result.stats["layer_sparsity"]) == set(layer_sparsity(result.model))
    for w0, w1 in zip(before, trained_cnn.get_weights()):
        np.testing.assert_array_equal(w0, w1)
    assert _accuracy(result.model, mnist[1].take(slice(0, 500))) > 0.8
    assert not any("prune" in type(layer).__name__.lower() for layer in result.model.layers)  # stripped


def test_2_4_sparsity_keeps_at_most_two_of_every_four_input_weights(trained_cnn, small_train):
    result = compress(trained_cnn, [PruneConfig(structure="2:4", epochs=1)], small_train)
    assert result.techniques == ("prune_2_4",)
    checked = 0
    for layer in result.model.layers:
        if not hasattr(layer, "kernel") or layer.kernel.shape[-2] < 4:
            continue  # the first conv has one input channel: nothing to group
        k = np.asarray(layer.kernel.numpy())
        groups = np.moveaxis(k, -2, -1).reshape(-1, 4)  # blocks of 4 along the input-channel axis
        assert (np.count_nonzero(groups, axis=1) <= 2).all(), layer.name
        checked += 1
    assert checked == 4


def test_clustering_bounds_distinct_weight_values(trained_cnn, small_train):
    result = compress(trained_cnn, [ClusterConfig(clusters=8, epochs=1)], small_train)
    distinct = distinct_kernel_values(result.model)
    assert len(distinct) == 5 and max(distinct.values()) <= 8
    assert result.stats["distinct_weights"] == distinct


def test_a_width_scaled_student_is_the_teachers_architecture_thinner(trained_cnn, small_train):
    from edgedl.compress._distill import width_scaled

    student = width_scaled(trained_cnn, 0.5)
    assert [type(a).__name__ for a in student.layers] == [type(b).__name__ for b in trained_cnn.layers]
    widths = [(getattr(a, "filters", None) or getattr(a, "units", None), getattr(b, "filters", None)
               or getattr(b, "units", None)) for a, b in zip(student.layers, trained_cnn.layers)]  # fmt: skip
    assert [w for w in widths if w[0]] == [(t // 2, t) for _, t in widths[:-1] if t] + [(10, 10)]
    result = compress(trained_cnn, [DistillConfig(student="width:0.5", epochs=1)], small_train)
    assert result.stats["params"] < trained_cnn.count_params() / 2.5 and result.techniques == ("distill",)
    with pytest.raises(UserError, match="neither a zoo model"):
        compress(trained_cnn, [DistillConfig(student="resnet9000", epochs=1)], small_train)


def test_cluster_preserving_qat_counts_only_the_deployed_parameters(trained_cnn, small_train, tmp_path):
    from edgedl.training.model_io import save_model

    clustered = compress(trained_cnn, [ClusterConfig(clusters=8, epochs=1)], small_train)
    cqat = compress(clustered.model, [QATConfig(epochs=1)], small_train, before=clustered.techniques)
    assert cqat.stats["params"] == trained_cnn.count_params()  # not its centroids, indices and weight copies
    save_model(cqat.model, tmp_path / "cqat.h5")  # tfmot's clone drops its variables: saved as it is
    assert (tmp_path / "cqat.h5").stat().st_size > 100_000


def test_pqat_gives_an_int8_artifact_that_keeps_the_sparsity(trained_cnn, small_train, mnist, model_info, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from exporters import export

    pruned = compress(trained_cnn, [PruneConfig(target_sparsity=0.7, epochs=2)], small_train)
    pqat = compress(pruned.model, [QATConfig(epochs=1)], small_train, before=pruned.techniques)
    assert pqat.techniques == ("prune", "qat") and pqat.quantized
    assert pqat.stats["sparsity"] >= 0.69  # the prune-preserving scheme kept the zeros through QAT
    assert pqat.stats["params"] == trained_cnn.count_params()
    art = export(pqat.model, tmp_path / "pqat.tflite", "tflite", model_info, precision="int8",
                 calibration=small_train.x[:100], check_inputs=mnist[1].x[:32])  # fmt: skip
    from ai_edge_litert.interpreter import OpResolverType

    # Without the XNNPACK delegate, which repacks the weights and frees the originals.
    interp = Interpreter(model_path=str(art.path),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)  # fmt: skip
    interp.allocate_tensors()
    assert not [t for t in interp.get_tensor_details() if t["dtype"] == np.float32]
    # The weights are input 1 of every CONV_2D and FULLY_CONNECTED op.
    weights = [interp.get_tensor(op["inputs"][1]) for op in interp._get_ops_details()
               if op["op_name"] in ("CONV_2D", "FULLY_CONNECTED")]  # fmt: skip
    assert len(weights) == 5 and all(w.dtype == np.int8 for w in weights)
    zeros = sum(int(np.sum(w == 0)) for w in weights) / sum(w.size for w in weights)
    assert zeros >= 0.69


def test_qat_alone_exports_integer_only(trained_cnn, small_train, mnist, model_info, tmp_path):
    import runtime
    from exporters import export

    result = compress(trained_cnn, [QATConfig(epochs=1)], small_train)
    assert result.stats["macs"] == model_stats(trained_cnn)["macs"]  # the quantizers add no MACs
    art = export(result.model, tmp_path / "qat.tflite", "tflite", model_info, precision="int8",
                 calibration=small_train.x[:100], check_inputs=mnist[1].x[:32])  # fmt: skip
    assert art.input.dtype == "int8" and art.output.dtype == "int8"
    ev = mnist[1].take(slice(0, 500))
    got = runtime.load(art.path).predict(ev.x).argmax(1)
    assert np.mean(got == ev.y) > 0.9


def test_distillation_trains_a_smaller_student(trained_cnn, small_train, mnist):
    result = compress(trained_cnn, [DistillConfig(epochs=2, learning_rate=3e-3)], mnist[0].take(slice(0, 4000)))
    assert result.techniques == ("distill",)
    assert count_macs(trained_cnn) >= 4 * result.stats["macs"]
    assert result.stats["params"] < trained_cnn.count_params() / 4
    assert _accuracy(result.model, mnist[1].take(slice(0, 500))) > 0.8


def test_distillation_checks_the_students_shapes(trained_cnn, small_train):
    from edgedl.models import create_model

    wrong = create_model("cnn", num_classes=5)
    with pytest.raises(UserError, match=r"student's output shape \(5,\) differs from the teacher's \(10,\)"):
        compress(trained_cnn, [DistillConfig(student_model=wrong, epochs=1)], small_train)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: PruneConfig(target_sparsity=1.0), r"sparsity must be in \[0, 1\), got 1.0"),
        (lambda: PruneConfig(target_sparsity=-0.1), r"sparsity must be in \[0, 1\)"),
        (lambda: PruneConfig(structure="4:8"), "unknown pruning structure '4:8'"),
        (lambda: DistillConfig(temperature=0), "temperature must be positive, got 0"),
        (lambda: DistillConfig(alpha=1.5), r"alpha .* must be in \[0, 1\]"),
        (lambda: ClusterConfig(clusters=1), "clusters must be between 2 and 256"),
        (lambda: QATConfig(epochs=0), "epochs must be at least 1"),
    ],
)
def test_bad_configs_are_refused_at_construction(make, message):
    with pytest.raises(UserError, match=message):
        make()


def test_order_rules(trained_cnn, small_train):
    with pytest.raises(UserError, match="quantization-aware training must come last"):
        compress(trained_cnn, [QATConfig(), PruneConfig()], small_train)
    with pytest.raises(UserError, match="distillation must come first"):
        compress(trained_cnn, [PruneConfig(), DistillConfig()], small_train)


def test_a_layer_tfmot_cannot_prune_is_named(small_train):
    from exporters.tfkeras import keras

    k = keras()

    class Scale(k.layers.Layer):
        def build(self, shape):
            self.w = self.add_weight(name="w", shape=(shape[-1],), initializer="ones")

        def call(self, x):
            return x * self.w

    inputs = k.Input((28, 28, 1))
    x = k.layers.Flatten()(Scale(name="my_scale")(inputs))
    model = k.Model(inputs, k.layers.Dense(10, activation="softmax")(x))
    with pytest.raises(UserError, match=r"^pruning: .*Scale"):
        compress(model, [PruneConfig(epochs=1)], small_train)
    with pytest.raises(UserError, match=r"^quantization-aware training: .*Layer Scale"):
        compress(model, [QATConfig(epochs=1)], small_train)


def test_keras3_models_cannot_be_pruned_or_qat_trained(small_train):
    import keras as keras3

    if not keras3.__version__.startswith("3"):
        pytest.skip("Keras 3 is not installed")
    model = keras3.Sequential([keras3.Input((28, 28, 1)), keras3.layers.Flatten(), keras3.layers.Dense(10)])
    for config, what in ((PruneConfig(), "pruning"), (QATConfig(), "quantization-aware training")):
        with pytest.raises(UserError, match=f"{what} needs a tf-keras \\(Keras 2\\) model, and this is a Keras 3 model"):
            compress(model, [config], small_train)


def _noisy_patches(seed=0):
    from edgedl.data.denoising import ImageSet, Noise, patch_batches

    rng = np.random.default_rng(seed)
    images = ImageSet(tuple(rng.uniform(0.2, 0.8, (48, 48, 1)).astype(np.float32) for _ in range(8)), "random")
    return patch_batches(images, Noise(25.0), patch=16, per_image=64, batch_size=32, seed=seed)


def test_a_denoiser_student_learns_from_its_teachers_outputs():
    """A teacher that answers 0.7 everywhere pulls a student trained on it alone (alpha 0) to 0.7; trained on
    the clean images alone (alpha 1), the same student stays near the clean patches (mean 0.5)."""
    from exporters.tfkeras import keras
    from edgedl.models import create_model

    k = keras()
    noisy = k.layers.Input((None, None, 1))
    constant = k.layers.Conv2D(1, 1, kernel_initializer="zeros", bias_initializer=k.initializers.Constant(0.7))(noisy)
    teacher = k.Model(noisy, constant)
    data = _noisy_patches()
    outputs = {}
    for alpha in (0.0, 1.0):
        k.utils.set_random_seed(0)
        config = DistillConfig(student_model=create_model("dncnn", depth=3, width=8), alpha=alpha, epochs=8,
                               learning_rate=1e-2)  # fmt: skip
        student = compress(teacher, [config], data, task="denoising").model
        outputs[alpha] = float(np.mean(student.predict(data[0][0], verbose=0)))
    assert abs(outputs[0.0] - 0.7) < 0.05 and abs(outputs[1.0] - 0.5) < 0.05, outputs


def test_qat_starts_from_the_float_models_activation_ranges():
    """tfmot starts every activation range at [-6, 6]; measured on the data first, a QAT model whose weights
    do not move (a learning rate of 1e-9) rounds like an int8 export, not 20 times coarser."""
    from exporters.tfkeras import keras

    k = keras()
    noisy = k.layers.Input((None, None, 1))
    features = k.layers.Conv2D(8, 3, padding="same", activation="relu")(noisy)
    noise = k.layers.Conv2D(1, 3, padding="same")(features)
    model = k.Model(noisy, k.layers.Subtract()([noisy, noise]))
    data = _noisy_patches()
    quantized = compress(model, [QATConfig(epochs=1, learning_rate=1e-9)], data, task="denoising").model
    x = data[0][0]
    error = np.abs(quantized.predict(x, verbose=0) - model.predict(x, verbose=0))
    assert error.max() < 0.02, error.max()  # ranges left at [-6, 6]: 0.07


@pytest.mark.parametrize("name, options", [("dncnn", {"depth": 3, "width": 8}), ("ircnn_lite", {"width": 8})])
def test_qat_trains_a_residual_denoiser_and_its_saved_model_exports_again(tmp_path, name, options):
    """tfmot has no Subtract: the layer is annotated alone, so DnCNN trains with its int8 rounding, saves,
    loads in tfmot's scope, and exports to an int8 .tflite that denoises like the QAT model (a dilated
    convolution inside tfmot's wrapper as one CONV_2D, as without QAT); its batch norms keep the statistics
    the model was trained with."""
    import runtime
    from edgedl.models import create_model
    from edgedl.deploy.targets import tflite_operators
    from edgedl.training.model_io import load_keras_model, save_model
    from exporters import ModelInfo, export

    data = _noisy_patches()
    model = create_model(name, **options)
    result = compress(model, [QATConfig(epochs=1)], data, task="denoising")
    norms = [(la, getattr(q, "layer", q)) for la, q in zip(model.layers, result.model.layers[1:])
             if type(la).__name__ == "BatchNormalization"]  # fmt: skip
    assert norms and all(np.array_equal(a.moving_variance.numpy(), b.moving_variance.numpy()) for a, b in norms)
    assert result.quantized and any(type(la).__name__ == "QuantizeWrapperV2" and "denoised" in la.name
                                    for la in result.model.layers)  # fmt: skip
    save_model(result.model, tmp_path / "qat.h5")  # tfmot's wrappers save to HDF5 (the .keras format drops
    again = load_keras_model(tmp_path / "qat.h5")  # variables of its QuantizeLayer)
    noisy = data[0][0][:4]
    np.testing.assert_allclose(again.predict(noisy, verbose=0), result.model.predict(noisy, verbose=0), atol=1e-6)
    art = export(again, tmp_path / "qat.tflite", "tflite", ModelInfo(task="denoising", techniques=("qat",)),
                 precision="int8", calibration=data[0][0], check_inputs=noisy)  # fmt: skip
    device = runtime.load(art.path).predict(noisy)
    error = np.abs(device - again.predict(noisy, verbose=0))  # a rounding tie may differ by an output step
    assert art.input.dtype == "int8" and error.mean() < 0.01 and error.max() < 0.1, (error.mean(), error.max())
    kinds = {kind for kind, _ in tflite_operators(art.path)}
    assert "CONV_2D" in kinds and not {"SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND"} & kinds, kinds
    assert not any("convolution_op" in vars(getattr(la, "layer", la)) for la in again.layers)  # as it was
