"""Mixed-precision TFLite int8: TFLite's quantization debugger measures each layer's own error, and the
layers that hurt most stay in float (its ``denylisted_nodes``).

The debugger runs the int8 model with a float copy of every quantized layer
fed the same (dequantized) inputs, so each layer's figure is what quantizing
that layer costs, whatever came before: here the PSNR of its output, the mean
over its channels, each on its own range (``runtime.metrics``), as
``onnx_mixed`` measures an ONNX graph. The layers are then kept in float worst
first (the 16 worst re-ordered by what keeping each alone in float gains at
the outputs), one, one, two, four… at a time, on the one calibration (no layer is
calibrated twice; where the quantizer refuses a set, a float input to an int8
Concatenation, which must share one scale, the Concatenations stay float too),
until every output channel is within the task's
``onnx_mixed.TARGET_DB`` of the float model, or the variant would be no
faster than float32 (timed as ``onnx_mixed`` times it). Inputs and outputs are float,
as ``int8_float``'s.
"""
from __future__ import annotations

import contextlib
import csv
import io
import tempfile
import warnings
from pathlib import Path

import numpy as np

from runtime.errors import one_line
from runtime.metrics import SNR_CAP_DB, channel_fidelity
from runtime.report import layer_note

from ._base import NotApplicable, sample_count
from .onnx_mixed import (DEFAULT_TARGET_DB, EFFECT_MEASURED, PROBE, SHOWN, STEPS, TARGET_DB, TIMED_FROM_S, by_gain,
                         nothing_faster)

METRIC = "channel_psnr_mean"
SHARED_SCALE = ("CONCATENATION",)  # int8 operators whose inputs must share the output's scale


def _own_db(float_tensor, quantized, scale: float, zero_point: int) -> float:
    """One debug sample: a layer's output against float, the mean of its channels' PSNR."""
    restored = (np.asarray(quantized, np.float64) - zero_point) * scale
    if restored.ndim <= 2:  # a vector: one sample's values are one channel (each value alone has no range)
        return channel_fidelity([np.reshape(float_tensor, (1, -1))], [restored.reshape(1, -1)]).get(METRIC, SNR_CAP_DB)
    return channel_fidelity([np.asarray(float_tensor)[0]], [restored[0]]).get(METRIC, SNR_CAP_DB)


def mixed_tflite(converter_for, calibration, task: str = "generic") -> tuple:
    """(flatbuffer, notes): the model ``converter_for(precision)`` converts (``int8_float``: set up with its
    representative data over ``calibration``) quantized with its worst layers in float. ``NotApplicable``
    when int8 is already within the task's target, or no layer can stay float and the variant still be
    faster than float32."""
    target_db = TARGET_DB.get(task, DEFAULT_TARGET_DB)
    probe = {k: v[:PROBE] for k, v in calibration.items()} if isinstance(calibration, dict) else calibration[:PROBE]
    debug, debugger, layers = _debugged(converter_for, probe)
    with tempfile.TemporaryDirectory(prefix="edgedl-mixed-") as work:
        trials = _Trials(Path(work), probe, converter_for("float32").convert())
        int8 = debugger.get_nondebug_quantized_model()
        start = trials.worst_db(int8)
        if start >= target_db:
            raise NotApplicable(f"int8 already keeps every output channel within {target_db:.0f} dB of float32 "
                                f"(worst {start:.1f} dB); nothing to keep in float")  # fmt: skip
        timed = trials.float_s >= TIMED_FROM_S and trials.latency(int8) < trials.float_s
        sharing = [d["tensor"] for d in layers if d["op"] in SHARED_SCALE]
        candidates = [d["tensor"] for d in _by_effect(layers, debugger, debug, trials, start, sharing)]
        kept, best, size = [], None, 1
        for _ in range(STEPS):
            if len(kept) >= len(candidates) - 1:  # one quantized layer at least (the debugger needs one)
                break
            kept = candidates[: min(len(kept) + size, len(candidates) - 1)]
            size = size * 2 if len(kept) > 1 else 1
            kept, flatbuffer = _with_shared(debugger, debug, kept, sharing)
            if flatbuffer is None:
                continue  # the quantizer refuses this set; the next step keeps more in float
            if timed and trials.latency(flatbuffer) >= trials.float_s:
                break  # no faster than float32 (where int8 was): the last faster one stands
            db = trials.worst_db(flatbuffer)
            if best is None or db > best[2]:
                best = (flatbuffer, list(kept), db)
            if db >= target_db:
                break
    if best is None:
        raise nothing_faster(start)
    flatbuffer, names, db = best
    shown = tuple(layer_note(_short(d["tensor"]), d["op"], d["own_db"], None, d["tensor"] in names)
                  for d in layers[:SHOWN])  # fmt: skip
    listed = ", ".join(_short(n) for n in names[:12])
    return flatbuffer, (f"int8_mixed: {len(names)} of {len(layers)} layers kept in float: {listed}"
                        f"{' …' * (len(names) > 12)}",
                        f"int8_mixed: worst output channel {db:.1f} dB against float32 (int8 alone {start:.1f} "
                        f"dB; target {target_db:.0f} dB)", *shown)  # fmt: skip


def layer_notes(converter_for, calibration) -> tuple:
    """An int8 ``.tflite``'s worst layers as its notes (``runtime.report.layer_note``), from TFLite's
    quantization debugger on the same calibration; a model the debugger cannot read gets a note saying so."""
    probe = {k: v[:PROBE] for k, v in calibration.items()} if isinstance(calibration, dict) else calibration[:PROBE]
    try:
        layers = _debugged(converter_for, probe)[2]
    except Exception as exc:  # noqa: BLE001 - the int8 model stands; only its layer table is missing
        return (f"int8 layer error not measured: {one_line(exc, 300, typed=True)}",)
    return tuple(layer_note(_short(d["tensor"]), d["op"], d["own_db"]) for d in layers[:SHOWN])


