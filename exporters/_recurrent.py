"""Recurrent layers for TFLite: unrolled where the sequence length is fixed, otherwise a one-line refusal.

TFLite's builtin operators cannot run Keras's recurrent loop with a free batch
(``tf.TensorListReserve ... element_shape to be static``), and Select TF ops
need the Flex delegate, which no device interpreter here has (STACK.md).
Unrolling (``unroll=True``) turns the loop into plain operators, in all four
precisions, with the same weights; it needs a fixed number of time steps.
"""
from __future__ import annotations

import sys

from typing import Optional

from runtime.errors import UserError

UNROLLABLE = ("LSTM", "GRU", "SimpleRNN")
RECURRENT = UNROLLABLE + ("Bidirectional", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "RNN")


def recurrent_layers(model) -> list:
    return [layer for layer in getattr(model, "layers", []) if type(layer).__name__ in RECURRENT]


def _timesteps(layer) -> Optional[int]:
    shape = layer.input_shape if hasattr(layer, "input_shape") else None
    try:
        return shape[1] if shape is not None and not isinstance(shape, list) else None
    except (AttributeError, IndexError, TypeError):
        return None


def _why_not(layer) -> Optional[str]:
    """Why ``layer`` cannot be unrolled, or None."""
    kind = type(layer).__name__
    inner = layer.forward_layer if kind == "Bidirectional" else layer
    if type(inner).__name__ not in UNROLLABLE:
        return (f"{type(inner).__name__} has no unrolled form; write its steps out as convolutions (as edgedl's "
                "seq_denoiser does)")
    if _timesteps(layer) is None:
        return "its sequence length is free; give its input a fixed number of time steps so edgedl can unroll it"
    return None


def unrolled(model):
    """A copy of ``model`` with every recurrent layer unrolled (same weights). Raises a ``UserError`` naming
    the first layer that cannot be, and the way out."""
    layers = recurrent_layers(model)
    for layer in layers:
        reason = _why_not(layer)
        if reason is not None:
            raise UserError(f"layer {layer.name!r} ({type(layer).__name__}) does not convert to TFLite builtin "
                            f"operators: {reason}, or use the model's ONNX variants")  # fmt: skip
    module = sys.modules[type(model).__module__.split(".")[0]]  # tf_keras, or keras for Keras 3: loaded already
    keras = getattr(module, "keras", module) if module.__name__ == "tensorflow" else module

    def clone(layer):
        config = layer.get_config()
        if type(layer).__name__ in UNROLLABLE:
            config["unroll"] = True
        elif type(layer).__name__ == "Bidirectional":
            for key in ("layer", "backward_layer"):
                if config.get(key):
                    config[key]["config"]["unroll"] = True
        return type(layer).from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy
