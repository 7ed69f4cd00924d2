"""The one place that imports TensorFlow and decides which Keras it means.

tensorflow-model-optimization only works with Keras 2 (tf-keras), and it sets
``TF_USE_LEGACY_KERAS=1`` itself when imported, which changes what
``tf.keras`` means for the rest of the process. We decide it here, before
TensorFlow is first imported, so that ``tf.keras``, ``tf_keras`` and tfmot all
agree. A user who set the variable already keeps their choice.
"""
from __future__ import annotations

import functools
import os

from runtime.errors import UserError

INSTALL_HINT = "pip install 'edgedl[train]'"


def _missing(exc: ImportError) -> UserError:
    return UserError(f"the host side of edgedl is not installed ({exc.name} is missing): {INSTALL_HINT}")


@functools.lru_cache(maxsize=None)
def tf():
    """TensorFlow, imported with Keras 2 as ``tf.keras``."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    try:
        import tensorflow
    except ImportError as exc:
        raise _missing(exc) from None
    return tensorflow


@functools.lru_cache(maxsize=None)
def keras():
    """tf-keras (the Keras 2 API), the Keras that edgedl builds and compresses with."""
    tf()
    try:
        import tf_keras
    except ImportError as exc:
        raise _missing(exc) from None
    return tf_keras


def output_names(model) -> list:
    """The names of a model's outputs, which converters keep: tf-keras's ``output_names``, or in Keras 3 (whose
    ``Sequential`` has none) the name of the layer each output comes from."""
    names = getattr(model, "output_names", None)
    if names:
        return list(names)
    return [tensor._keras_history[0].name for tensor in model.outputs]


def weights_sha256(model) -> str:
    """A fingerprint of a Keras model: sha256 over its architecture and weights."""
    import hashlib

    digest = hashlib.sha256(model.to_json().encode())
    for w in model.get_weights():
        digest.update(w.tobytes())
    return digest.hexdigest()