def _debugged(converter_for, probe) -> tuple:
    """(TFLite's debugging module, a debugger over the int8 model with float kept possible, its layers worst
    first): the model calibrated once on ``probe``'s representative data."""
    from .tfkeras import tf

    tf, converter = tf(), converter_for("int8_float")

    def debug_data():
        for i in range(sample_count(probe)):
            yield {k: v[i : i + 1] for k, v in probe.items()} if isinstance(probe, dict) else [probe[i : i + 1]]

    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # a layer kept in float runs as float
    debug = tf.lite.experimental
    with _debugger_quiet():
        debugger = debug.QuantizationDebugger(converter=converter, debug_dataset=debug_data)  # calibrates once
        # Read from the instrumented model itself: only so does the debugger keep every tensor to compare.
        reader = debug.QuantizationDebugger(quant_debug_model_content=debugger.get_debug_quantized_model(),
                                            debug_dataset=debug_data,
                                            debug_options=debug.QuantizationDebugOptions(
                                                layer_direct_compare_metrics={METRIC: _own_db}))  # fmt: skip
        reader.run()
    return debug, debugger, _layers(reader)


@contextlib.contextmanager
def _debugger_quiet():
    """The debugger runs TensorFlow's own interpreter, which warns at every construction that it is deprecated
    (edgedl runs models through ai-edge-litert; the debugger has no other) and that every tensor is kept (what
    the comparison needs): said once here, not a warning in every run's summary."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"(?s).*tf\.lite\.Interpreter is deprecated")
        warnings.filterwarnings("ignore", message=r"(?s).*experimental_preserve_all_tensors")
        yield


def _with_shared(debugger, debug, kept: list, sharing: list) -> tuple:
    """(the layers kept in float, the model) for ``kept``; where the quantizer refuses the set (a float input
    to an int8 Concatenation, which must share one scale), with the Concatenations (``sharing``) too."""
    flatbuffer = _quantized(debugger, debug, kept)
    if flatbuffer is None:
        kept = list(dict.fromkeys(kept + sharing))
        flatbuffer = _quantized(debugger, debug, kept)
    return kept, flatbuffer


def _by_effect(layers: list, debugger, debug, trials, alone: float, sharing: list) -> list:
    """The ``EFFECT_MEASURED`` worst layers by their own error re-ordered by what keeping each alone in float
    gains at the outputs (as ``onnx_mixed._by_effect``: under 0.1 dB is none), the others after them."""
    head, gains = layers[:EFFECT_MEASURED], []
    for layer in head:
        flatbuffer = _with_shared(debugger, debug, [layer["tensor"]], sharing)[1]
        gains.append(float("-inf") if flatbuffer is None else trials.worst_db(flatbuffer) - alone)
    return by_gain(layers, gains)


def _quantized(debugger, debug, kept: list):
    """The int8 model with the layers ``kept`` in float, or None where the quantizer refuses the set."""
    try:
        with _debugger_quiet():
            debugger.options = debug.QuantizationDebugOptions(denylisted_nodes=list(kept))
            return debugger.get_nondebug_quantized_model()
    except Exception:  # noqa: BLE001 - "quantization parameters violate the same scale constraint"
        return None


def _short(tensor: str) -> str:
    """A converter's tensor name for people: its first part (``cnn/conv2d/Relu;cnn/conv2d/BiasAdd;…``)."""
    return tensor.split(";")[0]


def _layers(debugger) -> list:
    """The debugger's layers, worst first: tensor (the name ``denylisted_nodes`` takes), op, own_db."""
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    rows = [{"tensor": r["tensor_name"], "op": r["op_name"], "own_db": float(r[METRIC])}
            for r in csv.DictReader(io.StringIO(dump.getvalue())) if r.get(METRIC) not in (None, "", "nan")]  # fmt: skip
    return sorted(rows, key=lambda r: r["own_db"])


class _Trials:
    """Flatbuffers run through ``runtime`` on the probe inputs: their worst output channel against the float
    model's, and their latency."""

    def __init__(self, work: Path, probe, float_model: bytes):
        self.work, self.probe, self.count = work, probe, 0
        self.reference = self._outputs(float_model)
        self.float_s = self.latency(float_model)

    def _load(self, flatbuffer: bytes):
        import runtime

        self.count += 1
        path = self.work / f"trial{self.count}.tflite"
        path.write_bytes(flatbuffer)
        return runtime.load(path, threads=1)

    def _outputs(self, flatbuffer: bytes) -> list:
        model, n = self._load(flatbuffer), sample_count(self.probe)
        one = (lambda i: {k: v[i : i + 1] for k, v in self.probe.items()}) if isinstance(self.probe, dict) else \
            (lambda i: self.probe[i : i + 1])  # fmt: skip
        return [{k: v[0] for k, v in model.run(one(i)).items()} for i in range(n)]

    def worst_db(self, flatbuffer: bytes) -> float:
        return channel_fidelity(self.reference, self._outputs(flatbuffer)).get("channel_psnr_min", SNR_CAP_DB)

    def latency(self, flatbuffer: bytes) -> float:
        import time

        model = self._load(flatbuffer)
        feed = {k: v[:1] for k, v in self.probe.items()} if isinstance(self.probe, dict) else self.probe[:1]
        model.run(feed)
        times: list = []
        while len(times) < 10 or (sum(times) < 0.3 and len(times) < 300):
            start = time.perf_counter()
            model.run(feed)
            times.append(time.perf_counter() - start)
        return float(np.median(times))
