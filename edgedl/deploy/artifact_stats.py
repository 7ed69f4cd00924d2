"""Parameters and multiply-accumulates of a model file, counted from its own operators: for a ``.tflite`` or
``.onnx`` made elsewhere, where there is no Keras model to count from.

Parameters are the elements of its constant tensors (weights and biases).
MACs count convolutions (grouped, depthwise, transposed), fully connected
layers and matrix products at the shapes of one sample; a graph holding an
operator with weights that this counter does not know (a fused LSTM, say)
gives ``unknown`` rather than a wrong number.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import numpy as np

Count = Union[int, str]
# Operators with weights whose MACs are not counted here: the total is then unknown.
ONNX_UNKNOWN = ("LSTM", "GRU", "RNN", "Einsum", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger")
TFLITE_UNKNOWN = ("UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM", "UNIDIRECTIONAL_SEQUENCE_RNN",
                  "LSTM", "SVDF", "CUSTOM")  # fmt: skip


def artifact_stats(path: Path, sample_shape: Optional[dict] = None) -> dict:
    """``{"params": int, "macs": int or "unknown"}`` of a ``.tflite`` or ``.onnx``; ``sample_shape`` (input
    name -> shape with batch 1) fixes free dimensions for an ``.onnx``."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        return _onnx(path, sample_shape or {})
    return _tflite(path)


def _onnx(path: Path, sample_shape: dict) -> dict:
    import onnx
    from onnx import numpy_helper, shape_inference

    model = onnx.load(str(path))
    graph = model.graph
    weights = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    bookkeeping = {name for node in graph.node if "QuantizeLinear" in node.op_type for name in node.input[1:]}
    params = int(sum(w.size for k, w in weights.items() if k not in bookkeeping and w.dtype.kind in "fiu"
                     and w.dtype != np.int64))  # weights and biases; not scales, zero points, shapes or axes
    for value in graph.input:  # the sample's sizes where the model's are free
        dims = value.type.tensor_type.shape.dim
        for i, d in enumerate(dims):
            if not d.HasField("dim_value"):
                d.dim_value = sample_shape.get(value.name, (1,) * len(dims))[i] if value.name in sample_shape else 1
    shapes = {}
    try:
        inferred = shape_inference.infer_shapes(model)
        for v in [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]:
            dims = v.type.tensor_type.shape.dim
            if all(d.HasField("dim_value") for d in dims):
                shapes[v.name] = tuple(d.dim_value for d in dims)
    except Exception:  # noqa: BLE001 - a graph onnx cannot infer: its MACs are unknown
        return {"params": params, "macs": "unknown"}
    shapes.update({k: w.shape for k, w in weights.items()})
    macs = 0
    for node in graph.node:
        out = shapes.get(node.output[0]) if node.output else None
        if node.op_type in ONNX_UNKNOWN:
            return {"params": params, "macs": "unknown"}
        if node.op_type in ("Conv", "ConvTranspose"):
            w = shapes.get(node.input[1])
            x = shapes.get(node.input[0])
            if w is None or out is None or x is None:
                return {"params": params, "macs": "unknown"}
            spatial = out[2:] if node.op_type == "Conv" else x[2:]
            cout = out[1] if node.op_type == "Conv" else x[1]
            macs += int(out[0] * cout * np.prod(spatial) * np.prod(w[1:]))
        elif node.op_type in ("Gemm", "MatMul"):
            a = shapes.get(node.input[0])
            if a is None or out is None:
                return {"params": params, "macs": "unknown"}
            k = a[0] if node.op_type == "Gemm" and any(at.name == "transA" and at.i for at in node.attribute) else a[-1]
            macs += int(np.prod(out) * k)
    return {"params": params, "macs": macs}


def _tflite(path: Path) -> dict:
    from ai_edge_litert import schema_py_generated as schema

    from .targets import operator_names

    model = schema.Model.GetRootAs(path.read_bytes(), 0)
    names = operator_names()
    graph = model.Subgraphs(0)
    constant = set()
    params = 0
    for i in range(graph.TensorsLength()):
        tensor = graph.Tensors(i)
        buffer = model.Buffers(tensor.Buffer())
        if buffer is not None and buffer.DataLength() > 0 and tensor.Type() in (0, 1, 2, 3, 9):  # float32/16, int32 (biases), uint8, int8
            constant.add(i)
            params += int(np.prod(tensor.ShapeAsNumpy())) if tensor.ShapeLength() else 1

    def shape(index: int) -> tuple:
        t = graph.Tensors(index)
        return tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()

    macs = 0
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?")
        if name in TFLITE_UNKNOWN:
            return {"params": params, "macs": "unknown"}
        inputs, out = op.InputsAsNumpy(), shape(op.Outputs(0))
        if name == "CONV_2D":  # filter (Cout, kh, kw, Cin/groups)
            macs += int(np.prod(out[1:]) * np.prod(shape(inputs[1])[1:]))
        elif name == "DEPTHWISE_CONV_2D":  # filter (1, kh, kw, C×multiplier)
            macs += int(np.prod(out[1:]) * np.prod(shape(inputs[1])[1:3]))
        elif name == "TRANSPOSE_CONV":  # inputs: output shape, filter (Cout, kh, kw, Cin), input
            macs += int(np.prod(shape(inputs[2])[1:]) * np.prod(shape(inputs[1])[:3]))
        elif name == "FULLY_CONNECTED":  # weights (units, depth)
            macs += int(np.prod(out[1:] if len(out) > 1 else out) * shape(inputs[1])[-1])
        elif name == "BATCH_MATMUL":
            macs += int(np.prod(out[1:]) * shape(inputs[0])[-1])
    return {"params": params, "macs": macs}
