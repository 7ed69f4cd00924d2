"""``edgedl pipeline --model model.onnx`` (or ``.tflite``): a model made elsewhere, measured like any run.

An ``.onnx`` gets edgedl's ONNX variants (``exporters.convert_onnx``):
float32 (as it is, with edgedl's record), float16, dynamic-range and static
int8 calibrated on the user's own pictures prepared as the model takes them.
A ``.tflite`` is measured as it is (there is no graph to convert from).

The evaluation data (``--eval-data``) is a folder of pictures (one sub-folder
per class: labelled, and the accuracy is measured when the model scores that
many classes), an ``.npz`` with one array per input name, or an ``.npy`` of
model inputs. Without labels, every variant is ranked by its fidelity to the
original on the same inputs (top-1 agreement for a score vector, cosine
similarity otherwise). Calibration uses ``--data`` when given, otherwise the
first pictures of the evaluation data, which are then left out of it.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

import numpy as np

import runtime
from runtime.errors import UserError
from runtime.files import atomic_path, sha256_file
from runtime.images import IMAGE_SUFFIXES, from_pixels, load_image, read_npy, read_npz, to_layout

CALIBRATION = 300  # pictures for static int8
HELD_OUT = 100  # taken from the evaluation data for calibration when no --data is given
VARIANTS = ("float32", "float16", "dynamic", "int8")


def _pictures(model, folder: Path) -> tuple[np.ndarray, Optional[np.ndarray], Optional[tuple]]:
    """Model inputs from a folder of pictures; labels from class sub-folders, if it has them."""
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    files, y = [], []
    for index, sub in enumerate(classes or [folder]):
        found = sorted(f for f in sub.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        files += found
        y += [index] * len(found)
    if not files:
        raise UserError(f"{folder}: no pictures ({', '.join(IMAGE_SUFFIXES)}) in it or in its sub-folders")
    meta = model.metadata
    keep = None in (meta.image_shape + (None,))[:2]
    x = [to_layout(load_image(f, meta, keep_size=keep)[None], meta)[0] for f in files]
    if len({a.shape for a in x}) > 1:
        raise UserError(f"{folder}: the pictures have different sizes and the model's is free; resize them alike")
    labels = tuple(c.name for c in classes) if classes else None
    return np.stack(x), (np.asarray(y) if classes else None), labels


def _embedded(model) -> tuple[np.ndarray, None, None]:
    """The embedded MNIST evaluation digits as the model's pictures (resized, grey or RGB): unlabelled for
    a model of other classes."""
    from .datasets import mnist_default

    meta = model.metadata
    _, ev = mnist_default()
    if None in (meta.image_shape + (None,))[:2]:
        raise UserError(f"{model.path.name} takes pictures of any size: give --eval-data (a folder of pictures)")
    x = [from_pixels(img * 255.0, meta) for img in ev.x[:1000]]
    return to_layout(np.stack(x), meta), None, None


def model_inputs(model, data: Optional[Path]):
    """(inputs, labels or None, class names or None) for ``model`` from ``data`` (see the module's text)."""
    if data is None:
        if model.metadata.image_input is None or len(model.metadata.inputs) > 1:
            raise UserError(f"{model.path.name} does not take one picture: give --eval-data FILE.npz with one "
                            "array per input name")  # fmt: skip
        return _embedded(model)
    data = Path(data)
    if data.is_dir():
        return _pictures(model, data)
    if data.suffix.lower() == ".npy":
        return read_npy(data).astype(np.float32, copy=False), None, None
    if data.suffix.lower() == ".npz":
        arrays = read_npz(data)
        missing = [n for n in model.input_names if n not in arrays]
        if missing:
            raise UserError(f"{data}: no array for input {missing[0]!r}; it has {', '.join(arrays) or 'none'}")
        x = {n: arrays[n] for n in model.input_names}
        return (x if len(x) > 1 else x[model.input_names[0]]), arrays.get("y"), None
    raise UserError(f"{data}: give a folder of pictures, an .npz (one array per input name) or an .npy")


def _split(x, n: int):
    if isinstance(x, dict):
        return {k: v[:n] for k, v in x.items()}, {k: v[n:] for k, v in x.items()}
    return x[:n], x[n:]


def _count(x) -> int:
    return len(next(iter(x.values()))) if isinstance(x, dict) else len(x)


def _save_eval(path: Path, model, x, y, labels) -> None:
    arrays = {"task": np.array("classification"), "x": x, "y": y, "labels": np.array(labels)} if y is not None \
        else (x if isinstance(x, dict) else {model.input_names[0]: x})  # fmt: skip
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


def run(config, log) -> dict:
    """The whole job for a model file; returns the report (also written to ``OUT/report.json``)."""
    from benchmarks import Variant, make_report, measure_all, print_table, write_report
    from benchmarks.render import render
    from exporters import ModelInfo, convert_onnx
    from runtime.metadata import Normalization
    from runtime.report import failed_record, is_ok

    from .pipeline import one_line
    from .provenance import build_key, built_with
    from .tasks import content_hash

    source, out = Path(config.model), Path(config.out)
    precisions = _chosen(config.variants, source)
    norm = Normalization.from_mean_std(config.mean, config.std) if config.mean is not None else None
    model = runtime.load(source, threads=1, normalization=norm)
    meta = model.metadata
    log(f"model: {source.name} ({meta.format}, {len(meta.inputs)} input(s), {len(meta.outputs)} output(s); "
        f"pictures as {meta.normalization.shown()}, {meta.layout})")  # fmt: skip
    x, y, labels = model_inputs(model, config.eval_data)
    calibration = None
    if config.data is not None:
        calibration = model_inputs(model, config.data)[0]
    elif meta.format == "onnx" and "int8" in precisions:
        held = min(HELD_OUT, _count(x) // 5)
        calibration, x = _split(x, held)
        y = None if y is None else y[held:]
        log(f"data: calibrating int8 on the first {held} evaluation inputs, left out of the evaluation")
    scores = meta.outputs[0].shape[-1] if meta.outputs[0].shape else None
    if y is not None and labels is not None and scores != len(labels):
        raise UserError(f"{source.name} scores {scores} classes but the data has {len(labels)} class folders; give "
                        "matching data, or pictures without class folders (then fidelity is measured)")  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    eval_path = out / "eval.npz"
    _save_eval(eval_path, model, x, y, labels or meta.labels)
    task = "classification" if y is not None else "generic"
    info = ModelInfo(task=task, labels=labels or meta.labels, normalization=meta.normalization,
                     source_sha256=sha256_file(source), layout=meta.layout)  # fmt: skip
    variants, failed = [], []
    if meta.format == "onnx":
        parts = [] if calibration is None else list(calibration.values()) if isinstance(calibration, dict) else [calibration]
        calibration_hash = content_hash(*parts)
        for precision in precisions:
            name, path = f"onnx_{precision}", out / "artifacts" / f"onnx_{precision}.onnx"
            key = build_key(info.source_sha256, None, "onnx", precision, calibration_hash, "", 0)
            try:
                if built_with(path, key):
                    log(f"export: {name} (reused)")
                else:
                    log(f"export: {name}")
                    convert_onnx(source, path, precision, replace(info, build_key=key),
                                 calibration=None if calibration is None else _take(calibration),
                                 check=_take(x, 16))  # fmt: skip
                variants.append(Variant(name, "onnx", precision, path, extra=_stats(path, x)))
            except Exception as exc:  # noqa: BLE001 - one variant's failure is recorded; the run goes on
                log(f"[red]failed[/]: {name}: {one_line(exc)}")
                failed.append(failed_record(name, "onnx", precision, (), one_line(exc)))
    original = Variant("original", meta.format, meta.precision, source, extra=_stats(source, x))
    records = measure_all([original, *variants], eval_path, config.bench, root=out, cache_dir=out / "measurements",
                          progress=lambda name, reused: log(f"benchmark: {name}{' (reused)' * reused}"))  # fmt: skip
    if not is_ok(records[0]):
        raise UserError(f"{source.name}: the model itself could not be measured ({records[0]['error']})")
    metric = None if y is not None else ("top1_agreement" if "top1_agreement" in records[0]["metrics"] else "cosine")
    report = make_report(source.name, task, records + failed, config.bench.threads, metric=metric,
                         extra={"data": {"eval": str(config.eval_data or "embedded MNIST digits"),
                                         "eval_size": _count(x)}})  # fmt: skip
    write_report(out / "report.json", report)
    print_table(report)
    written = render([out / "report.json"], out / "report")
    log(f"report: {out / 'report.json'}, {written['html']}")
    return report


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
    from .artifact_stats import artifact_stats

    shapes = {k: (1, *v.shape[1:]) for k, v in x.items()} if isinstance(x, dict) else None
    if shapes is None:
        shapes = {runtime.read_metadata(path).inputs[0].name: (1, *np.shape(x)[1:])}
    try:
        return artifact_stats(path, shapes)
    except Exception:  # noqa: BLE001 - a graph the counters cannot read: no figures rather than no report
        return {"params": "unknown", "macs": "unknown"}


def _take(x, n: int = CALIBRATION):
    return {k: v[:n] for k, v in x.items()} if isinstance(x, dict) else x[:n]
