"""Keras model -> ``.tflite`` (float32, float16, dynamic-range, full-integer int8) with a metadata sidecar."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from runtime.files import sha256_file
from runtime.metadata import ModelMetadata, Quantization, TensorSpec, sidecar_path

from ._base import EDGEDL_VERSION, Artifact, ExportConfig, ModelInfo, register_exporter, staged
from ._check import check_against_keras
from ._tf import tf


class TFLiteConfig(ExportConfig):
    """``precision``: float32, float16 (weights), dynamic (int8 weights, float activations) or int8
    (int8 weights and activations, int8 input and output, calibrated)."""

    PRECISIONS = ("float32", "float16", "dynamic", "int8")


def _converter(model, config: TFLiteConfig):
    t = tf()
    conv = t.lite.TFLiteConverter.from_keras_model(model)
    if config.precision != "float32":
        conv.optimizations = [t.lite.Optimize.DEFAULT]
    if config.precision == "float16":
        conv.target_spec.supported_types = [t.float16]
    elif config.precision == "int8":
        calib = config.calibration_set()

        def representative():
            for i in range(len(calib)):
                yield [calib[i : i + 1]]

        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [t.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = t.int8
        conv.inference_output_type = t.int8
    return conv


def _spec(detail: dict) -> TensorSpec:
    scale, zero_point = detail["quantization"]
    signature = detail.get("shape_signature", detail["shape"])
    return TensorSpec(
        name=detail["name"],
        shape=tuple(None if d < 0 else int(d) for d in signature),
        dtype=np.dtype(detail["dtype"]).name,
        quantization=Quantization(float(scale), int(zero_point)) if scale else None,
    )


def tensor_specs(path: Path) -> tuple[TensorSpec, TensorSpec]:
    """The first input's and output's spec, as the interpreter sees them."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    return _spec(interp.get_input_details()[0]), _spec(interp.get_output_details()[0])


@register_exporter("tflite", ".tflite", TFLiteConfig)
def export_tflite(model, path, config: TFLiteConfig, info: ModelInfo) -> Artifact:
    """Convert ``model`` and write ``path`` plus its ``.json`` sidecar; check it runs like the model."""
    path = Path(path)
    flatbuffer = _converter(model, config).convert()
    with staged(path) as out:
        out.write_bytes(flatbuffer)
        inp, outp = tensor_specs(out)
        meta = ModelMetadata(
            task=info.task,
            format="tflite",
            precision=config.precision,
            input=inp,
            output=outp,
            normalization=info.normalization,
            labels=info.labels,
            techniques=tuple(info.techniques),
            source_sha256=info.source_sha256,
            edgedl_version=EDGEDL_VERSION,
            artifact_sha256=sha256_file(out),
        )
        sidecar_path(out).write_text(meta.to_json() + "\n")
        max_diff, agreement = float("nan"), float("nan")
        check = config.check_set()
        if check is not None:
            max_diff, agreement = check_against_keras(out, model, check, config.precision, info.task)
    return Artifact(path, "tflite", config.precision, meta, path.stat().st_size, meta.artifact_sha256, max_diff, agreement)
