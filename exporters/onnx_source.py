"""An ``.onnx`` made by another tool (PyTorch, Paddle, a vendor) -> edgedl's ONNX variants of it.

``float32`` is the model as it is, with edgedl's record added; ``float16``
converts weights and activations with onnxconverter-common (inputs and outputs
stay float32); ``dynamic`` is onnxruntime's ``quantize_dynamic``; ``int8`` is
its static QDQ quantization, calibrated on the user's own inputs prepared as
the model takes them. Each artifact is run once through ``runtime`` and
compared with the source model on the check inputs.
"""
from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from runtime.errors import UserError, one_line
from runtime.files import seal, sha256_file
from runtime.metadata import ONNX_METADATA_KEY

from ._base import Artifact, ModelInfo, NotApplicable, staged
from .onnx_feed import input_ranks, one_sample

PRECISIONS = ("float32", "float16", "dynamic", "int8", "int8_mixed")
ACTIVATIONS = ("auto", "uint8", "int8")  # int8's activation type: auto is the best for this machine's processor
# How int8's activation ranges are calibrated (onnxruntime's CalibrationMethod): min-max keeps every value,
# percentile clips the top 0.001 % (outliers), entropy minimises the KL divergence of the histogram.
CALIBRATIONS = {"minmax": "MinMax", "percentile": "Percentile", "entropy": "Entropy"}
DYNAMIC_OPS = ("MatMul", "Gemm")  # what ``dynamic`` quantizes
# Mean |difference| from the source model allowed, relative to its mean |output|.
RELATIVE_TOLERANCE = {"float32": 1e-5, "float16": 1e-2, "dynamic": 0.1, "int8": 0.1, "int8_mixed": 0.1}


class _Calibration:
    """onnxruntime's ``CalibrationDataReader`` over inputs by name, one sample a call (``one_sample``)."""

    def __init__(self, inputs: dict, ranks: dict):
        self._inputs, self._ranks = inputs, ranks
        self._i = 0

    def get_next(self):
        n = len(next(iter(self._inputs.values())))
        if self._i >= n:
            return None
        self._i += 1
        return one_sample(self._inputs, self._i - 1, self._ranks)

    def rewind(self):
        self._i = 0


def _as_inputs(model, batch) -> dict:
    return batch if isinstance(batch, dict) else {model.input_names[0]: batch}


def _graph(source: Path, precision: str, calibration: Optional[dict], work: Path, activations: str,
           task: str, method: str) -> tuple:  # fmt: skip
    """(the graph at ``precision``, the notes its record keeps)."""
    import onnx

    if precision == "float32":
        return onnx.load(str(source)), ()
    if precision == "float16":
        from onnxconverter_common import float16

        return _unique_names(float16.convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)), ()
    out = work / "quant.onnx"
    notes = quantize(source, out, precision, calibration, work, activations, task, method)
    return onnx.load(str(out)), notes


def _unique_names(model):
    """The graph without the copies onnxconverter-common makes of a Cast it adds before an input's readers:
    one per reader, each named and writing as the others (two readers of ``state``: two ``state_cast_to_``
    nodes writing one tensor, which onnxruntime refuses). The first stays; the same node again is dropped."""
    seen, kept = set(), []
    for node in model.graph.node:
        key = node.SerializeToString()
        if key not in seen:
            kept.append(node)
        seen.add(key)
    if len(kept) < len(model.graph.node):
        del model.graph.node[:]
        model.graph.node.extend(kept)
    return model


@functools.lru_cache(maxsize=1)
def _this_processor() -> tuple:
    """(architecture, vector extensions) of this machine, read once (a run asks for every int8 variant)."""
    from runtime.machine import machine_info

    here = machine_info(threads=1)
    return here["arch"], tuple(here["vector_extensions"])


