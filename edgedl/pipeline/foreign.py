"""``edgedl pipeline --model model.onnx`` (or ``.tflite``): a model made elsewhere, measured like any run.

An ``.onnx`` gets edgedl's ONNX variants (``exporters.convert_onnx``):
float32 (as it is, with edgedl's record), float16, dynamic-range, static
int8 calibrated on the user's own inputs prepared as the model takes them, and
int8 with its worst layers in float (``int8_mixed``).
A ``.tflite`` is measured as it is (there is no graph to convert from).

The evaluation data (``--eval-data``) is in one of the forms
``edgedl.data.model_data`` reads: labelled pictures (class sub-folders, or a
CSV of ``file,label`` rows), an ``.npz`` with one array per input name, an
``.npy`` of model inputs (with ``--eval-labels``, an ``.npy`` of labels).
With labels, the accuracy is measured over the classes the model scores.
Without labels, every variant is ranked by its fidelity to the
original on the same inputs (top-1 agreement for a score vector, the share of
output channels that kept their own range otherwise). Calibration uses ``--data`` when given, otherwise the
first pictures of the evaluation data, which are then left out of it.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

import runtime
from runtime.errors import UserError, one_line
from runtime.files import sha256_file

from ..data.model_data import count, held_out, model_inputs, save_eval, take
from ..tasks.prepared import FEW, too_few

CALIBRATION = 300  # pictures for static int8
VARIANTS = ("float32", "float16", "dynamic", "int8", "int8_mixed")


def run(config, terminal) -> dict:
    """The whole job for a model file; returns the report (also written to ``OUT/report.json``).
    ``terminal``: where its lines and progress go (``edgedl.terminal.Terminal``)."""
    from benchmarks import Variant, make_report, measure_all
    from exporters import ModelInfo, NotApplicable, activation_type, convert_onnx
    from runtime.metadata import Normalization
    from runtime.report import failed_record, is_ok

    from ..tasks import content_hash
    from .provenance import build_key, built_with
    from .report import publish

    source, out = Path(config.model), Path(config.out)
    precisions = _chosen(config.variants, source)
    log, step = terminal.say, terminal.step
    terminal.steps.plan(2 * len(precisions) + 3)  # data, an export and a measurement per variant, original, report
    terminal.steps.begin("data")
    norm = Normalization.from_mean_std(config.mean, config.std) if config.mean is not None else None
    model = runtime.load(source, threads=1, normalization=norm)
    meta = replace(model.metadata, resize=config.resize)  # how its pictures are fitted, here and on the device
    takes = f"pictures as {meta.normalization.shown()}, {meta.layout}" if meta.image_input is not None else \
        "arrays: " + ", ".join(f"{s.name} {s.shown()} {s.dtype}" for s in meta.inputs)  # fmt: skip
    log(f"model: {source.name} ({meta.format}, {len(meta.inputs)} input(s), {len(meta.outputs)} output(s); "
        f"{takes})")  # fmt: skip
    x, y, labels = model_inputs(meta, source.name, config.eval_data, config.eval_labels)
    calibration = None
    if config.data is not None:
        calibration = model_inputs(meta, source.name, config.data)[0]
    elif meta.format == "onnx" and any(p.startswith("int8") for p in precisions):
        calibration, x = held_out(x, log)
        y = None if y is None else y[count(calibration):]
    scores = meta.outputs[0].shape[-1] if meta.outputs[0].shape else None
    if y is not None and labels is not None and scores != len(labels):
        raise UserError(f"{source.name} scores {scores} classes but the data names {len(labels)}; give labels of "
                        "its classes, or pictures without labels (then fidelity is measured)")  # fmt: skip
    if count(x) < FEW:
        terminal.note(f"data:{too_few(count(x))}")
    out.mkdir(parents=True, exist_ok=True)
    eval_path = out / "eval.npz"
    save_eval(eval_path, x, meta.inputs[0].name, y, labels or meta.labels)
    task = "classification" if y is not None else "generic"
    info = ModelInfo(task=task, labels=labels or meta.labels, normalization=meta.normalization,
                     source_sha256=sha256_file(source), layout=meta.layout, resize=meta.resize)  # fmt: skip
    variants, failed = [], []
    if meta.format == "onnx":
        parts = [] if calibration is None else list(calibration.values()) if isinstance(calibration, dict) else [calibration]
        calibration_hash = content_hash(*parts)
        for precision in precisions:
            name, path = f"onnx_{precision}", out / "artifacts" / f"onnx_{precision}.onnx"
            form = {"activations": activation_type(config.onnx_activations)[0],
                    "calibration_method": config.onnx_calibration} if precision.startswith("int8") else {}
            key = build_key(info.source_sha256, None, "onnx", precision, calibration_hash, "", 0,
                            form={**form, "resize": info.resize})  # fmt: skip
            try:
                if built_with(path, key):
                    step(f"export: {name} (reused)")
                else:
                    step(f"export: {name}")
                    convert_onnx(source, path, precision, replace(info, build_key=key),
                                 calibration=None if calibration is None else take(calibration, CALIBRATION),
                                 check=take(x, 16), **form)  # fmt: skip
                variants.append(Variant(name, "onnx", precision, path, extra=_stats(path, x)))
            except Exception as exc:  # noqa: BLE001 - one variant's failure is recorded; the run goes on
                if isinstance(exc, NotApplicable) and name not in config.variants:  # not named: left out
                    log(f"skipped: {name}: {exc}")
                    continue
                terminal.note(f"[red]failed[/]: {name}: {one_line(exc, typed=True)}")
                failed.append(failed_record(name, "onnx", precision, (), one_line(exc, typed=True)))
    original = Variant("original", meta.format, meta.precision, source, extra=_stats(source, x))
    records = measure_all([original, *variants], eval_path, config.bench, root=out, cache_dir=out / "measurements",
                          progress=lambda name, reused: step(f"benchmark: {name}{' (reused)' * reused}"))  # fmt: skip
    if not is_ok(records[0]):
        raise UserError(f"{source.name}: the model itself could not be measured ({records[0]['error']})")
    report = make_report(source.name, task, records + failed, config.bench.threads,
                         extra={"data": {"eval": str(config.eval_data or "embedded MNIST digits"),
                                         "eval_size": count(x)}})  # fmt: skip
    return publish(report, out, terminal, source.name)


def _chosen(requested: tuple, source: Path) -> tuple:
    """The precisions of the ``onnx_*`` variants asked for (all, or ``post``); a ``.tflite`` has none."""
    known = [f"onnx_{p}" for p in VARIANTS]
    if source.suffix.lower() == ".tflite":
        if requested:
            raise UserError(f"{source.name}: a .tflite is measured as it is; drop --variants")
        return ()
    unknown = [v for v in requested if v not in known and v != "post"]
    if unknown:
        raise UserError(f"unknown variant {unknown[0]!r} for an .onnx model; known: post, {', '.join(known)}")
    return tuple(p for p in VARIANTS if not requested or "post" in requested or f"onnx_{p}" in requested)


def _stats(path: Path, x) -> dict:
    """Params and MACs counted from the file's operators, at the shape of one evaluation sample."""
    from ..deploy.artifact_stats import artifact_stats

    shapes = {k: (1, *v.shape[1:]) for k, v in x.items()} if isinstance(x, dict) else None
    if shapes is None:
        shapes = {runtime.read_metadata(path).inputs[0].name: (1, *np.shape(x)[1:])}
    try:
        return artifact_stats(path, shapes)
    except Exception:  # noqa: BLE001 - a graph the counters cannot read: no figures rather than no report
        return {"params": "unknown", "macs": "unknown"}
