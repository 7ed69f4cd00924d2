"""What the checks at every load cost: the ``.tflite`` structural verifier (``runtime.tflite_check``), the
``onnx.checker`` gate and the checksum, against the interpreter's own load, on networks of real size.

    python -c "import keras; keras.applications.MobileNetV2(weights=None).save('mnv2.keras')"
    edgedl export mnv2.keras --format tflite --out mnv2.tflite --task classification
    edgedl export mnv2.keras --format onnx --out mnv2.onnx --task classification
    python -m benchmarks.load_checks mnv2.tflite mnv2.onnx

Prints one line per file: its size, the median of 20 runs of each check, and
the full ``runtime.load`` (checks included) for comparison.
"""
from __future__ import annotations

import hashlib
import statistics
import sys
import time
from pathlib import Path

from runtime.cli import OneLineParser, run_cli


def _median_ms(fn, runs: int = 20) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def measure(path: Path) -> str:
    import runtime
    from runtime.onnx_check import check_onnx
    from runtime.tflite_check import check_tflite

    data = path.read_bytes()
    check = (lambda: check_tflite(data)) if path.suffix == ".tflite" else (lambda: check_onnx(path, data))
    name = "verifier" if path.suffix == ".tflite" else "onnx.checker"
    return (f"{path.name}: {len(data) / 2**20:.1f} MiB; {name} {_median_ms(check):.2f} ms, sha256 "
            f"{_median_ms(lambda: hashlib.sha256(data).digest()):.2f} ms, runtime.load (all checks, the interpreter) "
            f"{_median_ms(lambda: runtime.load(path, threads=1), runs=5):.1f} ms")  # fmt: skip


def main(argv=None) -> int:
    p = OneLineParser(prog="python -m benchmarks.load_checks", description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", type=Path, help=".tflite or .onnx files")
    args = p.parse_args(argv)

    def body() -> int:
        for path in args.models:
            print(measure(path), flush=True)
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
