"""Keras model -> ``.onnx`` (float32, or int8 through onnxruntime's own quantization tools).

The float graph comes from tf2onnx; ``dynamic`` is ``quantize_dynamic``
(int8 weights, activations quantized on the fly); ``int8`` is
``quantize_static`` in QDQ format, calibrated on training inputs after
``quant_pre_process``. The metadata travels inside, as ``metadata_props``.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.files import seal, sha256_file
from runtime.metadata import ONNX_METADATA_KEY, TensorSpec

from ._base import Artifact, ExportConfig, ModelInfo, register_exporter, staged
from .onnx_source import CALIBRATIONS, activation_type, quantize
from ._check import check_if_asked
from .tfkeras import tf

OPSET = 17


@dataclass(frozen=True)
class OnnxConfig(ExportConfig):
    """``precision``: float32, dynamic (``quantize_dynamic``), int8 (static QDQ, calibrated) or int8_mixed (that,
    with the layers that hurt most kept in float: ``onnx_mixed``); ``activations``:
    int8's activation type, ``auto`` (the best for this machine's processor), ``uint8`` or ``int8``
    (``onnx_source.activation_type``); ``calibration_method``: how its ranges are calibrated, ``minmax``,
    ``percentile`` or ``entropy`` (``onnx_source.CALIBRATIONS``)."""

    PRECISIONS = ("float32", "dynamic", "int8", "int8_mixed")
    activations: str = "auto"
    calibration_method: str = "minmax"

    def __post_init__(self):
        from runtime.errors import UserError

        super().__post_init__()
        activation_type(self.activations, arch="x86_64", extensions=[])  # checks the choice only
        if self.calibration_method not in CALIBRATIONS:
            raise UserError(f"calibration method {self.calibration_method!r} is not one of {', '.join(CALIBRATIONS)}")


def input_names(model) -> list:
    """``input`` for a model of one input; the Keras input names for several (the names its data is keyed by)."""
    return ["input"] if len(model.inputs) == 1 else [t.name.split(":")[0] for t in model.inputs]


def _float_onnx(model, path: Path) -> None:
    import tf2onnx

    from .tfkeras import keras

    t = tf()
    names = input_names(model)
    spec = [t.TensorSpec(x.shape, t.float32, name=n) for x, n in zip(model.inputs, names)]
    options = {"input_signature": spec, "opset": OPSET, "output_path": str(path)}
    if isinstance(model, keras().Model):
        from ._dilated import direct_dilation

        with direct_dilation(model, explicit_padding=True):  # a dilated Conv: one Conv
            tf2onnx.convert.from_keras(model, optimizers=_optimizers(), **options)
    else:  # Keras 3: tf2onnx's Keras path fails on it (KeyError 'keras_tensor_N'); its graph path does not.
        tf2onnx.convert.from_function(t.function(lambda *x: model(x if len(x) > 1 else x[0], training=False)),
                                      **options)


def _optimizers():
    """tf2onnx's graph optimizers without its reshape optimizer, which now and then (it depends on Python's
    hash order: about one conversion in 30 here) folds a Reshape and a Squeeze into one Reshape of the wrong
    rank: a DnCNN's N×H×W×1 output came out 1×N×H×W×1. None (tf2onnx's defaults) if its list is not found."""
    from collections import OrderedDict

    from tf2onnx import optimizer

    found = getattr(optimizer, "_get_optimizers", None)
    return None if found is None else OrderedDict((k, v) for k, v in found().items() if k != "reshape_optimizer")


def _quantize(float_path: Path, out: Path, config: OnnxConfig, work: Path, task: str) -> tuple:
    calibration = config.calibration_set() if config.precision.startswith("int8") else None
    if calibration is not None and not isinstance(calibration, dict):
        calibration = {"input": calibration}  # the one input's name (``input_names``)
    return quantize(float_path, out, config.precision, calibration, work, config.activations, task,
                    config.calibration_method)


def _spec(value_info) -> TensorSpec:
    import onnx

    tensor = value_info.type.tensor_type
    shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)).name
    return TensorSpec(name=value_info.name, shape=shape, dtype=dtype)


def _graph_inputs(proto) -> list:
    """The graph's real inputs: older IRs also list initializers (weights) as inputs."""
    weights = {init.name for init in proto.graph.initializer}
    return [v for v in proto.graph.input if v.name not in weights]


@register_exporter("onnx", ".onnx", OnnxConfig)
def export_onnx(model, path, config: OnnxConfig, info: ModelInfo) -> Artifact:
    """Convert ``model`` (and quantize it) to ``path``; check it with onnx.checker and against the model."""
    import onnx

    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="edgedl-onnx-") as work_dir, staged(path) as out:
        work = Path(work_dir)
        float_path = work / "float.onnx"
        _float_onnx(model, float_path)
        graph_path, notes = float_path, ()
        if config.precision != "float32":
            graph_path = work / "quant.onnx"
            notes = _quantize(float_path, graph_path, config, work, info.task)
        proto = onnx.load(str(graph_path))
        meta = info.record("onnx", config.precision, tuple(_spec(v) for v in _graph_inputs(proto)),
                           tuple(_spec(v) for v in proto.graph.output), notes)  # fmt: skip
        onnx.helper.set_model_props(proto, {ONNX_METADATA_KEY: meta.to_json()})
        out.write_bytes(seal(proto.SerializeToString()))
        onnx.checker.check_model(str(out), full_check=True)
        max_diff, agreement = check_if_asked(out, model, config, info.task)
    return Artifact(path, "onnx", config.precision, meta, path.stat().st_size, sha256_file(path), max_diff, agreement)
