"""Keras model -> ``.tflite`` (float32, float16, dynamic-range, full-integer int8) that describes itself.

edgedl's record travels inside the flatbuffer, as a metadata buffer named
``edgedl`` (the place TFLite keeps its own ``TFLITE_METADATA``): one file to
copy. It carries the file's checksum (``runtime.files.seal``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from runtime.errors import UserError
from runtime.files import seal, sha256_file
from runtime.introspect import tflite_specs
from runtime.metadata import TFLITE_METADATA_NAME, ModelMetadata, sidecar_path

from ._base import Artifact, ExportConfig, ModelInfo, NotApplicable, register_exporter, sample_count, staged
from ._check import check_if_asked
from .tfkeras import tf


class TFLiteConfig(ExportConfig):
    """``precision``: float32, float16 (weights), dynamic (int8 weights, float activations), or int8 weights
    and activations, calibrated: ``int8`` (int8 input and output), ``int8_float`` (float input and output,
    the conversions inside) or ``int8_pixels`` (the picture's 8-bit pixels in, as a camera gives them, with
    the normalisation folded into the input's quantization; float output); ``int8_mixed``: ``int8_float``
    with the layers whose quantization hurts most kept in float (``tflite_mixed``)."""

    PRECISIONS = ("float32", "float16", "dynamic", "int8", "int8_float", "int8_pixels", "int8_mixed")


def _converter(model, config: TFLiteConfig):
    t = tf()
    conv = t.lite.TFLiteConverter.from_keras_model(model)
    if config.precision != "float32":
        conv.optimizations = [t.lite.Optimize.DEFAULT]
    if config.precision == "float16":
        conv.target_spec.supported_types = [t.float16]
    elif config.precision.startswith("int8"):
        calib = config.calibration_set()

        def representative():  # several inputs: a dict by (signature) input name, the Keras input names
            if isinstance(calib, dict):
                for i in range(sample_count(calib)):
                    yield {k: v[i : i + 1] for k, v in calib.items()}
            else:
                for i in range(len(calib)):
                    yield [calib[i : i + 1]]

        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [t.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if config.precision == "int8":
            conv.inference_input_type = conv.inference_output_type = t.int8
        elif config.precision == "int8_pixels":
            conv.inference_input_type = t.uint8
    return conv


def _edited(flatbuffer: bytes, change) -> bytes:
    """The flatbuffer after ``change(model, schema)`` on its object form (ai-edge-litert's generated schema)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    change(model, schema)
    builder = flatbuffers.Builder(len(flatbuffer) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def pixel_input(flatbuffer: bytes, normalization) -> bytes:
    """The model with its uint8 image input quantized so that the stored value *is* the pixel: the model's
    ``x = pixel * scale + offset`` becomes the input's (scale, zero point = -offset / scale), which the
    converter's QUANTIZE step then maps to its own int8 range."""
    scales, offsets = set(normalization.scale), set(normalization.offset)
    if len(scales) > 1 or len(offsets) > 1:
        raise NotApplicable("8-bit pixel input: a per-channel normalisation cannot be one input scale; use int8")
    scale, offset = float(normalization.scale[0]), float(normalization.offset[0])
    zero = -offset / scale
    if abs(zero - round(zero)) > 1e-3 or not 0 <= round(zero) <= 255:
        raise NotApplicable(f"8-bit pixel input: pixel × {scale:g} + {offset:g} has no whole zero point in 0..255 "
                            f"({zero:g}); use int8")  # fmt: skip

    def change(model, schema):
        graph = model.subgraphs[0]
        images = [graph.tensors[i] for i in graph.inputs if graph.tensors[i].type == schema.TensorType.UINT8
                  and len(graph.tensors[i].shape) == 4]  # fmt: skip
        if len(images) != 1:
            raise NotApplicable("8-bit pixel input: the model does not take one picture; use int8")
        images[0].quantization.scale, images[0].quantization.zeroPoint = [scale], [int(round(zero))]

    return _edited(flatbuffer, change)


def _convert(model, config: TFLiteConfig, task: str = "generic") -> tuple:
    """(the flatbuffer, its notes); recurrent layers unrolled first (builtin operators, no state between
    calls)."""
    from ._recurrent import recurrent_layers, unrolled

    loops = [layer for layer in recurrent_layers(model) if not layer.get_config().get("unroll", False)]
    if loops:
        try:
            model = unrolled(model)
        except UserError as refusal:
            try:  # a fixed batch may still convert as it is (the fused LSTM operator)
                return _converted(model, config, task)
            except Exception:  # noqa: BLE001 - the converter's 90-line error: ours names the layer and the way out
                raise refusal from None
    return _converted(model, config, task)


def _converted(model, config: TFLiteConfig, task: str) -> tuple:
    """The converter's flatbuffer and notes, dilated convolutions computed directly while it traces
    (``_dilated``); ``int8_mixed`` through the quantization debugger, aiming at ``task``'s fidelity."""
    from dataclasses import replace

    from ._dilated import direct_dilation

    from .tflite_mixed import layer_notes, mixed_tflite

    converter_for = lambda precision: _converter(model, replace(config, precision=precision))  # noqa: E731
    with direct_dilation(model):
        if config.precision == "int8_mixed":
            return mixed_tflite(converter_for, config.calibration_set(), task)
        flatbuffer = _converter(model, config).convert()
        if config.precision == "int8":  # its worst layers, from TFLite's quantization debugger
            return flatbuffer, layer_notes(converter_for, config.calibration_set())
        return flatbuffer, ()


def tensor_specs(path_or_bytes) -> tuple[tuple, tuple]:
    """Every input's and output's spec, as the interpreter sees them."""
    from ai_edge_litert import interpreter

    content = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
    return tflite_specs(interpreter, interpreter.Interpreter(model_content=content))


def embed_metadata(flatbuffer: bytes, meta: ModelMetadata) -> bytes:
    """The model with ``meta`` (its checksum zeroed) as a metadata buffer, then sealed with its checksum."""

    def change(model, schema):
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(meta.to_json().encode(), dtype=np.uint8)
        model.buffers = (model.buffers or []) + [buffer]
        entry = schema.MetadataT()
        entry.name = TFLITE_METADATA_NAME
        entry.buffer = len(model.buffers) - 1
        model.metadata = [m for m in (model.metadata or []) if m.name not in (TFLITE_METADATA_NAME.encode(),
                                                                               TFLITE_METADATA_NAME)] + [entry]

    return seal(_edited(flatbuffer, change))


@register_exporter("tflite", ".tflite", TFLiteConfig)
def export_tflite(model, path, config: TFLiteConfig, info: ModelInfo) -> Artifact:
    """Convert ``model`` and write ``path`` with its record inside; check it runs like the model."""
    path = Path(path)
    flatbuffer, notes = _convert(model, config, info.task)
    if config.precision == "int8_pixels":
        flatbuffer = pixel_input(flatbuffer, info.normalization)
    inputs, outputs = tensor_specs(flatbuffer)
    meta = info.record("tflite", config.precision, inputs, outputs, notes)
    with staged(path) as out:
        out.write_bytes(embed_metadata(flatbuffer, meta))
        sidecar_path(path).unlink(missing_ok=True)  # an older export's sidecar would describe another file
        max_diff, agreement = check_if_asked(out, model, config, info.task)
    digest = sha256_file(path)
    return Artifact(path, "tflite", config.precision, meta, path.stat().st_size, digest, max_diff, agreement)
