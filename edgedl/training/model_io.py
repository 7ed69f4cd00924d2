"""Saved models in both Kerases: loading a user's file (tf-keras, or Keras 3 for a file Keras 3 wrote), saving
atomically without the optimizer, a plain float32 copy out of a strategy's variables, and what
tensorflow-model-optimization (tf-keras only) needs to build, save and load a quantization-aware model."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from exporters.tfkeras import keras, tf
from runtime.errors import UserError
from runtime.files import atomic_path


@functools.lru_cache(maxsize=None)
def tfmot():
    tf()  # decides TF_USE_LEGACY_KERAS before tfmot imports TensorFlow
    try:
        import tensorflow_model_optimization as module
    except ImportError:
        raise UserError("tensorflow-model-optimization is not installed: pip install 'edgedl[train]'") from None
    return module


def is_tf_keras(model) -> bool:
    return isinstance(model, keras().Model)


def require_tf_keras(model, technique: str) -> None:
    """tfmot works on tf-keras (Keras 2) Sequential/functional models only: say so in one line."""
    if not is_tf_keras(model):
        kind = "Keras 3" if type(model).__module__.split(".")[0] == "keras" else type(model).__name__
        raise UserError(
            f"{technique} needs a tf-keras (Keras 2) model, and this is a {kind} model: rebuild it with tf_keras, "
            "or use post-training quantization, which works on any Keras model"
        )



# Layers without weights that tfmot's default 8-bit scheme has no configuration for (it has Add and
# Concatenate): a residual denoiser's Subtract, an embedder's UnitNormalization. Annotated with
# ``output_quantize_config`` instead, their output is quantized as tfmot quantizes an Add's, so the whole
# model trains with its int8 rounding; pruning leaves them as they are.
OUTPUT_ONLY = ("Subtract", "Multiply", "Maximum", "Minimum", "Average", "UnitNormalization", "Rescaling",
               "Normalization")  # the last two: a model that normalises its own pixels (keras.applications)


@functools.lru_cache(maxsize=None)
def output_quantize_config():
    """A ``QuantizeConfig`` (tfmot's per-layer annotation) that quantizes a weightless layer's output, 8-bit
    asymmetric per tensor with a moving-average range, and nothing else."""
    q = tfmot().quantization.keras

    class OutputQuantizeConfig(q.QuantizeConfig):
        def get_weights_and_quantizers(self, layer):
            return []

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            pass

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            return [q.quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False,
                                                        narrow_range=False)]  # fmt: skip

        def get_config(self):
            return {}

    return OutputQuantizeConfig


def qat_custom_objects() -> dict:
    """What ``quantize_scope`` needs to build or load a QAT model annotated here."""
    return {"OutputQuantizeConfig": output_quantize_config()}


def plain_copy(model):
    """A copy of ``model`` (architecture and weights) in variables of no strategy, computing in float32
    whatever precision it trained in; a QAT model's in tfmot's scope."""
    k = keras()
    if any("Quantize" in type(layer).__name__ for layer in model.layers):
        with tfmot().quantization.keras.quantize_scope(qat_custom_objects()):
            clean = k.models.clone_model(model)
    elif any(layer.dtype_policy.name != "float32" for layer in model.layers):  # trained in mixed precision
        clean = k.models.clone_model(model, clone_function=_in_float32)
    else:
        clean = k.models.clone_model(model)
    clean.set_weights(model.get_weights())
    return clean


def _in_float32(layer):
    """A new layer like ``layer`` that computes in float32 (mixed precision keeps float32 weights already)."""
    return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})


def save_model(model, path: Path) -> None:
    """Save the weights and architecture only, atomically: the optimizer state is training's business
    (``BackupAndRestore`` keeps it) and would triple the size the report compares against."""
    quantized = any("Quantize" in type(layer).__name__ for layer in model.layers)
    if quantized and Path(path).suffix != ".h5":  # the .keras format loses variables of tfmot's QuantizeLayer
        raise ValueError(f"{path}: save a quantization-aware-trained model as .h5")
    try:
        clean = plain_copy(model)
    except ValueError:  # cluster-preserving QAT: tfmot's clone drops its variables; saved as it is
        clean = model
    with atomic_path(path) as tmp:
        if quantized:  # saved in tfmot's scope
            with tfmot().quantization.keras.quantize_scope(qat_custom_objects()):
                clean.save(tmp, include_optimizer=False)
        else:
            clean.save(tmp)


def load_matching_weights(model, path: str | Path) -> tuple[int, int]:
    """Every weight of the checkpoint at ``path`` (an HDF5 weights file by layer name, as keras-applications
    ships them, or a saved model) that a layer of ``model`` of the same name and shapes has; a layer of another
    shape (the classifier head for other classes) keeps its own. Returns (layers loaded, layers of the model
    with weights); refuses a checkpoint that fits no layer."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--weights {path}: no such file")
    source = {}
    if path.suffix in (".h5", ".hdf5") and not _is_saved_model_h5(path):
        import h5py

        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            for name in group.attrs.get("layer_names", list(group.keys())):
                name = name.decode() if isinstance(name, bytes) else name
                names = group[name].attrs.get("weight_names", [])
                source[name] = [np.asarray(group[name][w.decode() if isinstance(w, bytes) else w]) for w in names]
    else:
        source = {layer.name: layer.get_weights() for layer in load_keras_model(path).layers}
    with_weights = [layer for layer in model.layers if layer.weights]
    loaded = 0
    for layer in with_weights:
        weights = source.get(layer.name)
        if weights and [w.shape for w in weights] == [w.shape for w in layer.get_weights()]:
            layer.set_weights(weights)
            loaded += 1
    if not loaded:
        raise UserError(f"--weights {path}: no layer of {model.name} has its name and shapes there; give a "
                        "checkpoint of the same architecture (width and layer names)")  # fmt: skip
    return loaded, len(with_weights)


