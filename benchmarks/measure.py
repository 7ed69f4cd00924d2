"""Measure one artifact through ``runtime/``, in its own process, and print the figures as JSON.

    python -m benchmarks.measure artifacts/cnn_int8.tflite --eval eval.npz --threads 1

The harness runs this once per variant so that one variant's memory and
threads never bleed into the next one's figures.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

import runtime
from runtime.bench import peak_rss_mb, predict_batched, profile
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


def measure(path, eval_path, threads: int = 1, runs: int = 200, warmup: int = 20, seconds=None) -> dict:
    """Load ``path`` through ``runtime/``, time it, score it on the evaluation set."""
    inputs, targets, task = load_eval(eval_path)
    holder = {}

    def load():
        holder["model"] = runtime.load(path, threads=threads)
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


def measure_args(prog: str, doc: str):
    """The command line every measurer takes (the harness calls each the same way)."""
    p = OneLineParser(prog=prog, description=doc.splitlines()[0])
    p.add_argument("artifact")
    p.add_argument("--eval", required=True, help="the .npz evaluation set")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--seconds", type=float, default=None, help="time budget for the latency runs instead of --runs")
    return p


def main(argv=None) -> int:
    args = measure_args("python -m benchmarks.measure", __doc__).parse_args(argv)

    def body() -> int:
        result = measure(args.artifact, args.eval, args.threads, args.runs, args.warmup, args.seconds)
        json.dump(result, sys.stdout)
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
