"""The techniques, each a function ``(model, config, data, task, before) -> model``.

tensorflow-model-optimization does pruning, 2:4 sparsity, clustering, QAT and
their collaborative combinations; distillation, which no library here does,
is written out in ``_distill.py``. Every function returns a plain tf-keras
model ready to export (pruning and clustering wrappers stripped).
"""
from __future__ import annotations

import re

import numpy as np

from exporters.tfkeras import keras
from runtime.errors import UserError, one_line

from ..data.datasets import Dataset
from ..training import distribute
from ..training.model_io import OUTPUT_ONLY, output_quantize_config, qat_custom_objects, require_tf_keras, tfmot
from ..training.train import compile_for_task
from ._configs import ClusterConfig, PruneConfig, QATConfig


def _wrap(technique: str, fn, *args, **kwargs):
    """Call a tfmot wrapper; a layer it cannot handle becomes a one-line error naming it."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, RuntimeError, TypeError) as exc:
        kind = re.search(r"<class '(?:[\w.]+\.)?(\w+)'>", str(exc))  # tfmot names the layer's class last
        layer = f"{kind.group(1)} layers are not supported: " if kind else ""
        raise UserError(f"{technique}: {layer}{one_line(exc, 1000)}") from None


def fine_tune(model, data, task: str, lr: float, epochs: int, batch: int, callbacks=(), backup=None) -> None:
    """Fine-tune on a ``Dataset`` (images, labels) or a ``Sequence`` of (input, target) batches, under this
    process's strategy (``model`` was built in its scope), checkpointed in ``backup``."""
    compile_for_task(model, task, lr)
    distribute.fit(model, data, batch_size=batch, epochs=epochs, callbacks=callbacks, backup=backup)


def _steps_per_epoch(data, batch: int) -> int:
    return distribute.steps_per_epoch(distribute.batch_source(data, batch, 0), distribute.current().replicas)


def _prunable(technique: str, model, **kwargs):
    """tfmot's whole-model pruning wrapper; for a model with a weightless layer tfmot does not know (an
    embedder's UnitNormalization, a Rescaling of pixels), every layer with weights wrapped on its own and the
    rest left as they are.
    A layer with weights that tfmot cannot prune is still a one-line error naming it."""
    sparsity = tfmot().sparsity.keras
    try:
        return sparsity.prune_low_magnitude(model, **kwargs)
    except ValueError:
        pass  # a layer tfmot does not know: wrapped one by one below, weightless ones left as they are

    def wrap(layer):
        if isinstance(layer, keras().layers.InputLayer) or not layer.weights:
            return layer
        return _wrap(technique, sparsity.prune_low_magnitude, layer, **kwargs)

    return keras().models.clone_model(model, clone_function=wrap)


