"""A structural check of a ``.tflite`` flatbuffer before any interpreter sees its bytes, with the standard
library alone.

The interpreters trust the file: a Model whose subgraphs entry is zeroed, a
tensor naming a buffer that is not there, an operator naming an operator code
beyond the list, a vector running past the end of the file: each can crash
the process inside the interpreter's constructor (SIGSEGV), which no Python
code can catch. So every table, vtable, vector and string the interpreter
reads is checked to lie within the bytes, and the indices that tie the model
together (an operator's code and tensors, a tensor's buffer, a subgraph's
inputs and outputs) to point at something that exists. A file that fails is
refused with what is wrong.

Field numbers follow ``tensorflow/lite/schema/schema.fbs``: Model (version 0,
operator_codes 1, subgraphs 2, description 3, buffers 4, metadata_buffer 5,
metadata 6, signature_defs 7); SubGraph (tensors 0, inputs 1, outputs 2,
operators 3, name 4); Tensor (shape 0, type 1, buffer 2, name 3,
quantization 4, shape_signature 7); Operator (opcode_index 0, inputs 1,
outputs 2, builtin_options 4, custom_options 5, intermediates 8);
QuantizationParameters (min 0, max 1, scale 2, zero_point 3); Buffer (data 0,
offset 1, size 2); OperatorCode (custom_code 1); Metadata (name 0, buffer 1).
"""
from __future__ import annotations

import struct

from .flatbuffer import Table, root

MAX_TENSOR_TYPE = 20  # TensorType's last value in the schema (INT4 = 17, BFLOAT16 = 18, ... with room to grow)


class _Checked:
    """A table whose every field read is checked, with the path to it for the message."""

    def __init__(self, table: Table, where: str):
        self.t, self.where = table, where

    def table(self, index: int, name: str):
        found = self.t.table(index)
        return None if found is None else _Checked(found, f"{self.where}.{name}")

    def tables(self, index: int, name: str) -> list:
        return [_Checked(t, f"{self.where}.{name}[{i}]") for i, t in enumerate(self.t.tables(index))]

    def vector(self, index: int, width: int, name: str) -> tuple:
        """(start, length) of a vector of ``width``-byte elements, checked to lie in the file."""
        found = self.t.vector(index)
        if found is None:
            return 0, 0
        start, n = found
        if start + width * n > len(self.t.buf):
            raise ValueError(f"{self.where}.{name} runs past the end of the file ({n} elements)")
        return start, n

    def ints(self, index: int, name: str) -> tuple:
        start, n = self.vector(index, 4, name)
        return struct.unpack_from(f"<{n}i", self.t.buf, start) if n else ()

    def string(self, index: int, name: str) -> None:
        self.vector(index, 1, name)

    def scalar(self, index: int, fmt: str):
        return self.t.scalar(index, fmt)


def check_tflite(buf: bytes) -> None:
    """Raise ``ValueError`` naming the first structural fault of the ``.tflite`` flatbuffer ``buf``."""
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ValueError("no TFLite file identifier (TFL3) at byte 4")
    model = _Checked(root(buf), "model")
    buffers = model.tables(4, "buffers")
    for b in buffers:
        b.vector(0, 1, "data")
        offset, size = b.scalar(1, "Q"), b.scalar(2, "Q")
        if offset > 1 and offset + size > len(buf):
            raise ValueError(f"{b.where} points past the end of the file ({offset} + {size} bytes)")
    codes = model.tables(1, "operator_codes")
    for c in codes:
        c.string(1, "custom_code")
    subgraphs = model.tables(2, "subgraphs")
    if not subgraphs:
        raise ValueError("the model has no subgraph")
    for graph in subgraphs:
        _check_subgraph(graph, len(codes), len(buffers))
    model.string(3, "description")
    for i in model.ints(5, "metadata_buffer"):
        if not 0 <= i < len(buffers):
            raise ValueError(f"model.metadata_buffer names buffer {i} of {len(buffers)}")
    for entry in model.tables(6, "metadata"):
        entry.string(0, "name")
        if entry.scalar(1, "I") >= len(buffers):
            raise ValueError(f"{entry.where} names buffer {entry.scalar(1, 'I')} of {len(buffers)}")
    for signature in model.tables(7, "signature_defs"):
        for part in (0, 1):
            for tensor_map in signature.tables(part, "tensors"):
                tensor_map.string(0, "name")


def _check_subgraph(graph: _Checked, codes: int, buffers: int) -> None:
    tensors = graph.tables(0, "tensors")
    if not tensors:
        raise ValueError(f"{graph.where} has no tensors")
    for tensor in tensors:
        tensor.ints(0, "shape")
        tensor.ints(7, "shape_signature")
        tensor.string(3, "name")
        if tensor.scalar(1, "b") < 0 or tensor.scalar(1, "b") > MAX_TENSOR_TYPE:
            raise ValueError(f"{tensor.where} has an unknown type {tensor.scalar(1, 'b')}")
        if tensor.scalar(2, "I") >= max(buffers, 1):
            raise ValueError(f"{tensor.where} names buffer {tensor.scalar(2, 'I')} of {buffers}")
        quantization = tensor.table(4, "quantization")
        if quantization is not None:
            for index, name in ((0, "min"), (1, "max"), (2, "scale")):
                quantization.vector(index, 4, name)
            quantization.vector(3, 8, "zero_point")
    count = len(tensors)
    for kind, index in (("inputs", 1), ("outputs", 2)):
        for i in graph.ints(index, kind):
            if not 0 <= i < count:
                raise ValueError(f"{graph.where}.{kind} names tensor {i} of {count}")
    for op in graph.tables(3, "operators"):
        if op.scalar(0, "I") >= codes:
            raise ValueError(f"{op.where} names operator code {op.scalar(0, 'I')} of {codes}")
        for kind, index in (("inputs", 1), ("outputs", 2), ("intermediates", 8)):
            for i in op.ints(index, kind):
                if not -1 <= i < count:  # -1: an optional input left out
                    raise ValueError(f"{op.where}.{kind} names tensor {i} of {count}")
        op.table(4, "builtin_options")
        op.vector(5, 1, "custom_options")
    graph.string(4, "name")