def _is_saved_model_h5(path: Path) -> bool:
    """Whether an HDF5 file is a whole saved model (``model_config`` inside), not a weights file."""
    import h5py

    with h5py.File(path, "r") as f:
        return "model_config" in f.attrs


def load_keras_model(path: str | Path):
    """Load a user's saved Keras model (``.keras``, ``.h5`` or a SavedModel folder) with tf-keras."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such model file or folder")
    if path.is_file() and path.suffix not in (".keras", ".h5", ".hdf5"):
        raise UserError(f"{path}: unknown Keras model format {path.suffix!r}; expected .keras, .h5 or a SavedModel folder")
    if path.is_dir() and not (path / "saved_model.pb").exists():
        raise UserError(f"{path}: folder is not a SavedModel (no saved_model.pb inside)")
    from ..models.seq_denoiser import recurrent_frame_denoiser
    from .twin import keras3_activations

    recurrent_frame_denoiser()  # registers edgedl's own layer before a model that uses it loads
    keras3_activations()  # and the Keras 3 activations a tf-keras twin keeps (MobileNetV3's hard-swish)
    try:
        if _saved_by_keras3(path):
            import keras as keras3  # Keras 3 files load with Keras 3: post-training variants only

            return keras3.models.load_model(path, compile=False)
        return _load_tf_keras(path)
    except Exception as exc:  # Keras raises many types for a bad file; all mean "cannot load"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise UserError(f"{path}: cannot load this Keras model ({first}); is the file complete?") from None


def _load_tf_keras(path: Path):
    """tf-keras's loader; a quantization-aware-trained model (tfmot's wrappers) loads in tfmot's scope."""
    try:
        return keras().models.load_model(path, compile=False)
    except Exception as first:  # noqa: BLE001 - tf-keras says only "'str' object is not callable"
        try:
            with tfmot().quantization.keras.quantize_scope(qat_custom_objects()):
                return keras().models.load_model(path, compile=False)
        except Exception:  # noqa: BLE001 - not a QAT model either: the first reason is the one to give
            raise first from None


def _saved_by_keras3(path: Path) -> bool:
    """Whether a ``.keras`` archive was written by Keras 3 (its metadata.json says so)."""
    import zipfile

    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        try:
            meta = json.loads(archive.read("metadata.json"))
        except (KeyError, ValueError):
            return False
    return str(meta.get("keras_version", "")).startswith("3")
