"""``edgedl-run``: run an exported artifact on the device, benchmark it there, unpack a bundle.

    edgedl-run cnn_int8.tflite digit.png more_digits/ --threads 2
    edgedl-run cnn_int8.tflite batch.npy --json
    edgedl-run bench models/cnn_int8.tflite --json pi.json
    edgedl-run unpack cnn-rpi-arm64.tar.gz --to ~/models

Imports numpy, Pillow and one interpreter; never TensorFlow.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Optional, Sequence

import numpy as np

from .errors import UserError
from .images import expand_inputs, load_inputs
from .model import load


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem and where to look."""

    def error(self, message: str):  # noqa: D401 - argparse's signature
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def run_cli(main: Callable[[], int]) -> int:
    """Run a CLI body: a ``UserError`` becomes one line on stderr and exit code 2."""
    try:
        return main()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        sys.stderr.close()
        return 0


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="edgedl-run", description="Run an edgedl artifact (.tflite or .onnx) on images. "
                      "Also: 'edgedl-run bench MODEL' and 'edgedl-run unpack BUNDLE' (each with --help).")
    p.add_argument("model", help="a .tflite or .onnx file exported by edgedl")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="PNG/JPEG/.npy files or folders of them")
    p.add_argument("--threads", type=int, default=None, help="interpreter threads (default: the interpreter's)")
    p.add_argument("--top", type=int, default=1, help="how many classes to list per input (default 1)")
    p.add_argument("--batch", type=int, default=64, help="inputs per interpreter call (default 64)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    p.add_argument("--out", help="denoisers: folder for the denoised images (same names) and summary.json")
    p.add_argument("--tile", type=int, default=512, help="denoisers: tile size for large images (default 512)")
    p.add_argument("--providers", help="ONNX: execution providers to use, in order (default: TensorRT, CUDA, CPU "
                                       "as installed)")  # fmt: skip
    return p


def classify(model, names: list[str], x: np.ndarray, top: int, batch: int) -> list[dict]:
    """Top-``top`` classes for each input, as JSON-ready dicts."""
    from .bench import predict_batched

    scores = predict_batched(model.predict, x, batch)
    labels = model.metadata.labels or tuple(str(i) for i in range(scores.shape[-1]))
    results = []
    for name, row in zip(names, scores):
        order = np.argsort(-row, kind="stable")[:top]  # ties (common in int8 output) go to the lower index, as argmax
        results.append(
            {
                "input": name,
                "label": labels[order[0]],
                "class_index": int(order[0]),
                "score": float(row[order[0]]),
                "top": [{"label": labels[i], "score": float(row[i])} for i in order],
            }
        )
    return results


def _table(results: list[dict]) -> str:
    width = max(len("input"), *(len(r["input"]) for r in results))
    runners_up = any(len(r["top"]) > 1 for r in results)
    lines = [f"{'input':<{width}}  {'label':>8}  {'score':>7}" + ("  next" if runners_up else "")]
    for r in results:
        line = f"{r['input']:<{width}}  {r['label']:>8}  {r['score']:>7.4f}"
        if runners_up:
            line += "  " + ", ".join(f"{t['label']} {t['score']:.4f}" for t in r["top"][1:])
        lines.append(line)
    return "\n".join(lines)


def _denoise_all(model, files, args) -> int:
    """Write each denoised input into ``--out`` under its own name, then ``summary.json``."""
    import time
    from pathlib import Path

    from .denoise import denoise
    from .files import atomic_path, write_json
    from .images import load_array, load_image, save_image

    if not args.out:
        raise UserError(f"{args.model} is a denoiser: give --out DIR for the denoised images")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    results = []
    if len(model.metadata.input.shape) == 5:
        return _denoise_sequences(model, files, out, args)
    for f in files:
        is_array = f.suffix.lower() == ".npy"
        images = load_array(f, model.metadata) if is_array else load_image(f, model.metadata, keep_size=True)[None]
        start = time.perf_counter()
        clean = np.stack([denoise(model, img, tile=args.tile) for img in images])
        ms = (time.perf_counter() - start) * 1e3
        target = out / f.name
        if is_array:
            with atomic_path(target) as tmp:
                np.save(tmp, clean if len(clean) > 1 else clean[0])
        else:
            save_image(clean[0], model.metadata, target)
        results.append({"input": str(f), "output": str(target), "shape": list(clean.shape[1:]), "ms": round(ms, 3)})
    write_json(out / "summary.json", {"model": args.model, "task": "denoising", "results": results})
    if args.json:
        print(json.dumps({"model": args.model, "task": "denoising", "results": results}, indent=2))
    else:
        width = max(len(r["input"]) for r in results)
        print("\n".join(f"{r['input']:<{width}}  ->  {r['output']}  ({r['ms']:.1f} ms)" for r in results))
    return 0


def _denoise_sequences(model, files, out, args) -> int:
    """Sequence models: a ``.npy`` of frames (F×H×W×C, any F) streams through frame by frame; a stack of
    whole sequences (N×T×H×W×C) runs as it is."""
    import time

    from .files import atomic_path, write_json
    from .sequence import FrameStream

    results = []
    for f in files:
        if f.suffix.lower() != ".npy":
            raise UserError(f"{f}: a sequence model takes .npy arrays of frames (F×H×W×C), not images")
        try:
            arr = np.load(f, allow_pickle=False).astype(np.float32)
        except (ValueError, OSError) as exc:
            raise UserError(f"{f}: not a readable .npy array ({exc})") from None
        frame_shape = tuple(model.metadata.input.shape[2:])
        start = time.perf_counter()
        if arr.ndim == 4 and arr.shape[1:] == frame_shape:
            stream = FrameStream(model)
            clean = np.stack([stream.push(frame) for frame in arr])
        elif arr.ndim == 5 and arr.shape[1:] == tuple(model.metadata.input.shape[1:]):
            clean = model.predict(arr)
        else:
            raise UserError(f"{f}: array of shape {arr.shape} is neither frames of {frame_shape} nor sequences "
                            f"of {tuple(model.metadata.input.shape[1:])}")  # fmt: skip
        ms = (time.perf_counter() - start) * 1e3
        with atomic_path(out / f.name) as tmp:
            np.save(tmp, clean)
        results.append({"input": str(f), "output": str(out / f.name), "shape": list(clean.shape), "ms": round(ms, 3)})
    write_json(out / "summary.json", {"model": args.model, "task": "denoising", "results": results})
    print("\n".join(f"{r['input']}  ->  {r['output']}  ({r['ms']:.1f} ms)" for r in results))
    return 0


def _bench_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="edgedl-run bench",
                      description="Measure an artifact as the host harness does: latency, init, memory, metric.")
    p.add_argument("model", help="a .tflite or .onnx file (inside a bundle, its evaluation data is the default)")
    p.add_argument("--eval", help="the evaluation set (.npz written by 'edgedl pipeline'; default: the bundle's)")
    p.add_argument("--threads", type=int, default=1, help="interpreter threads (default 1, as the host report)")
    p.add_argument("--runs", type=int, default=200, help="timed batch-1 runs (default 200)")
    p.add_argument("--warmup", type=int, default=20, help="untimed warm-up runs (default 20)")
    p.add_argument("--seconds", type=float, help="a time budget for the batch-1 runs, instead of --runs")
    p.add_argument("--providers", help="ONNX: execution providers to use, in order (default: TensorRT, CUDA, CPU "
                                       "as installed)")  # fmt: skip
    p.add_argument("--json", dest="json_out", metavar="OUT.json",
                   help="write a report that 'edgedl report host.json OUT.json' merges with the host's")
    return p


