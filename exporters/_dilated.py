"""Dilated convolutions for conversion: one convolution with dilation factors, not Keras's space-to-batch form.

tf-keras's ``Conv2D`` with ``dilation_rate`` > 1 calls ``tf.nn.convolution``, which, on an input of free
height and width, becomes SpaceToBatchND, Conv2D, BatchToSpaceND and a dozen shape operators. The TFLite
converter's pass that fuses them back into one dilated CONV_2D needs static shapes, so a denoiser made for
any image size keeps them: slower, and the batch norms that follow stay unfolded (a MUL and an ADD of
their own, each rounded again in int8). A copy of the model whose dilated ``Conv2D`` layers call
``tf.nn.conv2d`` with ``dilations`` (the same function, the same weights) converts to one CONV_2D each.
"""
from __future__ import annotations

import functools


def dilated_convs(model) -> list:
    """The model's own ``Conv2D`` layers (not subclasses, not wrapped) with a dilation above 1."""
    return [layer for layer in getattr(model, "layers", [])
            if type(layer).__name__ == "Conv2D" and max(layer.dilation_rate) > 1]  # fmt: skip


@functools.lru_cache(maxsize=None)
def _direct_conv_class(keras_module, tf_module, explicit: bool):
    class DirectDilatedConv2D(keras_module.layers.Conv2D):
        """Conv2D computed by ``tf.nn.conv2d(..., dilations=...)``: TensorFlow's own dilated convolution;
        with ``explicit``, its "same" padding given as numbers (onnxruntime refuses dilation with SAME_UPPER)."""

        def convolution_op(self, inputs, kernel):
            padding = self.padding.upper()
            if explicit and padding == "SAME":
                pads = [((k - 1) * d // 2, (k - 1) * d - (k - 1) * d // 2)
                        for k, d in zip(self.kernel_size, self.dilation_rate)]  # fmt: skip
                padding = [[0, 0], list(pads[0]), list(pads[1]), [0, 0]]
            return tf_module.nn.conv2d(inputs, kernel, strides=self.strides, padding=padding,
                                       dilations=self.dilation_rate)  # fmt: skip

    return DirectDilatedConv2D


def with_direct_dilation(model, explicit_padding: bool = False):
    """A copy of a tf-keras ``model`` whose dilated ``Conv2D`` layers are computed directly (their "same"
    padding as numbers with ``explicit_padding``); the model itself when it has none (or is not a tf-keras
    model, or uses a layout or padding this does not handle)."""
    layers = dilated_convs(model)
    if not layers or type(model).__module__.split(".")[0] != "tf_keras" or any(
            layer.data_format != "channels_last" or layer.padding not in ("same", "valid") for layer in layers):
        return model  # fmt: skip
    import tensorflow as tf
    import tf_keras as keras

    direct = _direct_conv_class(keras, tf, explicit_padding)

    def clone(layer):
        if layer in layers:
            return direct.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy
