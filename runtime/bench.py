"""Measure a predictor the same way on the host and on the device.

``latency`` times any callable (a runtime ``Model``'s predict, or the host's
compiled Keras function), so every variant, the original included, goes
through the same clock and the same statistics.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from .errors import UserError
from .metrics import fidelity
from .runfolder import EVAL_FILE, REPORT_FILE, eval_names, find_run, load_eval, resolve
from .samples import load_outputs, save_outputs
from .tasks import get_task, score, tail


def latency(fn: Callable[[], object], runs: int = 200, warmup: int = 20, seconds: Optional[float] = None,
            clock: Callable[[], int] = time.perf_counter_ns) -> dict:  # fmt: skip
    """Call ``fn`` ``warmup`` times untimed, then ``runs`` times (or, given ``seconds``, for that long);
    milliseconds per call, read from ``clock`` (nanoseconds).

    Returns ``p50``, ``p90``, ``p99``, ``mean``, ``std``, ``min`` and ``runs``.
    """
    if runs < 1 or warmup < 0 or (seconds is not None and seconds <= 0):
        raise ValueError(f"runs must be >= 1, warmup >= 0, seconds > 0: got {runs}, {warmup}, {seconds}")
    for _ in range(warmup):
        fn()
    samples = []
    deadline = None if seconds is None else clock() + int(seconds * 1e9)
    while (len(samples) < runs) if deadline is None else (not samples or clock() < deadline):
        start = clock()
        fn()
        samples.append(clock() - start)
    ms = np.asarray(samples, dtype=np.float64) / 1e6
    runs = len(samples)
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "mean": float(ms.mean()),
        "std": float(ms.std()),
        "min": float(ms.min()),
        "runs": runs,
    }


def peak_rss_mb() -> Optional[float]:
    """Peak resident memory of this process so far, in MiB (None where the OS does not say).

    On Linux this is VmHWM: getrusage's ru_maxrss survives exec, so a child
    started by a large parent would report the parent's peak.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


SLOW_STEP_S = 3.0  # a step expected to take longer is announced (a large model's 200 timed calls)


def first_sample(inputs):
    """Sample 0 as a batch of one: an array, or a dict of arrays by input name."""
    if isinstance(inputs, dict):
        return {k: np.asarray(v[:1]) for k, v in inputs.items()}
    return np.asarray(inputs[0], dtype=np.float32)[None]


