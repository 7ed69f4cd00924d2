"""Measure one artifact through ``runtime/``, in its own process, and print the figures as JSON.

    python -m benchmarks.measure artifacts/cnn_int8.tflite --eval eval.npz --threads 1

The harness runs this once per variant so that one variant's memory and
threads never bleed into the next one's figures. The measuring itself is
``runtime.bench.measure``: the same code ``edgedl-run bench`` runs on a device.
"""
from __future__ import annotations

import json
import sys

from runtime.bench import measure
from runtime.cli import OneLineParser, add_timing_args, run_cli


def measure_args(prog: str, doc: str):
    """The command line every measurer takes (the harness calls each the same way)."""
    p = OneLineParser(prog=prog, description=doc.splitlines()[0])
    p.add_argument("artifact")
    p.add_argument("--eval", required=True, help="the .npz evaluation set")
    p.add_argument("--threads", type=int, default=1)
    add_timing_args(p)
    p.add_argument("--reference", help="the original's outputs (.npz): add the fidelity to them to the metrics")
    p.add_argument("--save-outputs", help="write the outputs on the evaluation inputs here (.npz)")
    return p


def main(argv=None) -> int:
    args = measure_args("python -m benchmarks.measure", __doc__).parse_args(argv)

    def body() -> int:
        result = measure(args.artifact, args.eval, args.threads, args.runs, args.warmup, args.seconds,
                         reference=args.reference, save_to=args.save_outputs)  # fmt: skip
        json.dump(result, sys.stdout)
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
