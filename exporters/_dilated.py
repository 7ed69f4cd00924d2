"""Dilated convolutions for conversion: one convolution with dilation factors, not Keras's space-to-batch form.

tf-keras's ``Conv2D`` with ``dilation_rate`` > 1 calls ``tf.nn.convolution``, which, on an input of free
height and width, becomes SpaceToBatchND, Conv2D, BatchToSpaceND and a dozen shape operators. The TFLite
converter's pass that fuses them back into one dilated CONV_2D needs static shapes, so a denoiser made for
any image size keeps them: slower, and the batch norms that follow stay unfolded (a MUL and an ADD of
their own, each rounded again in int8; in a QAT model the fake-quantized kernel meets the space-to-batch
detour too). While converting, the dilated ``Conv2D`` layers, bare or inside a tfmot ``QuantizeWrapper``,
compute ``tf.nn.conv2d`` with ``dilations``: TensorFlow's own dilated convolution, the same weights, one
CONV_2D (or one ONNX Conv) each.
"""
from __future__ import annotations

import contextlib


def dilated_convs(model) -> list:
    """The model's ``Conv2D`` layers (not subclasses; bare or inside a wrapper) with a dilation above 1."""
    inner = [getattr(layer, "layer", layer) for layer in getattr(model, "layers", [])]
    return [layer for layer in inner if type(layer).__name__ == "Conv2D" and max(layer.dilation_rate) > 1]


def _direct_op(layer, tf, explicit: bool):
    def convolution_op(inputs, kernel):
        padding = layer.padding.upper()
        if explicit and padding == "SAME":  # onnxruntime refuses dilation with SAME_UPPER: numbers instead
            pads = [((k - 1) * d // 2, (k - 1) * d - (k - 1) * d // 2)
                    for k, d in zip(layer.kernel_size, layer.dilation_rate)]  # fmt: skip
            padding = [[0, 0], list(pads[0]), list(pads[1]), [0, 0]]
        return tf.nn.conv2d(inputs, kernel, strides=layer.strides, padding=padding, dilations=layer.dilation_rate)

    return convolution_op


@contextlib.contextmanager
def direct_dilation(model, explicit_padding: bool = False):
    """Within the block, ``model``'s dilated tf-keras ``Conv2D`` layers compute their convolution directly
    (their "same" padding as numbers with ``explicit_padding``); the model is as it was afterwards. Nothing
    changes for a model without them, a Keras 3 model, or a layout or padding this does not handle."""
    layers = dilated_convs(model)
    if not layers or type(model).__module__.split(".")[0] != "tf_keras" or any(
            layer.data_format != "channels_last" or layer.padding not in ("same", "valid") for layer in layers):
        yield model  # fmt: skip
        return
    import tensorflow as tf

    for layer in layers:  # an instance attribute, past Keras's attribute tracking, removed below
        object.__setattr__(layer, "convolution_op", _direct_op(layer, tf, explicit_padding))
    try:
        yield model
    finally:
        for layer in layers:
            object.__delattr__(layer, "convolution_op")
