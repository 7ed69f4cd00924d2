"""What a compressed model costs: parameters, multiply-accumulates, sparsity per layer."""
from __future__ import annotations

from typing import Optional

import numpy as np


def _unwrap(layer):
    # tfmot wraps layers (PruneLowMagnitude, ClusterWeights, QuantizeWrapper) around the real one.
    while hasattr(layer, "layer") and type(layer).__name__ not in ("Bidirectional", "TimeDistributed"):
        layer = layer.layer
    return layer


def _shape(tensor_shape) -> tuple:
    return tuple(int(d) if d is not None else 1 for d in tensor_shape)


# Layers with weights but no multiply-accumulates at deployment (folded into the convolution before, or lookups;
# QAT's input quantizer holds only its range).
NO_MACS = ("BatchNormalization", "LayerNormalization", "Normalization", "Rescaling", "Embedding", "PReLU",
           "GroupNormalization", "UnitNormalization", "QuantizeLayer")  # fmt: skip


def _io(layer) -> tuple:
    """(input shape, output shape) without the batch; Keras 2 has ``output_shape``, Keras 3 ``output.shape``."""
    try:
        out, inp = layer.output_shape, layer.input_shape
    except (AttributeError, RuntimeError):
        out, inp = tuple(layer.output.shape), tuple(layer.input.shape)
    if isinstance(out, list) or isinstance(inp, list):
        return (), ()
    return _shape(inp[1:]), _shape(out[1:])


def _depthwise_kernel(layer):
    """A depthwise kernel: ``depthwise_kernel`` in tf-keras, ``kernel`` in Keras 3's DepthwiseConv2D."""
    kernel = getattr(layer, "depthwise_kernel", None)
    return kernel if kernel is not None else layer.kernel


def layer_macs(layer) -> Optional[int]:
    """Multiply-accumulates of one call on one sample (batch dimension excluded); None where unknown."""
    if type(layer).__name__ == "TimeDistributed":  # the inner layer, once per time step
        steps, inner = int(layer.input_shape[1] or 1), layer.layer
        per_step_outputs = int(np.prod([d or 1 for d in layer.output_shape[2:-1]]))  # pixels, or 1 for Dense
        if type(inner).__name__ in ("Conv2D", "Dense"):
            return steps * per_step_outputs * int(np.prod(inner.kernel.shape))
        return 0 if not inner.weights or type(inner).__name__ in NO_MACS else None
    layer = _unwrap(layer)
    kind = type(layer).__name__
    if hasattr(layer, "layers") and kind not in ("Bidirectional",):  # a model inside the model
        return count_macs(layer)
    try:
        inp, out = _io(layer)
    except (AttributeError, RuntimeError, ValueError):
        return None if layer.weights else 0
    if kind in ("Conv2D", "Conv1D", "Conv2DTranspose", "Conv1DTranspose"):
        kernel = layer.kernel.shape  # (kh, kw, cin/groups, cout) or transposed (kh, kw, cout, cin)
        spatial = int(np.prod(out[:-1])) if kind != "Conv2DTranspose" else int(np.prod(inp[:-1]))
        return spatial * int(np.prod(kernel))
    if kind in ("DepthwiseConv2D", "DepthwiseConv1D"):
        return int(np.prod(out[:-1])) * int(np.prod(_depthwise_kernel(layer).shape))
    if kind in ("SeparableConv2D", "SeparableConv1D"):
        kernels = np.prod(_depthwise_kernel(layer).shape) + np.prod(layer.pointwise_kernel.shape)
        return int(np.prod(out[:-1])) * int(kernels)
    if kind == "Conv3D":
        return int(np.prod(out[:-1])) * int(np.prod(layer.kernel.shape))
    if kind == "Dense":
        return int(np.prod(inp[:-1])) * int(np.prod(layer.kernel.shape))
    if kind in ("LSTM", "GRU", "SimpleRNN"):
        steps = inp[0] if len(inp) == 2 else 1
        return steps * int(np.prod(layer.cell.kernel.shape) + np.prod(layer.cell.recurrent_kernel.shape))
    if kind in ("Bidirectional",):
        forward = layer_macs(layer.forward_layer)
        return None if forward is None else 2 * forward
    if kind == "AlignedRecursiveDenoiser":  # per frame and pixel: the CNN, and the shifts of two carried images
        frames, h, w = inp[0], inp[1], inp[2]
        cnn = sum(int(np.prod(conv.kernel.shape)) for conv in layer.convs + [layer.noise])
        shifts = 2 * layer.shifts.size if layer.recurrent else 0  # one-hot, but convolutions all the same
        return int(h * w * (frames * cnn + (frames - 1) * shifts))
    if kind in NO_MACS or not layer.weights:  # pooling, activations, reshapes: no multiply-accumulates
        return 0
    return None  # a layer with weights this counter does not know: better unknown than a wrong 0


def count_macs(model) -> Optional[int]:
    """Multiply-accumulates of one inference on one sample (convolutions, dense and recurrent layers);
    None when a layer with weights is of a kind the counter does not know."""
    counts = [layer_macs(layer) for layer in model.layers]
    return None if any(c is None for c in counts) else int(sum(counts))


def copy_model(model):
    """A new model with the same architecture and weights, sharing nothing with ``model``."""
    from exporters.tfkeras import keras

    clone = keras().models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


# Variables that tfmot's wrappers add for their own bookkeeping, not deployed weights: QAT's quantizer ranges and
# step counter; cluster-preserving QAT's copy of the original weights, centroids and indices; pruning's masks.
_BOOKKEEPING = ("optimizer_step", "_min:", "_max:", "ori_weights", "cluster_centroids", "pulling_indices",
                "sparsity_mask", "mask:", "threshold:", "pruning_step")  # fmt: skip


def count_params(model) -> int:
    """Deployed parameters: what tfmot's wrappers keep for training (ranges, masks, centroids) is not counted."""
    return int(sum(int(np.prod(w.shape)) for w in model.weights if not any(b in w.name for b in _BOOKKEEPING)))


def _kernels(layer) -> list:
    # Wrapped or not, a kernel is the weight named ".../kernel:0" (QAT moves it from the inner layer to its wrapper).
    return [w for w in layer.weights if w.name.rsplit("/", 1)[-1].split(":")[0] in ("kernel", "depthwise_kernel")]


def layer_sparsity(model) -> dict:
    """Fraction of exactly-zero kernel weights of every layer that has a kernel."""
    return {layer.name: float(np.mean(np.asarray(k[0].numpy()) == 0)) for layer in model.layers if (k := _kernels(layer))}


def overall_sparsity(model) -> float:
    """Zero kernel weights over all kernel weights."""
    kernels = [np.asarray(k.numpy()) for layer in model.layers for k in _kernels(layer)]
    total = sum(k.size for k in kernels)
    return sum(int(np.sum(k == 0)) for k in kernels) / total if total else 0.0


def distinct_kernel_values(model) -> dict:
    """Distinct values per kernel (what clustering bounds)."""
    return {layer.name: int(np.unique(np.asarray(k[0].numpy())).size) for layer in model.layers if (k := _kernels(layer))}
