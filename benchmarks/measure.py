"""Measure one artifact through ``runtime/``, in its own process, and print the figures as JSON.

    python -m benchmarks.measure artifacts/cnn_int8.tflite --eval eval.npz --threads 1

The harness runs this once per variant so that one variant's memory and
threads never bleed into the next one's figures.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

import runtime
from runtime.bench import latency, predict_batched
from runtime.metrics import accuracy, denoising_metrics
from runtime.cli import OneLineParser, run_cli


def load_eval(path):
    """The evaluation set the pipeline wrote, as (inputs, targets, task).

    Classification: an array of model-ready images and their labels.
    Denoising: lists of noisy inputs and clean targets (sizes may differ).
    """
    with np.load(path, allow_pickle=False) as data:
        task = str(data["task"])
        if task == "classification":
            return data["x"].astype(np.float32), data["y"], task
        n = int(data["n"])
        return [data[f"noisy_{i}"] for i in range(n)], [data[f"clean_{i}"] for i in range(n)], task


def run_all(predict, inputs, batch: int = 200):
    """Outputs for every input: in batches when the inputs share a shape, one by one otherwise."""
    if isinstance(inputs, np.ndarray) or all(x.shape == inputs[0].shape for x in inputs):
        return list(predict_batched(predict, np.asarray(inputs, dtype=np.float32), batch))
    return [predict(np.asarray(x, dtype=np.float32)[None])[0] for x in inputs]


def task_metrics(task: str, outputs, targets) -> dict:
    """The metric that fits the task: accuracy, or mean PSNR and SSIM."""
    if task == "classification":
        return {"accuracy": accuracy(np.asarray(outputs), targets)}
    if task == "denoising":
        return denoising_metrics(targets, outputs)
    raise runtime.UserError(f"no metric for task {task!r}")


def measure(path, eval_path, threads: int = 1, runs: int = 200, warmup: int = 20, batch: int = 200) -> dict:
    """Load ``path``, score it on the evaluation set, time ``predict`` at batch 1."""
    inputs, targets, task = load_eval(eval_path)
    start = time.perf_counter()
    model = runtime.load(path, threads=threads)
    init_ms = (time.perf_counter() - start) * 1e3
    one = np.asarray(inputs[0], dtype=np.float32)[None]
    start = time.perf_counter()
    model.predict(one)
    first_ms = (time.perf_counter() - start) * 1e3
    stats = latency(lambda: model.predict(one), runs=runs, warmup=warmup)
    outputs = run_all(model.predict, inputs, batch)
    return {
        "metrics": task_metrics(task, outputs, targets),
        "input_shape": list(one.shape),
        "latency_ms": stats,
        "init_ms": init_ms,
        "first_inference_ms": first_ms,
        "threads": threads,
        "delegate": getattr(model, "delegate", None),
    }


def main(argv=None) -> int:
    p = OneLineParser(prog="python -m benchmarks.measure", description=__doc__.splitlines()[0])
    p.add_argument("artifact")
    p.add_argument("--eval", required=True, help="the .npz evaluation set (x, y)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    args = p.parse_args(argv)

    def body() -> int:
        result = measure(args.artifact, args.eval, args.threads, args.runs, args.warmup)
        json.dump(result, sys.stdout)
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
