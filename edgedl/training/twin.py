"""A Keras 3 model's tf-keras twin: the same layers, connections and weights, built with tf-keras, so that
tensorflow-model-optimization (tf-keras only) can prune, cluster and quantization-aware-train it.

The twin is made layer by layer: each Keras 3 layer's config is read in tf-keras's terms (dtype policies as
names, serialized objects in the legacy form, keys tf-keras does not know left out), the layer is called on
its inputs' twins in the order of the model's graph, and gets the original's weights. The twin must then give
the original's outputs on the same inputs, or it is refused; a layer tf-keras has no class for is refused in
one line naming it, and the post-training variants (which need no twin) still come.
"""
from __future__ import annotations

import functools
import inspect
import sys

import numpy as np

from exporters.tfkeras import keras, tf
from runtime.errors import UserError

# Keyword arguments every tf-keras layer takes (``Layer.__init__``), beside its own.
BASE_KWARGS = {"name", "trainable", "dtype", "dynamic", "input_shape", "batch_input_shape", "batch_size", "input_dim",
               "autocast", "activity_regularizer"}  # fmt: skip
# The twin's outputs must be the original's within this (relative to the outputs' magnitude).
TOLERANCE = 1e-4
# Keras 3 operations a functional graph holds besides layers (``x + 3.0`` in MobileNetV3's hard-swish), by
# class name: the TensorFlow function each is, which tf-keras keeps in its graph as a ``TFOpLambda``.
OPERATIONS = {"Add": "add", "Subtract": "subtract", "Multiply": "multiply", "Divide": "divide",
              "TrueDivide": "truediv", "Maximum": "maximum", "Minimum": "minimum", "Negative": "negative",
              "Square": "square", "Sqrt": "sqrt", "Exp": "exp", "Tanh": "tanh", "Sigmoid": "sigmoid"}  # fmt: skip


def is_keras3(model) -> bool:
    return type(model).__module__.split(".")[0] == "keras"


@functools.lru_cache(maxsize=None)
def keras3_activations() -> dict:
    """Keras 3 activations tf-keras lacks or defines otherwise, as functions registered for saving:
    ``hard_sigmoid`` is relu6(x + 3) / 6 in Keras 3 (tf-keras: a clipped 0.2 x + 0.5), ``hard_silu`` (alias
    ``hard_swish``) x times that: MobileNetV3's."""
    k, t = keras(), tf()

    @k.utils.register_keras_serializable(package="edgedl")
    def hard_sigmoid3(x):
        return t.nn.relu6(x + 3.0) / 6.0

    @k.utils.register_keras_serializable(package="edgedl")
    def hard_silu(x):
        return x * t.nn.relu6(x + 3.0) / 6.0

    return {"hard_sigmoid": hard_sigmoid3, "hard_silu": hard_silu, "hard_swish": hard_silu}


def _object(value: dict) -> dict:
    """A Keras 3 serialized object (initializer, regularizer, constraint) in tf-keras's legacy form, with the
    arguments its tf-keras class takes."""
    k = keras()
    cls = next((getattr(m, value["class_name"]) for m in (k.initializers, k.regularizers, k.constraints)
                if hasattr(m, value["class_name"])), None)  # fmt: skip
    config = _translated(value.get("config") or {})
    if cls is not None:
        params = inspect.signature(cls.__init__).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            config = {key: v for key, v in config.items() if key in params}
    return {"class_name": value["class_name"], "config": config}


def _translated(value):
    if isinstance(value, dict):
        if value.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and isinstance(value.get("config"), dict):
            return value["config"]["name"]
        if {"module", "class_name", "config"} <= set(value):
            return _object(value)
        return {key: _translated(v) for key, v in value.items()}
    if isinstance(value, list):
        return [_translated(v) for v in value]
    return value


def _layer_config(layer, cls) -> dict:
    """``layer``'s config as ``cls`` (its tf-keras class) takes it."""
    config = _translated(layer.get_config())
    params = inspect.signature(cls.__init__).parameters
    accepted = set(params) | BASE_KWARGS
    config = {key: v for key, v in config.items() if key in accepted}
    if isinstance(config.get("activation"), str) and config["activation"] in keras3_activations():
        config["activation"] = keras3_activations()[config["activation"]]
    return config