def activation_type(choice: str = "auto", arch: Optional[str] = None, extensions: Optional[list] = None) -> tuple:
    """(activation type, reduce_range) of an int8 ``.onnx`` for a processor (this machine's by default).

    ``uint8`` on x86-64: onnxruntime's x86 int8 kernels multiply unsigned activations by signed weights
    (U8S8: VPMADDUBSW, or VNNI): MobileNetV2-1.0 at 224 ran 2.4× its float32 here, against 1.2× with
    signed activations. Without VNNI, VPMADDUBSW's 16-bit sums can saturate, so the weights take 7 bits
    (``reduce_range``, as onnxruntime's documentation advises). ``int8`` (S8S8, onnxruntime's default QDQ
    form) elsewhere: ARM64's kernels take it, and TensorRT takes signed 8-bit only."""
    if choice not in ACTIVATIONS:
        raise UserError(f"--onnx-activations {choice!r} is not one of {', '.join(ACTIVATIONS)}")
    if arch is None or extensions is None:
        here_arch, here_extensions = _this_processor()
        arch, extensions = arch or here_arch, here_extensions if extensions is None else extensions
    x86 = arch.lower() in ("x86_64", "amd64", "x64")
    form = choice if choice != "auto" else "uint8" if x86 else "int8"
    return form, form == "uint8" and x86 and not {"avx512_vnni", "avx_vnni"} & set(extensions)


def quantize(source: Path, out: Path, precision: str, calibration: Optional[dict], work: Path,
             activations: str = "auto", task: str = "generic", method: str = "minmax") -> tuple:  # fmt: skip
    """``dynamic``: onnxruntime's ``quantize_dynamic`` of the matrix products alone (its integer kernels for
    them are fast; its dynamic ConvInteger ran 5-7× slower than float32 on the seed CNN); ``int8``: its static
    quantization (``static_int8``); ``int8_mixed``: that, with the layers that hurt most kept in float
    (``onnx_mixed.mixed``, aiming at ``task``'s fidelity). Returns the notes the artifact's record keeps (the int8 forms' include their worst
    layers' error)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if precision == "dynamic":
        import onnx

        found = {node.op_type for node in onnx.load(str(source)).graph.node} & set(DYNAMIC_OPS)
        if not found:
            raise NotApplicable("dynamic quantization: the graph has no MatMul or Gemm, and onnxruntime's dynamic Conv "
                            "is slower than float32; use int8 (static, calibrated)")  # fmt: skip
        quantize_dynamic(str(source), str(out), weight_type=QuantType.QInt8, op_types_to_quantize=list(DYNAMIC_OPS))
        return ()
    if not calibration:
        raise UserError("int8 needs calibration inputs (a few hundred of the model's own inputs)")
    from .onnx_mixed import int8_layer_notes, mixed

    static, work = static_int8(source, out, calibration, work, activations, method), Path(work).resolve()
    if precision == "int8_mixed":
        return (*static.notes, *mixed(static, out, calibration, work, task))
    return (*static.notes, *int8_layer_notes(static, out, calibration, work))


@dataclass(frozen=True)
class StaticInt8:
    """How a graph was quantized: the graph (as the quantizer took it), ``quantize_static``'s options, the
    notes; ``write`` quantizes it again so, with some nodes kept in float."""

    graph: Path
    options: dict
    notes: tuple

    def write(self, out: Path, calibration: dict, exclude=()) -> None:
        import onnx
        from onnxruntime.quantization import quantize_static

        ranks = input_ranks(onnx.load(str(self.graph), load_external_data=False).graph.input)
        quantize_static(str(self.graph), str(out), calibration_data_reader=_Calibration(calibration, ranks),
                        nodes_to_exclude=list(exclude), **self.options)  # fmt: skip
        _runs(out, calibration)


def static_int8(source: Path, out: Path, calibration: dict, work: Path, activations: str = "auto",
                method: str = "minmax") -> StaticInt8:  # fmt: skip
    """onnxruntime's static quantization of ``source`` to ``out`` (int8 weights, activations of
    ``activation_type(activations)``), calibrated on ``calibration`` (inputs by name, one sample a step), in
    the first of ``QUANTIZE_FORMS`` that gives a graph onnxruntime loads and runs (an opset older than 13
    brought up first), its ranges by ``method`` (``CALIBRATIONS``); its notes: the activations, the
    calibration, the form taken, and why the better forms were not."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType

    if method not in CALIBRATIONS:
        raise UserError(f"--onnx-calibration {method!r} is not one of {', '.join(CALIBRATIONS)}")

    form, reduce_range = activation_type(activations)
    activation = QuantType.QUInt8 if form == "uint8" else QuantType.QInt8
    source, work = Path(source).resolve(), Path(work).resolve()
    upgraded, opset_note = _opset_for_quantizing(source, work)
    tried = []
    for name, pre_process, quant_format, per_channel in QUANTIZE_FORMS:
        graph = upgraded
        options = {"quant_format": getattr(QuantFormat, quant_format), "weight_type": QuantType.QInt8,
                   "per_channel": per_channel, "activation_type": activation, "reduce_range": reduce_range,
                   "calibrate_method": getattr(CalibrationMethod, CALIBRATIONS[method])}
        try:
            if pre_process:
                graph = _pre_processed(upgraded, work)
            static = StaticInt8(graph, options, (
                f"int8 activations: {form} ({'U8S8' if form == 'uint8' else 'S8S8'}"
                f"{', 7-bit weights' if reduce_range else ''}; --onnx-activations {activations})",
                f"int8 calibration: {method} (--onnx-calibration)",
                f"int8 form: {name}{opset_note}", *(f"int8 form not taken: {t}" for t in tried)))
            static.write(out, calibration)
        except Exception as exc:  # noqa: BLE001 - the next form may take it; every reason is kept for the message
            tried.append(f"{name}: {one_line(exc, 400, typed=True)}")
            continue
        return static
    raise UserError("onnxruntime's quantizer gave no valid int8 model in any form: " + "; ".join(tried))


