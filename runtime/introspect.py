"""What a model file says about itself, with or without edgedl's metadata.

edgedl's record is read from the raw bytes (no interpreter): a ``.tflite``
metadata buffer named ``edgedl``, or the ``edgedl`` entry of an ``.onnx``
file's ``metadata_props``. A model made by another tool has none; its record
is then built from the interpreter's (or session's) tensors, TFLite Metadata
where the file has it, and stated assumptions for the rest (``notes``).
"""
from __future__ import annotations

import io
import re
import zipfile
from typing import Optional

import numpy as np

from pathlib import Path

from . import flatbuffer
from .errors import UserError
from .files import read_limited, sealed_matches, sha256_file
from .metadata import (TFLITE_METADATA_NAME, ModelMetadata, Normalization, Quantization, TensorSpec, parse_metadata,
                       sidecar_path)  # fmt: skip

# An ONNX StringStringEntryProto whose key is "edgedl": key (field 1), then value (field 2, length-delimited).
_ONNX_ENTRY = re.compile(rb"\x0a\x06edgedl\x12")
ONNX_TYPES = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
    "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(int16)": "int16", "tensor(uint16)": "uint16",
    "tensor(int32)": "int32", "tensor(uint32)": "uint32", "tensor(int64)": "int64", "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
}  # fmt: skip


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while at < len(data) and shift < 64:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7
    raise ValueError("truncated varint")


def embedded_record(data: bytes, fmt: str) -> Optional[bytes]:
    """The JSON of edgedl's record inside a model file's bytes, or None. Raises ValueError on a damaged file."""
    if fmt == "tflite":
        return flatbuffer.tflite_metadata(data).get(TFLITE_METADATA_NAME)
    match = _ONNX_ENTRY.search(data)
    if match is None:
        return None
    length, start = _varint(data, match.end())
    if start + length > len(data):
        raise ValueError("metadata entry runs past the end of the file")
    return data[start : start + length]


def infer_layout(shape: tuple, fmt: str) -> str:
    """NCHW when the channel-like axis (1, 3 or 4 wide) is the second, NHWC otherwise."""
    if len(shape) != 4:
        return "NHWC"
    last, second = shape[3], shape[1]
    if last in (1, 3, 4):
        return "NHWC"
    if second in (1, 3, 4) or (fmt == "onnx" and second is not None and last is None):
        return "NCHW"
    return "NHWC"


def default_normalization(spec: TensorSpec) -> tuple[Normalization, str]:
    """How pixels feed an input when nothing says so, and the note that says what was assumed.

    A quantized uint8 (int8) input gets the raw pixels (pixel − 128), as LiteRT's image examples feed
    them; a float input gets pixel / 255.
    """
    q = spec.quantization
    if spec.dtype == "uint8":
        if q is None:
            return Normalization(1.0, 0.0), "uint8 input: fed the raw pixels"
        return Normalization(q.scale, -q.zero_point * q.scale), "uint8 input: fed the raw pixels"
    if spec.dtype == "int8":
        if q is None:
            return Normalization(1.0, -128.0), "int8 input: fed pixel − 128"
        return Normalization(q.scale, (-128 - q.zero_point) * q.scale), "int8 input: fed pixel − 128"
    return Normalization(), ("no normalisation recorded in the file: assumed pixel / 255 "
                             "(set --mean/--std or --scale/--offset)")  # fmt: skip


def _tflite_extras(data: bytes) -> tuple[Optional[Normalization], Optional[list[str]]]:
    """The input normalisation and the label files of a ``.tflite`` with TFLite Metadata, where it has them."""
    norm, label_files = None, None
    try:
        meta = flatbuffer.tflite_metadata(data).get("TFLITE_METADATA")
        options = flatbuffer.normalization_options(meta) if meta else None
        if options and options[0] and options[1]:
            norm = Normalization.from_mean_std(options[0], options[1], max_pixel=1.0)
    except Exception:  # noqa: BLE001 - damaged TFLite Metadata is ignored, as the interpreter ignores it
        norm = None
    try:  # associated files (labels) ride in a zip appended to the flatbuffer
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            label_files = []
            for info in z.infolist()[:16]:
                if info.file_size <= (1 << 20) and info.filename.lower().endswith(".txt"):
                    text = z.read(info).decode("utf-8", "replace")
                    label_files.append([line.strip() for line in text.splitlines() if line.strip()])
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError):
        label_files = None
    return norm, label_files


def tflite_spec(detail: dict) -> TensorSpec:
    scales = np.atleast_1d(detail.get("quantization_parameters", {}).get("scales", []))
    scale, zero_point = detail["quantization"]
    signature = detail.get("shape_signature")
    if signature is None or len(signature) != len(detail["shape"]):
        signature = detail["shape"]
    # Per-channel quantized inputs and outputs are rare; the runtime maps a single scale only.
    quant = Quantization(float(scale), int(zero_point)) if scale and len(scales) <= 1 else None
    return TensorSpec(
        name=str(detail["name"]) or f"tensor_{detail['index']}",
        shape=tuple(None if int(d) < 0 else int(d) for d in signature),
        dtype=np.dtype(detail["dtype"]).name,
        quantization=quant,
    )


