"""How arrays become a model's tensors and back: quantized with a tensor's own parameters on the way in,
dequantized to float32 on the way out. The constants are made once per tensor: this runs on every call."""
from __future__ import annotations

import numpy as np

from .metadata import Quantization


class Quantizer:
    """A real-valued array -> the tensor's integers: ``clip(rint(x / scale + zero_point))``; the constants
    made once per tensor (this runs on every call), the arithmetic in place on one float32 temporary. The clip
    comes after the rounding, in the integer range itself: nothing can overflow the cast after it."""

    def __init__(self, q: Quantization, dtype: np.dtype):
        info = np.iinfo(dtype)
        self.dtype, self.inverse, self.zero = dtype, np.float32(1.0 / q.scale), np.float32(q.zero_point)
        self.low, self.high = np.float32(info.min), np.float32(info.max)

    def __call__(self, x) -> np.ndarray:
        t = np.multiply(x, self.inverse, dtype=np.float32)
        t += self.zero
        np.rint(t, out=t)
        np.clip(t, self.low, self.high, out=t)
        return t.astype(self.dtype)


class Dequantizer:
    """The tensor's integers -> float32: ``(y - zero_point) * scale`` as ``y * scale + offset``, two steps."""

    def __init__(self, q: Quantization):
        self.scale, self.offset = np.float32(q.scale), np.float32(-q.zero_point * q.scale)

    def __call__(self, y: np.ndarray) -> np.ndarray:
        t = np.multiply(y, self.scale, dtype=np.float32)
        t += self.offset
        return t


def input_converter(spec, dtype: np.dtype):
    """What turns a real-valued array into the tensor's own dtype (quantized with its parameters); an array
    already in that dtype goes in as it is."""
    quantizer = Quantizer(spec.quantization, dtype) if spec.quantization is not None else None

    def convert(value) -> np.ndarray:
        x = np.asarray(value)
        if x.dtype == dtype:
            return x
        if quantizer is not None:
            return quantizer(x)
        with np.errstate(over="ignore", invalid="ignore"):  # out-of-range values saturate, as the quantized path
            if dtype.kind in "iu":
                info = np.iinfo(dtype)
                return np.clip(np.rint(x), info.min, info.max).astype(dtype)
            return x.astype(dtype)

    return convert


def output_converter(spec):
    """What turns the tensor's values into what ``run`` returns: float32 (dequantized), or integers as they
    are; None where there is nothing to do (a float32 output)."""
    if spec.quantization is not None:
        return Dequantizer(spec.quantization)
    if spec.dtype == "float32":
        return None
    return lambda y: y.astype(np.float32, copy=False) if y.dtype.kind == "f" else y
