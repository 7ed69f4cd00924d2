"""Measure a predictor the same way on the host and on the device.

``latency`` times any callable (a runtime ``Model``'s predict, or the host's
compiled Keras function), so every variant, the original included, goes
through the same clock and the same statistics.
"""
from __future__ import annotations

import sys
import time
from typing import Callable, Optional, Sequence

import numpy as np

from .errors import UserError
from .metrics import accuracy, denoising_metrics


def latency(fn: Callable[[], object], runs: int = 200, warmup: int = 20, seconds: Optional[float] = None) -> dict:
    """Call ``fn`` ``warmup`` times untimed, then ``runs`` times (or, given ``seconds``, for that long);
    milliseconds per call.

    Returns ``p50``, ``p90``, ``p99``, ``mean``, ``std``, ``min`` and ``runs``.
    """
    if runs < 1 or warmup < 0 or (seconds is not None and seconds <= 0):
        raise ValueError(f"runs must be >= 1, warmup >= 0, seconds > 0: got {runs}, {warmup}, {seconds}")
    for _ in range(warmup):
        fn()
    clock = time.perf_counter_ns
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


def profile(load: Callable[[], Callable], inputs, runs: int = 200, warmup: int = 20, seconds=None,
            throughput_batch: int = 32) -> tuple[dict, Callable]:  # fmt: skip
    """The figures every variant gets, measured the same way on the host and on a device.

    ``load()`` returns a predict function (float batch in, float batch out).
    Measures the time to load, the first inference, batch-1 latency and the
    throughput at ``throughput_batch`` (when the inputs share a shape).
    Returns the figures and the predict function (to score the model with).
    """
    start = time.perf_counter()
    predict = load()
    init_ms = (time.perf_counter() - start) * 1e3
    one = np.asarray(inputs[0], dtype=np.float32)[None]
    start = time.perf_counter()
    predict(one)
    first_ms = (time.perf_counter() - start) * 1e3
    figures = {
        "input_shape": list(one.shape),
        "init_ms": init_ms,
        "first_inference_ms": first_ms,
        "latency_ms": latency(lambda: predict(one), runs=runs, warmup=warmup, seconds=seconds),
    }
    n = min(throughput_batch, len(inputs))
    if all(np.shape(x) == one.shape[1:] for x in inputs[:n]):
        batch = np.asarray(inputs[:n], dtype=np.float32)
        stats = latency(lambda: predict(batch), runs=max(3, runs // 20), warmup=2)
        figures["throughput"] = {"batch": n, "items_per_s": n / (stats["p50"] / 1e3), "batch_ms_p50": stats["p50"]}
    return figures, predict


def predict_batched(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch: int = 200) -> np.ndarray:
    """Run ``predict`` over ``x`` in chunks of ``batch`` and stack the results."""
    return np.concatenate([predict(x[i : i + batch]) for i in range(0, len(x), batch)])


def load_eval(path):
    """The evaluation set the pipeline wrote (``eval.npz``), as (inputs, targets, task).

    Classification: an array of model-ready images and their labels.
    Denoising: lists of noisy inputs and clean targets (sizes may differ).
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            task = str(data["task"])
            if task == "classification":
                return data["x"].astype(np.float32), data["y"], task
            n = int(data["n"])
            return [data[f"noisy_{i}"] for i in range(n)], [data[f"clean_{i}"] for i in range(n)], task
    except FileNotFoundError:
        raise UserError(f"{path}: no such evaluation set") from None
    except KeyError as exc:
        raise UserError(f"{path}: not an edgedl evaluation set (no array {exc}); use the eval.npz a run wrote") from None
    except (OSError, ValueError):
        raise UserError(f"{path}: not an edgedl evaluation set (not a readable .npz); use the eval.npz a run wrote") from None


# Inputs per scoring call are capped by size: 200 MNIST images, 32 eight-frame 32×32 sequences. An
# unrolled sequence model's activations run to ~100× its input, so a fixed 200 took 1.7 GB (a Pi has 1–8).
BATCH_FLOATS = 1 << 18


def run_all(predict, inputs, batch: int = 200):
    """Outputs for every input: in batches when the inputs share a shape, one by one otherwise."""
    if isinstance(inputs, np.ndarray) or all(x.shape == inputs[0].shape for x in inputs):
        x = np.asarray(inputs, dtype=np.float32)
        batch = max(1, min(batch, BATCH_FLOATS // max(1, int(np.prod(x.shape[1:])))))
        return list(predict_batched(predict, x, batch))
    return [predict(np.asarray(x, dtype=np.float32)[None])[0] for x in inputs]


def task_metrics(task: str, outputs, targets) -> dict:
    """The metric that fits the task: accuracy, or mean PSNR and SSIM."""
    if task == "classification":
        return {"accuracy": accuracy(np.asarray(outputs), targets)}
    if task == "denoising":
        return denoising_metrics(targets, outputs)
    raise UserError(f"no metric for task {task!r}")


def measure(path, eval_path, threads: int = 1, runs: int = 200, warmup: int = 20, seconds=None,
            providers: Optional[Sequence[str]] = None) -> dict:  # fmt: skip
    """Load ``path`` through ``runtime/``, time it, score it on the evaluation set: the figures the host
    harness records for every variant, and ``edgedl-run bench`` on a device."""
    from .model import load as load_model

    inputs, targets, task = load_eval(eval_path)
    holder = {}

    def load():
        holder["model"] = load_model(path, threads=threads, providers=providers)
        return holder["model"].predict

    figures, predict = profile(load, inputs, runs, warmup, seconds)
    outputs = run_all(predict, inputs)
    return {
        "metrics": task_metrics(task, outputs, targets),
        **figures,
        "threads": threads,
        "delegate": getattr(holder["model"], "delegate", None),
        "peak_rss_mb": peak_rss_mb(),
    }


def primary_metric(task: str) -> str:
    """The metric a report ranks variants by: accuracy for classifiers, PSNR for denoisers."""
    return "accuracy" if task == "classification" else "psnr"


def metric_delta(value: float, reference: float, metric: str) -> float:
    """Variant minus reference: accuracy in points, PSNR in dB."""
    return (value - reference) * (100.0 if metric == "accuracy" else 1.0)


def measure_report(model_path, eval_path=None, threads: int = 1, runs: int = 200, warmup: int = 20, seconds=None,
                   providers: Optional[Sequence[str]] = None) -> dict:  # fmt: skip
    """``edgedl-run bench``: one variant measured on this machine, as a report that merges with the host's.

    Inside a bundle, the evaluation set defaults to the bundle's, and the
    record carries the variant's name and costs and its metric's difference
    from the host's Keras original (the bundle's manifest holds that figure).
    """
    from pathlib import Path

    from .bundle import verify_for
    from .files import file_sizes
    from .machine import machine_info
    from .model import check_providers, read_metadata

    path = Path(model_path)
    check_providers(path, providers)  # before the evaluation set loads
    found = verify_for(path) if path.exists() else None
    manifest, entry, shown_path = {}, {}, str(path)
    if found is not None:
        manifest = found["manifest"]
        shown_path = path.resolve().relative_to(found["root"]).as_posix()
        entry = next((a for a in manifest.get("artifacts", []) if a["path"] == shown_path), {})
        if eval_path is None and manifest.get("eval"):
            eval_path = found["root"] / manifest["eval"]
    if eval_path is None:
        raise UserError(f"{path}: give --eval EVAL.npz (the model is not in a bundle that carries evaluation data)")
    figures = measure(path, eval_path, threads, runs, warmup, seconds, providers)
    meta = read_metadata(path)
    metric = primary_metric(meta.task)
    size, gz = file_sizes(path)
    record = {
        "name": entry.get("variant", path.stem),
        "format": meta.format,
        "precision": meta.precision,
        "techniques": list(entry.get("techniques", meta.techniques)),
        "path": shown_path,
        "size_bytes": size,
        "gzip_bytes": gz,
        **{k: entry[k] for k in ("params", "macs", "macs_per_pixel") if k in entry},
        **figures,
    }
    reference = manifest.get("reference") or {}
    if metric in reference.get("metrics", {}):
        record["metric_delta"] = metric_delta(record["metrics"][metric], reference["metrics"][metric], metric)
        against = f"the host's {reference.get('variant', 'original')}"
    else:  # a loose artifact, or one bundled without its run: nothing on the host to compare with
        record["metric_delta"] = 0.0
        against = None
    return {
        "schema_version": 1,
        "model": manifest.get("model", path.stem),
        "task": meta.task,
        "metric": metric,
        "machine": machine_info(threads),
        "measured_by": "edgedl-run bench",
        "metric_delta_against": against,
        **({"bundle": {k: manifest[k] for k in ("target", "created", "edgedl_version") if k in manifest}}
           if manifest else {}),  # fmt: skip
        "variants": [record],
    }