def _signature_names(module, interp) -> tuple[dict, dict]:
    """Tensor index -> the name the model's one signature gives it (a converter keeps the Keras input and
    output names there; the tensor names are ``serving_default_image:0``, ``StatefulPartitionedCall:1``).
    Empty when the model has no signature, several, or one that leaves a tensor out."""
    try:
        keys = list(interp.get_signature_list())
        if len(keys) != 1:
            return {}, {}
        runner = module.SignatureRunner(interp, keys[0])  # reads the signature; allocates nothing
        names_in = {int(d["index"]): name for name, d in runner.get_input_details().items()}
        names_out = {int(d["index"]): name for name, d in runner.get_output_details().items()}
    except Exception:  # noqa: BLE001 - an older interpreter or an odd signature: the tensor names serve
        return {}, {}
    ins = {int(d["index"]) for d in interp.get_input_details()}
    outs = {int(d["index"]) for d in interp.get_output_details()}
    if set(names_in) != ins or set(names_out) != outs or len(set(names_in.values()) | set(names_out.values())) \
            != len(ins) + len(outs):  # fmt: skip
        return {}, {}
    return names_in, names_out


def tflite_specs(module, interp) -> tuple[tuple, tuple]:
    """Every input's and output's spec in the interpreter's order, named by the model's signature when it
    has one that covers them (see ``_signature_names``), by the tensors' own names otherwise."""
    from dataclasses import replace

    names_in, names_out = _signature_names(module, interp)

    def named(detail: dict, names: dict) -> TensorSpec:
        spec = tflite_spec(detail)
        return replace(spec, name=names.get(int(detail["index"]), spec.name))

    return (tuple(named(d, names_in) for d in interp.get_input_details()),
            tuple(named(d, names_out) for d in interp.get_output_details()))  # fmt: skip


def onnx_spec(arg) -> TensorSpec:
    dtype = ONNX_TYPES.get(arg.type)
    if dtype is None:
        raise UserError(f"tensor {arg.name!r} has type {arg.type}, which edgedl-run cannot feed or read")
    shape = tuple(d if isinstance(d, int) and d >= 0 else None for d in (arg.shape or []))
    return TensorSpec(name=arg.name, shape=shape, dtype=dtype)


def describe_file(fmt: str, inputs: tuple, outputs: tuple, data: Optional[bytes] = None) -> ModelMetadata:
    """A record for a model without edgedl metadata, from its tensors and (``.tflite``) its TFLite Metadata."""
    image = next((s for s in inputs if len(s.shape) == 4), None)
    layout = infer_layout(image.shape, fmt) if image else "NHWC"
    norm, notes, labels, origin = Normalization(), [], None, "file"
    if image is not None:
        norm, note = default_normalization(image)
        if fmt == "tflite" and data is not None:
            file_norm, label_files = _tflite_extras(data)
            if file_norm is not None:
                norm, note, origin = file_norm, "normalisation from the file's TFLite Metadata", "tflite-metadata"
            classes = outputs[0].shape[-1] if outputs[0].shape else None
            for candidate in label_files or []:
                if classes and len(candidate) == classes:
                    labels, origin = tuple(candidate), "tflite-metadata"
                    notes.append("labels from the file's TFLite Metadata")
                    break
        notes.insert(0, note)
    precision = "int8" if any(s.dtype in ("int8", "uint8") for s in inputs) else "float32"
    return ModelMetadata(task="generic", format=fmt, precision=precision, inputs=tuple(inputs),
                         outputs=tuple(outputs), normalization=norm, layout=layout, labels=labels,
                         origin=origin, notes=tuple(notes))  # fmt: skip


def _looks_like(data: bytes, fmt: str) -> bool:
    """A TFLite flatbuffer has the identifier TFL3 at byte 4; an ONNX protobuf starts with a field tag."""
    if fmt == "tflite":
        return len(data) >= 8 and data[4:8] == b"TFL3"
    return len(data) > 0 and data[0] in (0x08, 0x12, 0x1A, 0x22, 0x32, 0x3A, 0x42, 0x52, 0x5A, 0x62, 0x72)


def edgedl_record(path: Path, data: bytes, fmt: str) -> Optional[ModelMetadata]:
    """edgedl's record for these bytes (checked against the checksum it carries), or None for another
    tool's model. A ``.tflite`` exported before the record moved inside the file keeps a sidecar."""
    if not _looks_like(data, fmt):
        kind = "a TFLite flatbuffer" if fmt == "tflite" else "an ONNX protobuf"
        raise UserError(f"{path}: not {kind} (the file does not start like one); give a .{fmt} model file")
    try:
        raw = embedded_record(data, fmt)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a valid .{fmt} file ({exc}); re-export or re-copy it") from None
    if raw is not None:
        meta = parse_metadata(raw, str(path))
        if meta.artifact_sha256 and sealed_matches(data) is not True:
            raise UserError(f"{path}: the file is damaged (its sha256 differs from the one it carries); re-copy it")
        return meta
    if b'"edgedl_version": "' in data:
        raise UserError(f"{path}: the file is damaged (edgedl's metadata in it cannot be read); re-copy it")
    side = sidecar_path(path)
    if fmt == "tflite" and side.exists():
        text = read_limited(side, 16 << 20, "metadata file")
        meta = parse_metadata(text, str(side))
        if meta.artifact_sha256 and meta.artifact_sha256 != sha256_file(path):
            raise UserError(f"{path}: file does not match its metadata {side.name} (sha256 differs); re-copy both "
                            "files")  # fmt: skip
        return meta
    return None
