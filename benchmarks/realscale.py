"""Real scale: MobileNetV2 on a folder of photos, through ``edgedl pipeline``, and what the run cost.

    python -m benchmarks.realscale --work /tmp/rs --photos 2000 --width 0.35 --input-size 96 --epochs 3
    python -m benchmarks.realscale --work /tmp/rs --photos 20000 --photo-size 224x224 --memory-only
    python -m benchmarks.realscale --work /tmp/rs --width 1.0 --input-size 224 --train-size 320 --epochs 2 \
        --variants tflite_float32,tflite_dynamic,tflite_int8,onnx_float32,onnx_int8,filter_prune

Makes a folder of JPEGs (three classes of coloured shapes on noise, 256×192: not square, so ``--resize``
matters), runs ``edgedl pipeline --model mobilenet_v2`` on it in a child process, and prints: parameters,
MACs, accuracy, every variant's p50 at one thread and its speed against its format's float32, the fastest
variant within one point, and the run's peak memory (the largest process of its tree: the pipeline, or a
variant's measurement), and the input pipeline's pictures per second against the training's.
``--memory-only`` trains one epoch and builds one variant: the peak memory of a folder of that size, for
comparing folders of 2,000 and 20,000 pictures. At 1.0 / 224 this machine (2 cores) trains about 4 pictures
a second: ``--train-size`` measures the speeds at full size on a short training.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np

from runtime.cli import OneLineParser, run_cli
from runtime.errors import UserError
from runtime.report import read_report

CLASSES = ("disc", "square", "stripes")
VARIANTS = "tflite_float32,tflite_dynamic,tflite_int8,onnx_float32,onnx_int8,prune,filter_prune,qat"


def make_photos(folder: Path, count: int, size: tuple = (256, 192), seed: int = 0) -> Path:
    """``count`` JPEGs of ``size`` (width, height) in three class folders, a class a shape of a random colour on
    noise (kept when already made)."""
    from PIL import Image, ImageDraw

    if folder.exists() and sum(1 for _ in folder.rglob("*.jpg")) == count:
        return folder
    width, height = size
    rng = np.random.default_rng(seed)
    for i in range(count):
        name = CLASSES[i % len(CLASSES)]
        (folder / name).mkdir(parents=True, exist_ok=True)
        image = Image.fromarray(rng.integers(0, 90, (height, width, 3), dtype=np.uint8))
        pen = ImageDraw.Draw(image)
        colour = tuple(int(c) for c in rng.integers(110, 256, 3))
        r = int(rng.integers(height // 8, height // 4))
        x, y = int(rng.integers(r, width - r)), int(rng.integers(r, height - r))
        if name == "disc":
            pen.ellipse([x - r, y - r, x + r, y + r], fill=colour)
        elif name == "square":
            pen.rectangle([x - r, y - r, x + r, y + r], fill=colour)
        else:
            for row in range(0, height, height // 10):
                pen.rectangle([0, row, width - 1, row + height // 24], fill=colour)
        image.save(folder / name / f"{i:06d}.jpg", quality=90)
    return folder


def run_pipeline(photos: Path, out: Path, width: float, size: int, epochs: int, variants: str,
                 train_size: Optional[int] = None) -> tuple[float, float]:  # fmt: skip
    """(seconds, peak MB of the largest process of the run's tree)."""
    exe = str(Path(sys.executable).with_name("edgedl"))
    command = [exe, "pipeline", "--model", "mobilenet_v2", "--width", str(width), "--input-size", str(size),
               "--data", str(photos), "--epochs", str(epochs), "--out", str(out), "--variants", variants,
               "--resize", "crop", "--quiet", *(["--train-size", str(train_size)] if train_size else [])]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise UserError(f"edgedl pipeline failed: {(proc.stderr.strip().splitlines() or ['no output'])[-1]}")
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def input_against_training(run: Path) -> str:
    """The input pipeline's pictures per second alone against the training's (from the run's record)."""
    record = json.loads((run / "train_config.json").read_text()).get("run", {})
    reading, training = record.get("input_examples_per_s"), record.get("train_examples_per_s")
    if reading is None or training is None:
        return "input pipeline: not measured (the training data was not read from files)"
    return (f"input pipeline {reading:,.0f} pictures/s alone, training {training:,.0f} pictures/s: "
            f"{'the input keeps ahead' if reading > training else 'training waits on the input'} "
            f"({reading / training:.1f}×)")


def figures(report: dict) -> list[str]:
    by_name = {v["name"]: v for v in report["variants"] if v.get("status", "ok") == "ok"}
    original = by_name["original"]
    lines = [f"params {original['params']:,}, MACs {original['macs']:,}, accuracy {original['metrics']['accuracy']:.4f} "
             f"on {report['data']['eval_size']} pictures"]  # fmt: skip
    for v in report["variants"][1:]:
        if v.get("status", "ok") != "ok":
            lines.append(f"  {v['name']:<28} failed: {v['error']}")
            continue
        speed = v.get("speed_vs_float32")
        lines.append(f"  {v['name']:<28} p50 {v['latency_ms']['p50']:8.2f} ms  Δ {v['metric_delta']:+6.2f} pts  "
                     f"{'' if speed is None else f'{speed:.2f}× its float32'}")  # fmt: skip
    within = [v for v in by_name.values() if v["format"] != "keras" and v["metric_delta"] >= -1.0]
    if within and "tflite_float32" in by_name:
        best = min(within, key=lambda v: v["latency_ms"]["p50"])
        ratio = by_name["tflite_float32"]["latency_ms"]["p50"] / best["latency_ms"]["p50"]
        lines.append(f"fastest within 1 point: {best['name']} ({ratio:.2f}× tflite_float32)")
    return lines


def main(argv=None) -> int:
    p = OneLineParser(prog="python -m benchmarks.realscale", description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True, help="folder for the photos and the run")
    p.add_argument("--photos", type=int, default=2000)
    p.add_argument("--photo-size", default="256x192", help="the JPEGs' width x height (default 256x192)")
    p.add_argument("--width", type=float, default=0.35)
    p.add_argument("--input-size", type=int, default=96)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--variants", default=VARIANTS, help=f"the pipeline's variants (default {VARIANTS})")
    p.add_argument("--train-size", type=int, help="train on at most this many photos (speed at full size, where "
                                                  "training to convergence would take this machine hours)")  # fmt: skip
    p.add_argument("--memory-only", action="store_true", help="one epoch, one variant: the run's peak memory")
    args = p.parse_args(argv)

    def body() -> int:
        try:
            size = tuple(int(v) for v in args.photo_size.lower().split("x"))
        except ValueError:
            size = ()
        if len(size) != 2 or min(size) < 16:
            raise UserError(f"--photo-size {args.photo_size!r}: give WIDTHxHEIGHT, each at least 16 (256x192)")
        folder = f"photos-{args.photos}" + ("" if size == (256, 192) else f"-{size[0]}x{size[1]}")
        photos = make_photos(args.work / folder, args.photos, size)
        out = args.work / f"run-{folder.removeprefix('photos-')}-{args.width:g}-{args.input_size}"
        epochs, variants = (1, "tflite_float32") if args.memory_only else (args.epochs, args.variants)
        seconds, peak = run_pipeline(photos, out, args.width, args.input_size, epochs, variants, args.train_size)
        print(f"mobilenet_v2 {args.width:g} at {args.input_size}, {args.photos:,} photos: {seconds:.0f} s, "
              f"peak {peak:,.0f} MB (largest process)")  # fmt: skip
        print(input_against_training(out))
        if not args.memory_only:
            print("\n".join(figures(read_report(out / "report.json"))))
        print(json.dumps({"photos": args.photos, "seconds": round(seconds, 1), "peak_mb": round(peak)}))
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
