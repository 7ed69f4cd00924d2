"""Mixed-precision ONNX int8: the layers whose quantization hurts most stay in float.

Every float tensor of the graph is read on a few calibration inputs, in the
float graph and in its int8 form. A layer's damage is the PSNR of its float
output put through the int8 graph's own quantizer for it (scale and zero
point: what quantizing that layer costs, whatever came before; onnxruntime's
QDQ debugging calls it the QDQ error), the mean over the output's channels,
each on its own range: the class scores of a detector head concatenated with
its pixel coordinates come out at a few dB. The layers are then kept in float
(onnxruntime's ``nodes_to_exclude``) worst first, one, one, two, four… at a
time (the 16 worst by their own error first re-ordered by what keeping each
alone in float gains at the outputs), until every output channel (the worst of them, as the report judges it)
is within its task's ``TARGET_DB`` of the float graph or the variant would be no faster
than float32 (timed where int8 was faster and float32 takes a millisecond or
more: a smaller model is int8 for its size).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from runtime.errors import one_line
from runtime.metrics import SNR_CAP_DB, channel_fidelity
from runtime.report import layer_note

from ._base import NotApplicable
from .onnx_feed import input_ranks, one_sample

# The worst output channel's PSNR against float32 on its own range that a mixed variant aims for, by task: a
# score vector's top-1 survives 30 dB (3 % of its range, RMS); a denoiser's picture loses about 0.1 dB of
# PSNR at 45 dB beside a 30 dB restoration; other outputs 40 dB (1 % of each channel's range).
TARGET_DB = {"classification": 30.0, "denoising": 45.0}
DEFAULT_TARGET_DB = 40.0
PROBE = 8  # calibration inputs compared tensor by tensor
STEPS = 8  # at most this many trial quantizations (1, 1, 2, 4 … layers: up to 128 kept in float)
SHOWN = 8  # layers named in the notes, worst first
EFFECT_MEASURED = 16  # layers whose effect at the outputs is measured one at a time (a quantization each)
EFFECT_CALIBRATION = 64  # inputs each of those quantizations is calibrated on
# Below this float32 latency a model is not timed while its layers are chosen: tens of microseconds vary more
# from call to call than between the variants, and such a model is int8 for its size.
TIMED_FROM_S = 1e-3


def int8_layer_notes(static, out: Path, calibration: dict, work: Path) -> tuple:
    """The worst layers of ``out`` (``static``'s int8 graph) as the artifact's notes (``runtime.report``'s
    ``layer_note``); a graph the comparison cannot read gets a note saying so, not a failed variant."""
    try:
        layers = layer_errors(static.graph, out, _probe(calibration), work)
    except Exception as exc:  # noqa: BLE001 - the int8 graph stands; only its layer table is missing
        return (f"int8 layer error not measured: {one_line(exc, 300, typed=True)}",)
    return _notes(layers, ())


def mixed(static, out: Path, calibration: dict, work: Path, task: str = "generic") -> tuple:
    """Rewrite ``out`` (``static``'s int8 graph, ``onnx_source.StaticInt8``) with its worst layers in float;
    the notes say which stayed float and how close the outputs came. ``NotApplicable`` when int8 is already
    within the target, or no layer can stay float and the variant still be faster than float32."""
    target_db = TARGET_DB.get(task, DEFAULT_TARGET_DB)
    probe = _probe(calibration)
    layers = layer_errors(static.graph, out, probe, work)
    reference = _outputs(static.graph, probe)
    start = _worst_output_db(reference, _outputs(out, probe))
    if start >= target_db:
        raise NotApplicable(f"int8 already keeps every output channel within {target_db:.0f} dB of float32 "
                            f"(worst {start:.1f} dB); nothing to keep in float")  # fmt: skip
    float_s = _latency(static.graph, probe)
    timed = float_s >= TIMED_FROM_S and _latency(out, probe) < float_s  # is int8 faster, is it worth timing
    ranked = _by_effect(static, layers, calibration, probe, reference, work)
    trial, count, best, size = work / "mixed_trial.onnx", 0, None, 1
    for _ in range(STEPS):
        if count == len(layers):
            break
        count = min(count + size, len(layers))  # the worst ``count`` layers, each with the nodes fused into it
        size = size * 2 if count > 1 else 1
        kept = list(dict.fromkeys(n for d in ranked[:count] for n in d["nodes"]))
        try:
            static.write(trial, calibration, kept)
        except Exception:  # noqa: BLE001 - a set onnxruntime cannot run: the next step keeps more in float
            continue
        if timed and _latency(trial, probe) >= float_s:
            break  # no faster than float32 (where int8 was): the last faster one stands
        db = _worst_output_db(reference, _outputs(trial, probe))
        if best is None or db > best[2]:
            best = (count, kept, db)
            trial.replace(out)
        if db >= target_db:
            break
    if best is None:
        raise nothing_faster(start)
    count, names, db = best
    if count == len(layers):
        raise NotApplicable(f"only with every layer in float does int8 come within {target_db:.0f} dB of float32 "
                            f"(int8 alone {start:.1f} dB): that is onnx_float32")  # fmt: skip
    listed = ", ".join(d["node"] for d in ranked[:min(count, 12)]) + " …" * (count > 12)
    return (f"int8_mixed: {count} of {len(layers)} layers kept in float ({len(names)} nodes): {listed}",
            f"int8_mixed: worst output channel {db:.1f} dB against float32 (int8 alone {start:.1f} dB; target "
            f"{target_db:.0f} dB)", *_notes(layers, names))  # fmt: skip


def _by_effect(static, layers: list, calibration: dict, probe: dict, reference: list, work: Path) -> list:
    """The ``EFFECT_MEASURED`` worst layers by their own error, re-ordered by what keeping each one alone in
    float gains at the outputs (worst channel, on the probe inputs; calibrated on ``EFFECT_CALIBRATION``
    inputs); the other layers after them, in their order. A layer's own error misses what comes after it:
    a denoiser's error spreads over every layer, and the one that matters is the one the output feels."""
    head, gains, trial = layers[:EFFECT_MEASURED], [], work / "effect.onnx"
    few = {k: v[:EFFECT_CALIBRATION] for k, v in calibration.items()}
    static.write(trial, few)
    alone = _worst_output_db(reference, _outputs(trial, probe))  # int8 as calibrated here, nothing in float
    for layer in head:
        try:
            static.write(trial, few, layer["nodes"])
            gains.append(_worst_output_db(reference, _outputs(trial, probe)) - alone)
        except Exception:  # noqa: BLE001 - a layer onnxruntime cannot run in float alone: tried last
            gains.append(float("-inf"))
    return by_gain(layers, gains)


def by_gain(layers: list, gains: list) -> list:
    """``layers`` with the first ``len(gains)`` re-ordered by their gains, largest first. A gain under 0.1 dB is
    none: such layers keep their order by their own error (behind a layer that masks them, as a detector
    head's Concat masks the rest, each alone gains nothing)."""
    order = sorted(range(len(gains)), key=lambda i: (-(gains[i] if gains[i] >= 0.1 else 0.0), i))
    return [layers[i] for i in order] + layers[len(gains):]


def nothing_faster(start: float) -> NotApplicable:
    return NotApplicable(f"no set of layers kept in float gave a model the quantizer accepts and faster than "
                         f"float32 (int8's worst output channel {start:.1f} dB)")  # fmt: skip


def _probe(calibration: dict) -> dict:
    return {k: v[:PROBE] for k, v in calibration.items()}


def _notes(layers: list, kept) -> tuple:
    return tuple(layer_note(d["node"], d["op"], d["own_db"], d["psnr_db"], set(d["nodes"]) <= set(kept))
                 for d in layers[:SHOWN])  # fmt: skip


def layer_errors(float_path: Path, int8_path: Path, probe: dict, work: Path) -> list:
    """Per quantized layer of the float graph, worst first: ``node``, ``op``, ``nodes`` (it and the nodes the
    int8 graph fused into it: a Conv before its Relu), ``own_db`` (the PSNR of its float output put through
    the int8 graph's quantizer for it: what quantizing it costs, whatever came before) and ``psnr_db`` (its
    output as the next layer reads it in the int8 graph, against float: what every layer up to it costs);
    both the mean over the output's channels."""
    import onnx
    from onnxruntime.quantization.quant_utils import DEQUANT_OUTPUT_SUFFIX

    reference = _activations(float_path, probe, work / "float_all.onnx")
    quantized = _activations(int8_path, probe, work / "int8_all.onnx")
    quantizers = _quantizers(int8_path)

    def mean_db(a: list, b: list) -> float:
        return channel_fidelity(a, b).get("channel_psnr_mean", SNR_CAP_DB)

    fused, rows = {}, []
    for node in onnx.load(str(float_path)).graph.node:  # in order: a tensor's producer comes first
        group = [n for t in node.input for n in fused.get(t, ())] + [node.name]
        outs = [t for t in node.output if t in reference and t in quantizers]
        if not outs:  # not quantized: fused into the next layer (its output gone from the int8 graph), or kept
            fused.update({t: group for t in node.output if t not in quantized})
            continue
        own = min(mean_db(reference[t], [quantizers[t](v) for v in reference[t]]) for t in outs)
        seen = [quantized.get(t + DEQUANT_OUTPUT_SUFFIX, quantized.get(t)) for t in outs]
        after = min((mean_db(reference[t], v) for t, v in zip(outs, seen) if v is not None), default=own)
        rows.append({"node": node.name, "op": node.op_type, "nodes": list(dict.fromkeys(group)), "own_db": own,
                     "psnr_db": after})  # fmt: skip
    return sorted(rows, key=lambda r: r["own_db"])


def _quantizers(int8_path: Path) -> dict:
    """The int8 graph's quantizer of each activation, by the float tensor it quantizes: a function that
    quantizes and dequantizes a float array as that QuantizeLinear and its DequantizeLinear do."""
    import onnx
    from onnx import numpy_helper
    from onnxruntime.quantization.quant_utils import QUANT_INPUT_SUFFIX

    graph = onnx.load(str(int8_path)).graph
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    found = {}
    for node in graph.node:
        if node.op_type != "QuantizeLinear" or node.input[1] not in constants:
            continue
        scale = constants[node.input[1]].astype(np.float64)
        zero = constants.get(node.input[2]) if len(node.input) > 2 else np.uint8(0)
        if zero is None or scale.size != 1 or node.input[0] in constants:  # a weight's, or per channel
            continue
        limits = np.iinfo(zero.dtype)

        def fake(v, s=float(scale.reshape(-1)[0]), z=int(np.asarray(zero).reshape(-1)[0]), lo=limits.min,
                 hi=limits.max):  # fmt: skip
            return ((np.clip(np.rint(np.asarray(v, np.float64) / s) + z, lo, hi) - z) * s).astype(np.float32)

        found[node.input[0].removesuffix(QUANT_INPUT_SUFFIX)] = fake
    return found


def _activations(path: Path, probe: dict, augmented: Path) -> dict:
    """Every float tensor of the graph on each probe input: {name: [one array per input, batch dropped]}."""
    import onnx
    import onnxruntime as ort

    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    listed = {o.name for o in model.graph.output}
    made = {t for node in model.graph.node for t in node.output}  # value_info may name tensors no longer made
    for info in model.graph.value_info:
        if info.type.tensor_type.elem_type == onnx.TensorProto.FLOAT and info.name in made - listed:
            model.graph.output.append(onnx.helper.make_tensor_value_info(info.name, onnx.TensorProto.FLOAT, None))
    onnx.save(model, str(augmented))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # every tensor as named
    session = ort.InferenceSession(str(augmented), options, providers=["CPUExecutionProvider"])
    names, ranks = [o.name for o in session.get_outputs()], input_ranks(session.get_inputs())
    found: dict = {n: [] for n in names}
    for i in range(len(next(iter(probe.values())))):
        for name, value in zip(names, session.run(None, one_sample(probe, i, ranks))):
            found[name].append(_sample(value))
    return found


def _session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _outputs(path: Path, probe: dict) -> list:
    session = _session(path)
    names = [o.name for o in session.get_outputs()]
    ranks = input_ranks(session.get_inputs())
    return [{n: _sample(v) for n, v in zip(names, session.run(None, one_sample(probe, i, ranks)))}
            for i in range(len(next(iter(probe.values()))))]  # fmt: skip


def _sample(value) -> np.ndarray:
    """One input's tensor without its batch of one (channels are counted on a sample's axes)."""
    value = np.asarray(value)
    return value[0] if value.ndim and value.shape[0] == 1 else value


def _worst_output_db(reference: list, outputs: list) -> float:
    return channel_fidelity(reference, outputs).get("channel_psnr_min", SNR_CAP_DB)


def _latency(path: Path, probe: dict, seconds: float = 0.3, most: int = 300) -> float:
    """Median seconds of one call on the first probe input, one thread, over ``seconds`` (at least 10 calls,
    at most ``most``): a small model's calls are many, for a steady median."""
    session = _session(path)
    feed = one_sample(probe, 0, input_ranks(session.get_inputs()))
    session.run(None, feed)
    times: list = []
    while len(times) < 10 or (sum(times) < seconds and len(times) < most):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return float(np.median(times))
