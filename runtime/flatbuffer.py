"""Read the few fields of a ``.tflite`` flatbuffer the device needs, with the standard library alone.

tflite-runtime (what a 32-bit Raspberry Pi has) ships no schema module, so the
runtime reads the model's ``metadata`` entries itself: edgedl's own record
(a buffer named ``edgedl``) and TFLite Metadata (``TFLITE_METADATA``: the
input's normalisation; the labels ride in a zip appended to the file).
Every offset is bounds-checked: a damaged file raises ``ValueError``, never
reads outside the bytes.

Field numbers follow ``tensorflow/lite/schema/schema.fbs`` (Model: buffers 4,
metadata 6; Buffer: data 0, offset 1, size 2; Metadata: name 0, buffer 1) and
``metadata_schema.fbs`` (ModelMetadata: subgraph_metadata 3; SubGraphMetadata:
input_tensor_metadata 2; TensorMetadata: process_units 4; ProcessUnit: the
options union at 0/1, NormalizationOptions = 1; NormalizationOptions: mean 0, std 1).
"""
from __future__ import annotations

import struct
from typing import Optional


class Table:
    """One flatbuffer table at ``pos`` in ``buf``."""

    def __init__(self, buf: bytes, pos: int):
        self.buf = buf
        self.pos = pos
        vtable = pos - self._i32(pos)
        self._vt = vtable
        self._vt_size = self._u16(vtable)
        if self._vt_size < 4 or vtable + self._vt_size > len(buf):
            raise ValueError("flatbuffer vtable out of range")

    def _check(self, at: int, size: int) -> None:
        if at < 0 or at + size > len(self.buf):
            raise ValueError(f"flatbuffer offset {at} out of range")

    def _u16(self, at: int) -> int:
        self._check(at, 2)
        return struct.unpack_from("<H", self.buf, at)[0]

    def _i32(self, at: int) -> int:
        self._check(at, 4)
        return struct.unpack_from("<i", self.buf, at)[0]

    def _u32(self, at: int) -> int:
        self._check(at, 4)
        return struct.unpack_from("<I", self.buf, at)[0]

    def field(self, index: int) -> Optional[int]:
        """The absolute position of field ``index``, or None when absent."""
        slot = 4 + 2 * index
        if slot + 2 > self._vt_size:
            return None
        offset = self._u16(self._vt + slot)
        return self.pos + offset if offset else None

    def scalar(self, index: int, fmt: str, default=0):
        at = self.field(index)
        if at is None:
            return default
        self._check(at, struct.calcsize(fmt))
        return struct.unpack_from("<" + fmt, self.buf, at)[0]

    def _target(self, index: int) -> Optional[int]:
        at = self.field(index)
        return None if at is None else at + self._u32(at)

    def table(self, index: int) -> Optional["Table"]:
        at = self._target(index)
        return None if at is None else Table(self.buf, at)

    def vector(self, index: int) -> Optional[tuple[int, int]]:
        """(position of the first element, length) of a vector field."""
        at = self._target(index)
        if at is None:
            return None
        n = self._u32(at)
        return at + 4, n

    def bytes(self, index: int) -> Optional[bytes]:
        vec = self.vector(index)
        if vec is None:
            return None
        start, n = vec
        self._check(start, n)
        return self.buf[start : start + n]

    def string(self, index: int) -> Optional[str]:
        raw = self.bytes(index)
        return None if raw is None else raw.decode("utf-8", "replace")

    def tables(self, index: int) -> list["Table"]:
        vec = self.vector(index)
        if vec is None:
            return []
        start, n = vec
        self._check(start, 4 * n)
        return [Table(self.buf, start + 4 * i + self._u32(start + 4 * i)) for i in range(n)]

    def floats(self, index: int) -> list[float]:
        vec = self.vector(index)
        if vec is None:
            return []
        start, n = vec
        self._check(start, 4 * n)
        return list(struct.unpack_from(f"<{n}f", self.buf, start))


def root(buf: bytes) -> Table:
    if len(buf) < 8:
        raise ValueError("too short for a flatbuffer")
    return Table(buf, struct.unpack_from("<I", buf, 0)[0])


def tflite_metadata(buf: bytes) -> dict[str, bytes]:
    """The ``metadata`` entries of a ``.tflite`` model: name -> the bytes of its buffer."""
    model = root(buf)
    buffers = model.tables(4)
    found = {}
    for entry in model.tables(6):
        name, index = entry.string(0), entry.scalar(1, "I")
        if name is None or index >= len(buffers):
            continue
        b = buffers[index]
        data = b.bytes(0)
        offset, size = b.scalar(1, "Q"), b.scalar(2, "Q")
        if not data and offset > 1:  # large models keep buffers after the flatbuffer
            if offset + size > len(buf):
                raise ValueError("metadata buffer out of range")
            data = buf[offset : offset + size]
        found[name] = bytes(data or b"")
    return found


def normalization_options(metadata: bytes) -> Optional[tuple[list[float], list[float]]]:
    """(mean, std) of the first input's NormalizationOptions in a TFLite Metadata flatbuffer, if any."""
    model = root(metadata)
    for subgraph in model.tables(3)[:1]:
        for tensor in subgraph.tables(2)[:1]:
            for unit in tensor.tables(4):
                if unit.scalar(0, "B") == 1:  # ProcessUnitOptions.NormalizationOptions
                    options = unit.table(1)
                    if options is not None:
                        return options.floats(0), options.floats(1)
    return None