def prune(model, config: PruneConfig, data: Dataset, task: str, before: tuple, backup=None):
    require_tf_keras(model, "pruning")
    sparsity = tfmot().sparsity.keras
    steps_per_epoch = _steps_per_epoch(data, config.batch_size)
    if config.structure == "2:4":
        wrapped = _wrap("2:4 sparsity", _prunable, "2:4 sparsity", model, sparsity_m_by_n=(2, 4))
    else:
        schedule = sparsity.PolynomialDecay(
            initial_sparsity=0.0,
            final_sparsity=config.target_sparsity,
            begin_step=0,
            end_step=max(1, steps_per_epoch * max(1, config.epochs // 2)),
            frequency=max(1, steps_per_epoch // 4),
        )
        wrapped = _wrap("pruning", _prunable, "pruning", model, pruning_schedule=schedule)
    fine_tune(wrapped, data, task, config.learning_rate, config.epochs, config.batch_size,
               [sparsity.UpdatePruningStep()], backup)  # fmt: skip
    return sparsity.strip_pruning(wrapped)


def finetune(model, config, data, task: str, before: tuple, backup=None):
    """The control: the same extra training a technique gets, without the technique."""
    if config.freeze_batch_norms:
        _freeze_batch_norms(model)
    fine_tune(model, data, task, config.learning_rate, config.epochs, config.batch_size, backup=backup)
    return model


def _pruned(before: tuple) -> bool:
    return any(t in ("prune", "prune_2_4") for t in before)


def _too_few_to_cluster(layer, clusters: int, sparse: bool) -> bool:
    """Whether a kernel of ``layer`` has fewer values to cluster than k-means++ draws: a small first
    convolution (3×3×1×8) pruned to 80 % keeps 14 non-zero weights for 16 clusters."""
    kernels = [w for w in layer.get_weights() if w.ndim > 1]
    counts = [int(np.count_nonzero(k)) if sparse else k.size for k in kernels]
    return bool(counts) and min(counts) < 2 * clusters


def cluster(model, config: ClusterConfig, data: Dataset, task: str, before: tuple, backup=None):
    """tfmot's weight clustering of every layer it takes; a layer with fewer weights (non-zero ones, after
    pruning) than twice the clusters is left as it is: it is too small to matter, and k-means++ cannot start."""
    require_tf_keras(model, "clustering")
    clustering = tfmot().clustering.keras
    sparse = _pruned(before)  # sparsity-preserving clustering after pruning
    options = {"number_of_clusters": config.clusters, "preserve_sparsity": sparse,
               "cluster_centroids_init": clustering.CentroidInitialization.KMEANS_PLUS_PLUS}  # fmt: skip
    if not any(_too_few_to_cluster(layer, config.clusters, sparse) for layer in model.layers):
        wrapped = _wrap("clustering", clustering.cluster_weights, model, **options)
    else:
        def wrap(layer):
            if isinstance(layer, keras().layers.InputLayer) or not layer.weights or \
                    _too_few_to_cluster(layer, config.clusters, sparse):  # fmt: skip
                return layer
            return _wrap("clustering", clustering.cluster_weights, layer, **options)

        wrapped = keras().models.clone_model(model, clone_function=wrap)
    fine_tune(wrapped, data, task, config.learning_rate, config.epochs, config.batch_size, backup=backup)
    return clustering.strip_clustering(wrapped)


def _annotate(model):
    """tfmot's whole-model annotation, or, for a model with an ``OUTPUT_ONLY`` layer, every layer annotated
    on its own (tfmot's own configuration for the layers it knows, ``output_quantize_config`` for those)."""
    q = tfmot().quantization.keras
    if not any(type(layer).__name__ in OUTPUT_ONLY for layer in model.layers):
        return q.quantize_annotate_model(model)

    def annotate(layer):
        if isinstance(layer, keras().layers.InputLayer):
            return layer
        if type(layer).__name__ in OUTPUT_ONLY:
            return q.quantize_annotate_layer(layer, output_quantize_config()())
        return q.quantize_annotate_layer(layer)

    return keras().models.clone_model(model, clone_function=annotate)


def qat(model, config: QATConfig, data: Dataset, task: str, before: tuple, backup=None):
    """Quantization-aware training; preserves sparsity after pruning and clusters after clustering."""
    require_tf_keras(model, "quantization-aware training")
    q = tfmot().quantization.keras
    combine = tfmot().experimental.combine
    if before and before[-1] == "cluster":  # CQAT, or PCQAT after pruning
        scheme = combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=_pruned(before))
    elif _pruned(before):  # PQAT
        scheme = combine.Default8BitPrunePreserveQuantizeScheme()
    else:
        scheme = None
    annotated = _wrap("quantization-aware training", _annotate, model)
    with q.quantize_scope(qat_custom_objects()):
        quantized = _wrap("quantization-aware training", q.quantize_apply, annotated, *([scheme] if scheme else []))
    _start_ranges_from_data(quantized, model, data)
    _freeze_batch_norms(quantized)
    fine_tune(quantized, data, task, config.learning_rate, config.epochs, config.batch_size, backup=backup)
    return quantized


def _freeze_batch_norms(model) -> None:
    """Batch norms keep the statistics the model was trained with (inference mode, as QAT usually does after
    its first steps): a short fine-tune that also re-estimated them from its last hundred batches moved a
    denoiser's PSNR by ±0.2 dB from run to run, more than the rounding QAT is there to learn."""
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)  # bare, or inside tfmot's QuantizeWrapper
        if isinstance(inner, keras().layers.BatchNormalization):
            inner.trainable = False


RANGE_SAMPLES = 256  # inputs the activation ranges are measured on before QAT (as a calibration would)


def _start_ranges_from_data(quantized, model, data) -> None:
    """Set the QAT model's activation ranges to what the float ``model``'s activations span on the data.

    tfmot starts every moving-average range at [-6, 6] and moves it 0.1 % a step: after a QAT of a few
    hundred steps an input in [0, 1] is still rounded to steps of about 0.04, so the model learns around
    rounding far coarser than the int8 export's. A classifier shrugs that off; a denoiser lost 1.7 dB
    (``ircnn_lite``, one epoch, at 1e-4 and at 1e-5 alike). Ranges measured first (as post-training
    calibration does) are what the moving averages then refine. A range tfmot does not tie to one layer
    output of the float model (pre-activation) keeps its start; a multi-input model keeps them all."""
    x = _sample_inputs(data)
    if x is None or len(model.inputs) != 1:
        return
    ranges, probes = [], []  # (range variable, "min" | "max", index of the float tensor it quantizes)
    for layer in quantized.layers:
        probe = _float_tensor(layer, model)
        if probe is None:
            continue
        for weight in layer.non_trainable_weights:
            end = _activation_range_end(layer, weight)
            if end:
                ranges.append((weight, end, len(probes)))
        probes.append(probe)
    if not ranges:
        return
    lows, highs = _spans(keras().Model(model.inputs, probes), x, len(probes))
    for weight, end, index in ranges:
        weight.assign(np.full(weight.shape, min(lows[index], 0.0) if end == "min" else max(highs[index], 0.0)))


def _float_tensor(layer, model):
    """The float model's tensor a QAT layer's activation ranges quantize: the input for tfmot's
    ``QuantizeLayer``, the wrapped layer's output for a ``QuantizeWrapper``."""
    if type(layer).__name__ == "QuantizeLayer":
        return model.inputs[0]
    inner = getattr(layer, "layer", None)
    try:
        return model.get_layer(inner.name).output if inner is not None else None
    except ValueError:  # not a layer of the float model
        return None


def _activation_range_end(layer, weight):
    """"min" or "max" for a variable holding the range of a layer's output (tfmot's ``post_activation_*``,
    ``output_*``, a ``QuantizeLayer``'s own), else None (weights' ranges, ``pre_activation_*``, the rest)."""
    base = weight.name.split("/")[-1].split(":")[0]
    head, _, end = base.rpartition("_")
    if end not in ("min", "max"):
        return None
    if type(layer).__name__ == "QuantizeLayer" or head.endswith(("post_activation", "output")):
        return end
    return None


def _spans(probe, x, count: int, batch: int = 32):
    lows, highs = [np.inf] * count, [-np.inf] * count
    for start in range(0, len(x), batch):
        outputs = probe(x[start : start + batch], training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for i, out in enumerate(outputs):
            out = np.asarray(out)
            lows[i], highs[i] = min(lows[i], float(out.min())), max(highs[i], float(out.max()))
    return lows, highs


def _sample_inputs(data, count: int = RANGE_SAMPLES):
    """Up to ``count`` inputs of a ``Dataset`` or of a ``Sequence``'s first batches; None if not one array."""
    if isinstance(data, Dataset):
        return np.asarray(data.x[:count])
    batches, seen = [], 0
    for i in range(len(data)):
        inputs = data[i][0]
        if not isinstance(inputs, np.ndarray):
            return None
        batches.append(inputs)
        seen += len(inputs)
        if seen >= count:
            break
    return np.concatenate(batches)[:count] if batches else None
