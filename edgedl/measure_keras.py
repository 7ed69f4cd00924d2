"""Measure the Keras original the way ``benchmarks.measure`` measures an artifact.

    python -m edgedl.measure_keras run/model.keras --eval run/eval.npz --threads 1

Timed fairly: a compiled ``tf.function`` with a fixed batch-1 signature on
the same thread count as the artifacts (``Model.predict`` would add
per-call data-pipeline overhead that no deployment pays).
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np

from benchmarks.measure import load_eval, run_all, task_metrics
from runtime.bench import latency
from runtime.cli import OneLineParser, run_cli

from ._tf import tf
from .train import load_keras_model


def measure(path, eval_path, threads: int = 1, runs: int = 200, warmup: int = 20, batch: int = 200) -> dict:
    t = tf()
    # Must happen before TensorFlow runs its first op.
    t.config.threading.set_intra_op_parallelism_threads(threads)
    t.config.threading.set_inter_op_parallelism_threads(1)
    inputs, targets, task = load_eval(eval_path)
    start = time.perf_counter()
    model = load_keras_model(path)
    first = np.asarray(inputs[0], dtype=np.float32)[None]
    fn = t.function(lambda v: model(v, training=False), input_signature=[t.TensorSpec(first.shape, t.float32)])
    one = t.constant(first)
    fn(one)  # trace and compile
    init_ms = (time.perf_counter() - start) * 1e3
    start = time.perf_counter()
    fn(one).numpy()
    first_ms = (time.perf_counter() - start) * 1e3
    stats = latency(lambda: fn(one).numpy(), runs=runs, warmup=warmup)
    batched = t.function(lambda v: model(v, training=False), reduce_retracing=True)
    outputs = run_all(lambda b: batched(t.constant(b)).numpy(), inputs, batch)
    return {
        "metrics": task_metrics(task, outputs, targets),
        "input_shape": list(first.shape),
        "latency_ms": stats,
        "init_ms": init_ms,
        "first_inference_ms": first_ms,
        "threads": threads,
    }


def main(argv=None) -> int:
    p = OneLineParser(prog="python -m edgedl.measure_keras", description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--eval", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    args = p.parse_args(argv)
    return run_cli(lambda: json.dump(measure(args.model, args.eval, args.threads, args.runs, args.warmup),
                                     sys.stdout) or 0)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