# The forms an int8 ``.onnx`` is tried in, best first: (name, pre-processed, format, per-channel). The
# pre-processing (shape inference and onnxruntime's graph optimisation) lets more operators be quantized, but
# its Conv+Add fusion made opset-11/12 graphs that onnxruntime refuses; QOperator for what QDQ cannot express.
QUANTIZE_FORMS = (
    ("QDQ, per-channel, pre-processed", True, "QDQ", True),
    ("QDQ, per-channel", False, "QDQ", True),
    ("QDQ, per-tensor", False, "QDQ", False),
    ("QOperator, per-tensor", False, "QOperator", False),
)
QUANTIZER_OPSET = 13  # per-channel (De)QuantizeLinear's axis came with opset 13


def _opset_for_quantizing(source: Path, work: Path) -> tuple:
    """(the model to quantize, a note): a graph of an opset older than 13 brought up to 13 with ONNX's own
    version converter where it can be (per-channel QDQ needs it), else the graph as it is; every node named
    (the quantizer keeps nodes in float by name)."""
    import onnx

    model = onnx.load(str(source))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), QUANTIZER_OPSET)
    note, names = "", {n.name for n in model.graph.node}
    unnamed = [n for n in model.graph.node if not n.name]
    if opset >= QUANTIZER_OPSET and not unnamed:
        return source, ""
    for i, node in enumerate(unnamed):
        node.name = next(f"{node.op_type}_{j}" for j in range(i, i + len(names) + 2) if f"{node.op_type}_{j}" not in names)
        names.add(node.name)
    if opset < QUANTIZER_OPSET:
        try:
            upgraded = onnx.version_converter.convert_version(model, QUANTIZER_OPSET)
            onnx.checker.check_model(upgraded)
            model, note = upgraded, f" (opset {opset} brought to {QUANTIZER_OPSET})"
        except Exception as exc:  # noqa: BLE001 - the forms below are tried on the graph as it is
            note = f" (opset {opset}; not brought to {QUANTIZER_OPSET}: {one_line(exc, 160)})"
    path = work / "prepared.onnx"
    onnx.save(model, str(path))
    return path, note


