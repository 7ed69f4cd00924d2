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
from runtime.bench import accuracy, latency, predict_batched
from runtime.cli import OneLineParser, run_cli


def load_eval(path) -> tuple[np.ndarray, np.ndarray, str]:
    """The evaluation set the pipeline wrote: ``x`` (model-ready floats), ``y`` (targets) and the task."""
    with np.load(path, allow_pickle=False) as data:
        return data["x"].astype(np.float32), data["y"], str(data["task"])


def task_metrics(task: str, outputs: np.ndarray, y: np.ndarray) -> dict:
    """The metric that fits the task."""
    if task == "classification":
        return {"accuracy": accuracy(outputs, y)}
    raise runtime.UserError(f"no metric for task {task!r} yet")


def measure(path, eval_path, threads: int = 1, runs: int = 200, warmup: int = 20, batch: int = 200) -> dict:
    """Load ``path``, score it on the evaluation set, time ``predict`` at batch 1."""
    x, y, _ = load_eval(eval_path)
    start = time.perf_counter()
    model = runtime.load(path, threads=threads)
    init_ms = (time.perf_counter() - start) * 1e3
    one = x[:1]
    start = time.perf_counter()
    model.predict(one)
    first_ms = (time.perf_counter() - start) * 1e3
    stats = latency(lambda: model.predict(one), runs=runs, warmup=warmup)
    outputs = predict_batched(model.predict, x, batch)
    return {
        "metrics": task_metrics(model.metadata.task, outputs, y),
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