def bench_main(argv: Sequence[str]) -> int:
    from pathlib import Path

    from .bench import measure_report
    from .files import write_json

    args = _bench_parser().parse_args(argv)

    def body() -> int:
        if args.threads < 1 or args.runs < 1 or args.warmup < 0 or (args.seconds is not None and args.seconds <= 0):
            raise UserError("--threads and --runs must be at least 1, --warmup at least 0, --seconds positive")
        report = measure_report(args.model, args.eval, args.threads, args.runs, args.warmup, args.seconds,
                                _providers(args.providers))  # fmt: skip
        v = report["variants"][0]
        metric = report["metric"]
        lat = v["latency_ms"]
        against = report["metric_delta_against"]
        delta = f" ({v['metric_delta']:+.2f} vs {against})" if against else ""
        print(f"{v['name']} on {report['machine'].get('board') or report['machine']['cpu']}, "
              f"{args.threads} thread(s), {v['delegate']}")  # fmt: skip
        print(f"  {metric}: {v['metrics'][metric]:.4f}{delta}")
        print(f"  latency p50 {lat['p50'] * 1e3:.1f} µs, p90 {lat['p90'] * 1e3:.1f} µs, p99 {lat['p99'] * 1e3:.1f} µs "
              f"({lat['runs']} runs)")  # fmt: skip
        print(f"  init {v['init_ms']:.1f} ms, first inference {v['first_inference_ms']:.1f} ms, "
              f"peak memory {v['peak_rss_mb']:.1f} MiB, {v['size_bytes']:,} bytes")  # fmt: skip
        if args.json_out:
            print(f"written: {write_json(Path(args.json_out), report)}")
        return 0

    return run_cli(body)


def unpack_main(argv: Sequence[str]) -> int:
    from .bundle import extract

    p = OneLineParser(prog="edgedl-run unpack",
                      description="Unpack a bundle (safely) and check it against its manifest.")  # fmt: skip
    p.add_argument("bundle", help="a .tar.gz written by 'edgedl bundle'")
    p.add_argument("--to", default=".", help="folder to unpack into (default: here)")
    args = p.parse_args(argv)

    def body() -> int:
        root = extract(args.bundle, args.to)
        print(f"unpacked and verified: {root}")
        return 0

    return run_cli(body)


SUBCOMMANDS = {"bench": bench_main, "unpack": unpack_main}


def _providers(arg: Optional[str]) -> Optional[list[str]]:
    return [p.strip() for p in arg.split(",") if p.strip()] if arg else None


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:  # a model is a .tflite/.onnx path, never one of these words
        return SUBCOMMANDS[argv[0]](argv[1:])
    args = _parser().parse_args(argv)

    def body() -> int:
        if args.threads is not None and args.threads < 1:
            raise UserError(f"--threads must be at least 1, got {args.threads}")
        if args.top < 1 or args.batch < 1:
            raise UserError("--top and --batch must be at least 1")
        files = expand_inputs(args.inputs)  # bad paths fail before the interpreter starts
        model = load(args.model, threads=args.threads, providers=_providers(args.providers))
        if model.metadata.task == "denoising":
            return _denoise_all(model, files, args)
        if args.out:
            raise UserError("--out is for denoisers; a classifier's results go to stdout (--json for a document)")
        names, x = load_inputs(files, model.metadata)
        results = classify(model, names, x, args.top, args.batch)
        if args.json:
            doc = {"model": args.model, "task": model.metadata.task, "precision": model.metadata.precision,
                   "results": results}
            print(json.dumps(doc, indent=2))
        else:
            print(_table(results))
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