def _pre_processed(source: Path, work: Path) -> Path:
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre, here = work / "pre.onnx", os.getcwd()
    try:
        os.chdir(work)  # on failure it leaves sym_shape_infer_temp.onnx in the current folder
        quant_pre_process(str(source), str(pre))
    except Exception:  # noqa: BLE001 - "Incomplete symbolic shape inference" (a Concat over a free batch): ONNX's
        quant_pre_process(str(source), str(pre), skip_symbolic_shape=True)  # own shape inference still runs
    finally:
        os.chdir(here)
    return pre


def _runs(path: Path, calibration: dict) -> None:
    """The quantized graph loads in onnxruntime and runs one calibration sample to finite outputs."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ranks = input_ranks(session.get_inputs())
    batch = {i.name: i.shape[0] if i.shape and isinstance(i.shape[0], int) else 1 for i in session.get_inputs()}
    feed = {k: np.asarray(v[0] if np.ndim(v) == ranks[k] + 1 else v[: batch[k]]) for k, v in calibration.items()
            if k in batch}  # fmt: skip
    outputs = session.run(None, feed)
    if not all(np.all(np.isfinite(o)) for o in outputs if np.asarray(o).dtype.kind == "f"):
        raise ValueError("the quantized graph gives non-finite outputs")


def convert_onnx(source, path, precision: str, info: ModelInfo, calibration=None, check=None,
                 activations: str = "auto", calibration_method: str = "minmax") -> Artifact:  # fmt: skip
    """Write ``path``: ``source`` at ``precision`` with edgedl's record inside (sealed with its checksum).
    ``calibration`` and ``check`` are model-ready inputs (an array for one input, a dict by name for several);
    ``activations``: int8's activation type (``activation_type``); ``calibration_method``: how its ranges are
    calibrated (``CALIBRATIONS``)."""
    import onnx

    import runtime

    if precision not in PRECISIONS:
        raise UserError(f"precision {precision!r} is not one an .onnx converts to; choose one of {', '.join(PRECISIONS)}")
    source, path = Path(source), Path(path)
    reference = runtime.load(source, threads=1)
    with tempfile.TemporaryDirectory(prefix="edgedl-onnx-") as work, staged(path) as out:
        calib = _as_inputs(reference, calibration) if calibration is not None else None
        proto, notes = _graph(source, precision, calib, Path(work), activations, info.task, calibration_method)
        meta = info.record("onnx", precision, reference.metadata.inputs, reference.metadata.outputs, notes)
        del proto.metadata_props[:]  # another tool's notes would not describe this variant
        onnx.helper.set_model_props(proto, {ONNX_METADATA_KEY: meta.to_json()})
        out.write_bytes(seal(proto.SerializeToString()))
        max_diff = float("nan")
        if check is not None:
            max_diff = _check(reference, out, _as_inputs(reference, check), precision)
    return Artifact(path, "onnx", precision, meta, path.stat().st_size, sha256_file(path), max_diff)


def _stacked(runs: list) -> dict:
    """Outputs of several runs, flattened and joined per output (their shapes may differ between runs)."""
    return {k: np.concatenate([np.ravel(r[k]) for r in runs]) for k in runs[0]}


def _check(reference, path: Path, inputs: dict, precision: str) -> float:
    import runtime

    variant = runtime.load(path, threads=1)
    n = len(next(iter(inputs.values())))
    step = reference.fixed_batch or n
    parts = [{k: v[i : i + step] for k, v in inputs.items()} for i in range(0, n, step)]
    expected = _stacked([reference.run(p) for p in parts])
    got = _stacked([variant.run(p) for p in parts])
    worst = 0.0
    for name, want in expected.items():
        diff = np.abs(np.asarray(got[name], np.float64) - np.asarray(want, np.float64))
        scale = float(np.mean(np.abs(want))) or 1.0
        if float(diff.mean()) / scale > RELATIVE_TOLERANCE[precision]:
            raise RuntimeError(f"{path.name}: {precision} output {name!r} strays from the source model (mean |diff| "
                               f"{diff.mean():.3g}, {diff.mean() / scale:.1%} of its mean |output|)")  # fmt: skip
        worst = max(worst, float(diff.max(initial=0.0)))
    return worst