def profile(load: Callable[[], Callable], inputs, runs: int = 200, warmup: int = 20, seconds=None,
            throughput_batch: int = 32, native: Optional[Callable] = None,
            say: Optional[Callable[[str], None]] = None,
            clock: Callable[[], float] = time.perf_counter) -> tuple[dict, Callable]:  # fmt: skip
    """The figures every variant gets, measured the same way on the host and on a device.

    ``load()`` returns a predict function (batch in, outputs out); ``inputs``
    is a list or array of samples, or a dict of batches by input name.
    Measures the time to load, the first inference, batch-1 latency and the
    throughput at ``throughput_batch`` (when the inputs share a shape).
    ``native(batch)``, when given, converts a batch to the model's own input dtypes once, before timing:
    every model is timed on what it takes (an int8 model on int8 values), none on numpy's conversions.
    ``say(line)``, when given, hears what a step of more than ``SLOW_STEP_S`` seconds is about to do;
    ``clock`` times the load and the first call (seconds).
    Returns the figures and the predict function (to score the model with).
    """
    start = clock()
    predict = load()
    init_ms = (clock() - start) * 1e3
    convert = native or (lambda batch: batch)
    one = convert(first_sample(inputs))
    start = clock()
    predict(one)
    first_ms = (clock() - start) * 1e3
    expected_s = seconds if seconds else first_ms * (runs + warmup) / 1e3
    if say and expected_s > SLOW_STEP_S:
        say(f"timing {f'{runs} calls' if not seconds else 'calls for ' + format(seconds, 'g') + ' s'}, about "
            f"{expected_s:.0f} s ({first_ms:.0f} ms the first call)")  # fmt: skip
    shape = {k: list(v.shape) for k, v in one.items()} if isinstance(one, dict) else list(one.shape)
    figures = {
        "input_shape": shape,
        "init_ms": init_ms,
        "first_inference_ms": first_ms,
        "latency_ms": latency(lambda: predict(one), runs=runs, warmup=warmup, seconds=seconds),
    }
    n = min(throughput_batch, len(inputs) if not isinstance(inputs, dict) else 0)
    if n > 1 and all(np.shape(x) == one.shape[1:] for x in inputs[:n]):
        batch = convert(np.asarray(inputs[:n], dtype=np.float32))
        try:
            stats = latency(lambda: predict(batch), runs=max(3, runs // 20), warmup=2)
        except UserError:  # a model made for one batch size (many exported detectors take 1): no throughput
            return figures, predict
        figures["throughput"] = {"batch": n, "items_per_s": n / (stats["p50"] / 1e3), "batch_ms_p50": stats["p50"]}
    return figures, predict


def parse_shapes(items) -> dict:
    """``["x=1x3x224x224", ...]`` as ``{"x": (1, 3, 224, 224)}``."""
    shapes = {}
    for item in items or ():
        name, _, dims = item.rpartition("=")
        parts = dims.lower().split("x")
        if not name or not all(p.isdigit() and 0 < int(p) <= 1 << 16 for p in parts):
            raise UserError(f"--shape {item!r}: give NAME=DIMxDIMx... with positive sizes, e.g. input=1x3x224x224")
        shapes[name] = tuple(int(p) for p in parts)
    return shapes


def synthetic_inputs(model, shapes: dict, samples: int = 8, seed: int = 0):
    """Inputs of the model's own shapes and ranges, from a fixed seed: for timing a model without data.

    Pictures are random pixels put through the model's normalisation; other 8-bit inputs any byte, wider
    integers (token ids, indices) 0 or 1, valid for any vocabulary; a recurrent state zeros. Free
    dimensions come from ``shapes`` (by input name), the batch defaults to 1.
    """
    from .feeds import state_pairs, whole_inputs
    from .images import to_layout

    rng = np.random.default_rng(seed)
    meta = model.metadata
    whole, state = whole_inputs(meta.inputs), state_pairs(meta)
    unknown = [n for n in shapes if n not in model.input_names]
    if unknown:
        raise UserError(f"--shape names {unknown[0]!r}; the model's inputs are {', '.join(model.input_names)}")
    batch = {}
    for spec in meta.inputs:
        shape = shapes.get(spec.name) or tuple(1 if (i == 0 and d is None) else d for i, d in enumerate(spec.shape))
        first = 0 if spec.name in whole else 1  # a whole input's every axis is the model's
        if len(shape) != len(spec.shape) or any(e is not None and e != d for e, d in zip(spec.shape[first:], shape[first:])):
            raise UserError(f"--shape {spec.name}={'x'.join(map(str, shape))} does not fit the input ({spec.shown()})")
        if None in shape:
            dims = "x".join("1" if i == 0 and d is None else "SIZE" if d is None else str(d) for i, d in enumerate(shape))
            raise UserError(f"input {spec.name!r} has free dimensions ({spec.shown()}); give --shape "
                            f"{spec.name}={dims} with the sizes to time")
        full = (samples, *shape) if spec.name in whole else (samples, *shape[1:])
        if spec.name in state:  # a recurrent state: one step from the start, as a sequence begins
            batch[spec.name] = np.zeros(full, np.dtype(spec.dtype))
        elif spec is meta.image_input:
            nhwc = full if meta.layout == "NHWC" else (full[0], full[2], full[3], full[1])
            pixels = rng.integers(0, 256, size=nhwc).astype(np.float32)
            norm = meta.normalization
            batch[spec.name] = to_layout(pixels * np.float32(norm.scale) + np.float32(norm.offset), meta)
        elif spec.dtype.startswith("float"):
            batch[spec.name] = rng.random(full, dtype=np.float32)
        elif spec.dtype == "bool":
            batch[spec.name] = rng.integers(0, 2, size=full).astype(bool)
        else:
            info = np.iinfo(np.dtype(spec.dtype))
            high = 255 if spec.dtype in ("uint8", "int8") else 1  # pixels; ids and indices: 0 or 1, in range
            batch[spec.name] = rng.integers(max(info.min, 0), min(info.max, high) + 1, size=full).astype(spec.dtype)
    return batch[meta.inputs[0].name] if len(meta.inputs) == 1 else batch


# Inputs per scoring call are capped by size: 200 MNIST images, 32 eight-frame 32×32 sequences. An
# unrolled sequence model's activations run to ~100× its input, so a fixed 200 took 1.7 GB (a Pi has 1–8).
BATCH_FLOATS = 1 << 18


def _rows(out, n: int) -> list:
    """A batch's outputs as one entry per sample: an array, or (several outputs) a dict of arrays."""
    if isinstance(out, dict):
        return [{k: v[i] for k, v in out.items()} for i in range(n)]
    return list(out)


def run_all(predict, inputs, batch: int = 200):
    """Outputs for every input: in batches when the inputs share a shape, one by one otherwise."""
    if isinstance(inputs, dict):  # several inputs, by name
        n = len(next(iter(inputs.values())))
        rows = []
        for i in range(0, n, batch):
            size = min(batch, n - i)
            rows += _rows(predict({k: v[i : i + size] for k, v in inputs.items()}), size)
        return rows
    if isinstance(inputs, np.ndarray) or all(x.shape == inputs[0].shape for x in inputs):
        x = np.asarray(inputs, dtype=np.float32)
        batch = max(1, min(batch, BATCH_FLOATS // max(1, int(np.prod(x.shape[1:])))))
        rows = []
        for i in range(0, len(x), batch):
            rows += _rows(predict(x[i : i + batch]), len(x[i : i + batch]))
        return rows
    return [_rows(predict(np.asarray(x, dtype=np.float32)[None]), 1)[0] for x in inputs]


def measure(path, eval_path=None, threads: int = 1, runs: int = 200, warmup: int = 20, seconds=None,
            providers: Optional[Sequence[str]] = None, shapes: Optional[dict] = None, loader=None,
            reference=None, save_to=None, say: Optional[Callable[[str], None]] = None) -> dict:  # fmt: skip
    """Load ``path`` through ``runtime/``, time it, and score it when the evaluation data has targets: the
    figures the host harness records for every variant, and ``edgedl-run bench`` on a device.

    Without ``eval_path`` the model is timed on synthetic inputs of its own shape (``shapes`` for free
    dimensions). ``loader`` returns the loaded model (default: ``runtime.load`` of ``path``). With
    ``reference`` (outputs saved by the original's measurement, ``save_to``), the metrics include the
    fidelity of these outputs to those (``runtime.metrics.fidelity``).
    """
    from .model import load as load_model

    loader = loader or (lambda: load_model(path, threads=threads, providers=providers))
    if eval_path is not None:
        inputs, targets, task = load_eval(eval_path)
        note = None if targets is not None else "the evaluation data has no labels or targets"
    else:
        inputs, targets, task = synthetic_inputs(loader(), shapes or {}), None, None
        note = "synthetic inputs (seed 0) of the model's shape"
    holder = {}

    def load():
        holder["model"] = loader()
        return holder["model"].predict

    figures, predict = profile(load, inputs, runs, warmup, seconds, native=lambda x: holder["model"].native(x),
                               say=say)  # fmt: skip
    batch = getattr(holder["model"], "fixed_batch", None) or 200
    metrics, per_image = {}, {}
    if targets is not None or reference is not None or save_to is not None:
        count = len(next(iter(inputs.values()))) if isinstance(inputs, dict) else len(inputs)
        if say and count * figures["latency_ms"]["p50"] / 1e3 > SLOW_STEP_S:
            say(f"scoring {count:,} evaluation inputs, about {count * figures['latency_ms']['p50'] / 1e3:.0f} s")
        outputs = run_all(predict, inputs, batch)
        if targets is not None:
            metrics.update(score(task, outputs, targets))
        if reference is not None or save_to is not None:  # the original: its own reference
            ref = load_outputs(reference) if reference is not None else outputs
            metrics.update(fidelity(ref, outputs))
            if targets is not None:
                metrics.update(tail(task, ref, outputs, targets))
            per_sample = get_task(task).per_sample if targets is not None else None
            if per_sample is not None:  # every sample's change, and the worst one named
                per_image = per_sample(ref, outputs, targets, eval_names(eval_path, len(outputs)))
        if save_to is not None:
            save_outputs(save_to, outputs)
    return {
        "metrics": metrics,
        **per_image,
        **({"inputs_note": f"{note}: no accuracy measured"} if note else {}),
        **figures,
        "threads": threads,
        "delegate": getattr(holder["model"], "delegate", None),
        "peak_rss_mb": peak_rss_mb(),
    }


def run_of(path: Path) -> Optional[Path]:
    """The run folder of ``edgedl pipeline`` that holds an artifact (``RUN/artifacts/x.tflite``,
    ``RUN/selected/model.tflite``): the first of its folder and that folder's parent with both
    ``report.json`` and ``eval.npz``."""
    run = find_run(Path(path).parent, levels=1)
    return run if run is not None and (run / EVAL_FILE).is_file() else None


def _run_manifest(run: Path, path: Path) -> tuple[dict, dict]:
    """A run's report in the shape of a bundle's manifest: the original's figures and the artifact's entry."""
    from .report import read_report

    try:
        report = read_report(run / REPORT_FILE)
    except UserError:
        return {}, {}
    records = report["variants"]
    here = path.resolve()
    entry = next((v for v in records if v.get("path") and resolve(v["path"], run).resolve() == here), {})
    entry = {**entry, "variant": entry["name"]} if entry else {}
    original = records[0] if records and records[0].get("status", "ok") == "ok" else None
    reference = {"variant": "original", "metrics": original["metrics"]} if original else {}
    return {"model": report["model"], "eval": "eval.npz", "reference": reference}, entry


def measure_report(model_path, eval_path=None, threads: int = 1, runs: int = 200, warmup: int = 20, seconds=None,
                   providers: Optional[Sequence[str]] = None, shapes: Optional[dict] = None,
                   loader=None, say=None) -> dict:  # fmt: skip
    """``edgedl-run bench``: one model measured on this machine, as a report that merges with the host's.

    Inside a bundle, the evaluation set defaults to the bundle's, and the
    record carries the variant's name and costs and its metric's difference
    from the host's Keras original (the bundle's manifest holds that figure).
    """
    from .bundle import verify_for
    from .machine import machine_info
    from .model import check_providers
    from .report import make_report, metric_delta, variant_record

    path = Path(model_path)
    check_providers(path, providers)  # before the evaluation set loads
    found = verify_for(path) if path.exists() else None
    manifest, entry, shown_path = {}, {}, str(path)
    if found is not None:
        manifest = found["manifest"]
        shown_path = path.resolve().relative_to(found["root"]).as_posix()
        entry = next((a for a in manifest.get("artifacts", []) if a.get("path") == shown_path), {})
        if eval_path is None and manifest.get("eval"):
            eval_path = found["root"] / manifest["eval"]
    elif eval_path is None and (run := run_of(path)) is not None:  # an artifact of a run of 'edgedl pipeline'
        eval_path = run / EVAL_FILE
        manifest, entry = _run_manifest(run, path)
    figures = measure(path, eval_path, threads, runs, warmup, seconds, providers, shapes, loader, say=say)
    from .model import read_metadata

    meta = read_metadata(path)
    record = variant_record(entry.get("variant", path.stem), meta.format, meta.precision,
                            entry.get("techniques", meta.techniques), path, shown_path, figures,
                            {k: entry[k] for k in ("params", "macs", "macs_per_pixel") if k in entry})
    report = make_report(manifest.get("model", path.stem), meta.task, [record], machine_info(threads),
                         extra={"measured_by": "edgedl-run bench"})  # fmt: skip
    metric = report["metric"]
    reference = manifest.get("reference") or {}
    variant = report["variants"][0]
    against = None
    if metric in variant["metrics"] and metric in reference.get("metrics", {}):
        variant["metric_delta"] = metric_delta(variant["metrics"][metric], reference["metrics"][metric], metric)
        against = f"the host's {reference.get('variant', 'original')}"
    else:  # a loose artifact, or one bundled without its run: nothing on the host to compare with
        variant["metric_delta"] = None
    report["metric_delta_against"] = against
    report["eval"] = None if eval_path is None else str(eval_path)
    if found is not None:
        report["bundle"] = {k: manifest[k] for k in ("target", "created", "edgedl_version") if k in manifest}
    return report
