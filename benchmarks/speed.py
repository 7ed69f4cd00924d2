"""How fast the device side is, side by side in one run, and why int8 is (or is not) faster.

    python -m benchmarks.speed runs/demo            # a run folder from 'edgedl pipeline --model cnn'

1. ``runtime`` ``predict`` at batch 1 against the raw interpreter's
   set-input / invoke / get-output on the same file and thread count
   (p50 ratio; target ≤ 1.03×), called in turn so that drift hits both.
   Both take the same float32 batch and give float32 scores: on an int8
   model the raw call quantizes the input and dequantizes the output the way
   a user of the bare interpreter writes it.
2. ``edgedl-run MODEL IMAGE`` from process start to printed result against
   ``python -c "import tensorflow"`` (median wall time; target ≤ 0.10×).
3. int8 against float32 TFLite, 1 thread, with XNNPACK (the default) and
   without it: what the delegate does to each is most of the answer.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import runtime
from runtime.cli import OneLineParser, run_cli
from runtime.errors import UserError
from runtime.runfolder import EVAL_FILE, read_eval_arrays

PAIRED_RUNS = 3000


def _raw(path: Path, threads: int, x: np.ndarray, delegates: bool = True, convert: bool = False):
    """The interpreter as a user without edgedl would drive it: set, invoke, get; with ``convert``, an int8
    model's input quantized and its output dequantized in the call (without, the input once beforehand)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kwargs = {} if delegates else {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
    interp = Interpreter(model_path=str(path), num_threads=threads, **kwargs)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    scale, zero = inp["quantization"]
    out_scale, out_zero = out["quantization"]
    integer = inp["dtype"] == np.int8
    feed = np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8) if integer else x
    index, out_index, invoke, set_tensor, get_tensor = inp["index"], out["index"], interp.invoke, \
        interp.set_tensor, interp.get_tensor  # fmt: skip

    def call():
        set_tensor(index, feed)
        invoke()
        return get_tensor(out_index)

    def converting():
        set_tensor(index, np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8))
        invoke()
        return (get_tensor(out_index).astype(np.float32) - out_zero) * out_scale

    return converting if integer and convert else call


def paired_p50(fns: dict, runs: int = PAIRED_RUNS, warmup: int = 50,
               clock=time.perf_counter_ns) -> dict:  # fmt: skip
    """p50 (µs) of each callable, called in turn and timed call by call, the order turned each round: drift
    (another process, the clock's frequency) hits every one of them alike."""
    fns = list(fns.items())
    for _ in range(warmup):
        for _, fn in fns:
            fn()
    samples = {name: [] for name, _ in fns}
    for i in range(runs):
        for name, fn in fns if i % 2 == 0 else fns[::-1]:
            start = clock()
            fn()
            samples[name].append(clock() - start)
    return {name: float(np.median(v)) / 1e3 for name, v in samples.items()}


def runtime_overhead(run_dir: Path, threads: int = 1) -> list[tuple]:
    x = read_eval_arrays(run_dir / EVAL_FILE)["x"][:1].astype(np.float32)
    rows = []
    for name in ("tflite_float32", "tflite_int8"):
        path = run_dir / "artifacts" / f"{name}.tflite"
        if not path.exists():
            raise UserError(f"{path}: missing; run 'edgedl pipeline --model cnn --out {run_dir}' first")
        model = runtime.load(path, threads=threads)
        p50 = paired_p50({"raw": _raw(path, threads, x, convert=True), "runtime": lambda: model.predict(x)})
        rows.append((f"runtime.predict / raw interpreter, {name}, p50", p50["runtime"] / p50["raw"], 1.03,
                     f"{p50['runtime']:.1f} µs vs {p50['raw']:.1f} µs"))  # fmt: skip
    return rows


def _median_wall(cmd: list, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def cli_startup(run_dir: Path) -> tuple:
    from PIL import Image

    digit = (read_eval_arrays(run_dir / EVAL_FILE)["x"][0, :, :, 0] * 255).round().astype(np.uint8)
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "digit.png"
        Image.fromarray(digit).save(image)
        cli = _median_wall([str(bin_dir / "edgedl-run"), str(run_dir / "artifacts" / "tflite_int8.tflite"), str(image)])
    tf = _median_wall([sys.executable, "-c", "import tensorflow"])
    return ("edgedl-run start-to-result / python -c 'import tensorflow'", cli / tf, 0.10,
            f"{cli * 1e3:.0f} ms vs {tf * 1e3:.0f} ms")


def int8_vs_float(run_dir: Path) -> list[tuple]:
    x = read_eval_arrays(run_dir / EVAL_FILE)["x"][:1].astype(np.float32)
    paths = {p: run_dir / "artifacts" / f"tflite_{p}.tflite" for p in ("float32", "int8")}
    rows = []
    for delegates, label in ((True, "XNNPACK"), (False, "builtin kernels, no XNNPACK")):
        p50 = paired_p50({p: _raw(path, 1, x, delegates) for p, path in paths.items()}, runs=1000)
        rows.append((f"float32 / int8 p50, 1 thread, {label}", p50["float32"] / p50["int8"], None,
                     f"float32 {p50['float32']:.1f} µs, int8 {p50['int8']:.1f} µs"))  # fmt: skip
    return rows


def main(argv=None) -> int:
    p = OneLineParser(prog="python -m benchmarks.speed", description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path, help="a run folder of 'edgedl pipeline --model cnn'")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    def body() -> int:
        rows = [*runtime_overhead(args.run_dir, args.threads), cli_startup(args.run_dir), *int8_vs_float(args.run_dir)]
        width = max(len(r[0]) for r in rows)
        for name, ratio, target, detail in rows:
            verdict = "" if target is None else ("  met" if ratio <= target else "  NOT MET") + f" (target ≤ {target})"
            print(f"{name:<{width}}  {ratio:6.3f}×{verdict}   [{detail}]")
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