def twin_layer(layer):
    """A tf-keras layer like the Keras 3 ``layer`` (not yet built)."""
    kind = type(layer).__name__
    cls = getattr(keras().layers, kind, None)
    if cls is None or not isinstance(cls, type):
        raise UserError(f"layer {layer.name!r} ({kind}) has no tf-keras twin, which pruning, clustering and QAT need; "
                        "the post-training variants do not")  # fmt: skip
    try:
        return cls.from_config(_layer_config(layer, cls))
    except (TypeError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
        raise UserError(f"layer {layer.name!r} ({kind}) does not rebuild in tf-keras ({first[:160]}); the "
                        "post-training variants do not need it") from None


def _input_twin(tensor):
    layer = tensor._keras_history.operation
    config = layer.get_config()
    shape = config.get("batch_shape") or (None, *tensor.shape[1:])
    dtype = _translated(config.get("dtype", "float32"))
    return keras().Input(shape=tuple(shape[1:]), batch_size=shape[0], dtype=dtype, name=layer.name)


def tf_keras_twin(model, check_inputs=None):
    """The tf-keras twin of a Keras 3 functional or sequential ``model``, checked to give its outputs (on
    ``check_inputs``, or on random ones of its input shapes)."""
    k3 = sys.modules["keras"]  # Keras 3, loaded already: ``model`` is one of its models
    t = tf()
    if not model.inputs:
        raise UserError(f"{model.name}: a Keras 3 model with no defined inputs (subclassed, or a Sequential built "
                        "without an Input) cannot be rebuilt in tf-keras; give it an Input")  # fmt: skip
    twins = {id(x): _input_twin(x) for x in model.inputs}
    inputs = [twins[id(x)] for x in model.inputs]
    operations = getattr(model, "operations", None) or model.layers
    for layer in operations:
        if type(layer).__name__ == "InputLayer":
            continue
        if isinstance(layer, k3.layers.Layer):
            twin = twin_layer(layer)
        elif type(layer).__name__ in OPERATIONS:
            twin = getattr(t.math, OPERATIONS[type(layer).__name__])
        else:
            raise UserError(f"{model.name}: {type(layer).__name__} ({layer.name!r}) is a Keras 3 operation with no "
                            "tf-keras twin; the post-training variants do not need one")  # fmt: skip
        called = False
        for node in layer._inbound_nodes:
            if not all(id(x) in twins for x in t.nest.flatten(node.input_tensors)):
                continue  # a call of the layer in another model
            mapped = lambda v: twins[id(v)] if isinstance(v, k3.KerasTensor) else v  # noqa: E731
            args = t.nest.map_structure(mapped, list(node.arguments.args))
            kwargs = t.nest.map_structure(mapped, dict(node.arguments.kwargs))
            outputs = twin(*args, **kwargs)
            for original, made in zip(t.nest.flatten(node.outputs), t.nest.flatten(outputs)):
                twins[id(original)] = made
            called = True
        if called and isinstance(layer, k3.layers.Layer):
            _copy_weights(layer, twin)
    outputs = [twins[id(x)] for x in model.outputs]
    made = keras().Model(inputs, outputs if len(outputs) > 1 else outputs[0], name=model.name)
    _check_outputs(model, made, check_inputs)
    return made


def as_tf_keras(model, check_inputs=None):
    """``model`` as tf-keras has it: itself, or a Keras 3 model's twin (a ``UserError`` naming what stops one)."""
    return tf_keras_twin(model, check_inputs) if is_keras3(model) else model


def _copy_weights(layer, twin) -> None:
    weights = layer.get_weights()
    shapes = [w.shape for w in twin.get_weights()]
    if [w.shape for w in weights] != shapes:
        raise UserError(f"layer {layer.name!r} ({type(layer).__name__}) keeps its weights otherwise in tf-keras "
                        f"({[w.shape for w in weights]} against {shapes}); the post-training variants do not "
                        "need a twin")  # fmt: skip
    twin.set_weights(weights)


def _check_outputs(model, made, check_inputs) -> None:
    if check_inputs is None:
        rng = np.random.default_rng(0)
        check_inputs = [rng.random((2, *[d or 8 for d in x.shape[1:]]), dtype=np.float32) for x in model.inputs]
        check_inputs = check_inputs if len(check_inputs) > 1 else check_inputs[0]
    want = tf().nest.flatten(model(check_inputs, training=False))
    got = tf().nest.flatten(made(check_inputs, training=False))
    for a, b in zip(want, got):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if a.shape != b.shape or np.abs(a - b).max(initial=0) > TOLERANCE * max(1.0, np.abs(a).mean()):
            raise UserError(f"{model.name}: its tf-keras twin computes otherwise (largest difference "
                            f"{np.abs(a - b).max(initial=0) if a.shape == b.shape else 'in shape'}); the "
                            "post-training variants do not need a twin")  # fmt: skip
