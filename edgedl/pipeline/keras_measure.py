"""Measure the Keras original the way ``benchmarks.measure`` measures an artifact.

    python -m edgedl.pipeline.keras_measure run/model.keras --eval run/eval.npz --threads 1

Timed fairly: a compiled ``tf.function`` with a fixed batch-1 signature on
the same thread count as the artifacts (``Model.predict`` would add
per-call data-pipeline overhead that no deployment pays).
"""
from __future__ import annotations

import json
import sys

import numpy as np

from benchmarks.measure import measure_args
from exporters.tfkeras import output_names, tf
from runtime.bench import first_sample, peak_rss_mb, profile, run_all
from runtime.cli import run_cli
from runtime.metrics import fidelity
from runtime.runfolder import load_eval
from runtime.samples import load_outputs, save_outputs
from runtime.tasks import score, tail

from ..training.model_io import load_keras_model


def measure(path, eval_path, threads: int = 1, runs: int = 200, warmup: int = 20, seconds=None,
            reference=None, save_to=None) -> dict:  # fmt: skip
    t = tf()
    # Must happen before TensorFlow runs its first op.
    t.config.threading.set_intra_op_parallelism_threads(threads)
    t.config.threading.set_inter_op_parallelism_threads(1)
    inputs, targets, task = load_eval(eval_path)
    first = t.nest.map_structure(lambda v: np.asarray(v, np.float32), first_sample(inputs))

    def spec(x):
        return {k: t.TensorSpec(v.shape, t.float32) for k, v in x.items()} if isinstance(x, dict) \
            else t.TensorSpec(x.shape, t.float32)  # fmt: skip

    def shape(x):
        return {k: v.shape for k, v in x.items()} if isinstance(x, dict) else x.shape

    def load():
        model = load_keras_model(path)
        one = t.function(lambda v: model(v, training=False), input_signature=[spec(first)])
        any_shape = t.function(lambda v: model(v, training=False), reduce_retracing=True)
        one(first)  # trace and compile the batch-1 function: part of getting ready, as loading is for artifacts

        def predict(batch):
            out = (one if shape(batch) == shape(first) else any_shape)(t.nest.map_structure(lambda v: t.constant(v, t.float32), batch))
            if isinstance(out, (list, tuple)):  # several outputs: by name, as the artifacts give them
                return {name: y.numpy() for name, y in zip(output_names(model), out)}
            return out.numpy()

        return predict

    figures, predict = profile(load, inputs, runs, warmup, seconds)
    outputs = run_all(predict, inputs)
    metrics = score(task, outputs, targets) if targets is not None else {}
    if reference is not None or save_to is not None:  # the original: its own reference
        ref = load_outputs(reference) if reference is not None else outputs
        metrics.update({**fidelity(ref, outputs), **(tail(task, ref, outputs, targets) if targets is not None else {})})
    if save_to is not None:
        save_outputs(save_to, outputs)
    return {"metrics": metrics, **figures, "threads": threads, "delegate": None, "peak_rss_mb": peak_rss_mb()}


def main(argv=None) -> int:
    args = measure_args(f"python -m {__spec__.name}", __doc__).parse_args(argv)
    return run_cli(lambda: json.dump(measure(args.artifact, args.eval, args.threads, args.runs, args.warmup,
                                             args.seconds, args.reference, args.save_outputs), sys.stdout) or 0)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
