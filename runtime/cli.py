"""``edgedl-run``: run any ``.tflite`` or ``.onnx`` on the device, describe it, benchmark it, unpack a bundle.

    edgedl-run cnn_int8.tflite digit.png more_digits/ --threads 2
    edgedl-run face_detector.tflite --describe
    edgedl-run detector.onnx photo.jpg --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --json
    edgedl-run bench models/cnn_int8.tflite --json pi.json
    edgedl-run unpack cnn-rpi-arm64.tar.gz --to ~/models

Imports numpy, Pillow and one interpreter; never TensorFlow. Exit codes: 0 done,
2 bad input (one line on stderr), 3 the model produced NaN or infinite values
(the results are still printed, with those values as null and flagged).
"""
from __future__ import annotations

import argparse
import errno
import json
import sys
from typing import Callable, Optional, Sequence

from .errors import UserError

EXIT_NON_FINITE = 3


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem and where to look."""

    def error(self, message: str):  # noqa: D401 - argparse's signature
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# What the machine, not the program, refused: a full disk, a folder this user cannot write, a path gone.
STORAGE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EISDIR, errno.ENOTDIR,
                  errno.ENOENT}


def storage_error(exc: OSError, writing=None) -> str:
    """One line for a refused write or read: the file (or, where the system did not name it, ``writing``: what
    the command was writing), the reason, and for a full disk the space left there."""
    import shutil
    from pathlib import Path

    named = exc.filename2 or exc.filename  # a copy's destination, where it has one
    where = Path(named) if named else Path(writing) if writing else None
    text = f"{where}: {exc.strerror}" if where else str(exc.strerror or exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        folder = next((p for p in ([where, *where.parents] if where else []) if p.is_dir()), None)
        free = f"{shutil.disk_usage(folder).free / 2**20:,.0f} MiB free in {folder}" if folder else "no space"
        return f"{text} ({free}); free some space there, or write elsewhere"
    return f"{text}; give another place, or make this one writable"


def run_cli(main: Callable[[], int], writing=None) -> int:
    """Run a CLI body: a ``UserError``, or the machine refusing a file (a full disk, a folder not writable:
    ``storage_error``; ``writing`` is what the command writes, named where the system does not), becomes one
    line on stderr and exit code 2."""
    for stream in (sys.stdout, sys.stderr):  # any file name prints, whatever the locale
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        return main()
    except UserError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)  # one line, whatever the message held
        return 2
    except OSError as exc:
        if exc.errno not in STORAGE_ERRORS:
            raise
        print(f"error: {storage_error(exc, writing)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        sys.stderr.close()
        return 0


def add_timing_args(p, what: str = "") -> None:
    """``--runs``, ``--warmup`` and ``--seconds``: how every measurement is timed (``edgedl-run bench``, the
    host's measurers, ``edgedl pipeline``); ``what`` says per what (" per variant")."""
    p.add_argument("--runs", type=int, default=200, help=f"timed batch-1 runs{what} (default 200)")
    p.add_argument("--warmup", type=int, default=20, help=f"untimed warm-up runs{what} (default 20)")
    p.add_argument("--seconds", type=float, help=f"a time budget{what} for the batch-1 runs, instead of --runs")


def check_timing(runs: int, warmup: int, seconds: Optional[float]) -> None:
    """The one check of the timing options, wherever they come from."""
    if runs < 1 or warmup < 0 or (seconds is not None and not 0 < seconds <= 3600):
        raise UserError(f"--runs must be at least 1 (got {runs}), --warmup at least 0 (got {warmup}), "
                        f"--seconds in (0, 3600] (got {seconds})")  # fmt: skip


def parse_floats(text: Optional[str], flag: str) -> Optional[tuple]:
    """``"0.485,0.456,0.406"`` as a tuple of 1 to 4 numbers (per channel, or one for all); None stays None."""
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"{flag} {text!r}: give numbers separated by commas, e.g. 0.485,0.456,0.406") from None
    if not 1 <= len(values) <= 4:
        raise UserError(f"{flag}: give one value, or one per channel")
    return values


def _size(text: Optional[str]) -> Optional[tuple]:
    if text is None:
        return None
    parts = text.lower().replace("×", "x").split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise UserError(f"--size {text!r}: give HEIGHTxWIDTH, e.g. 224x224")
    return int(parts[0]), int(parts[1])


def add_model_args(p: argparse.ArgumentParser) -> None:
    """How to load a model and prepare its inputs: shared by running and benchmarking."""
    p.add_argument("--threads", type=int, default=None, help="interpreter threads (default: the interpreter's)")
    p.add_argument("--providers", help="ONNX: execution providers to use, in order (default: TensorRT, CUDA, CPU "
                                       "as installed)")  # fmt: skip
    p.add_argument("--trust", metavar="PUBKEY", help="refuse a model not signed by this public key (PEM) or one of "
                   "this folder's; a model in a bundle by its signed manifest (default: $EDGEDL_TRUSTED_KEYS, if set)")
    g = p.add_argument_group("preprocessing (default: what the model records, or what is stated by --describe)")
    g.add_argument("--mean", help="per-channel mean of pixel/255, e.g. 0.485,0.456,0.406 (with --std)")
    g.add_argument("--std", help="per-channel std of pixel/255, e.g. 0.229,0.224,0.225 (with --mean)")
    g.add_argument("--scale", help="input = pixel × SCALE + OFFSET (instead of --mean/--std)")
    g.add_argument("--offset", help="see --scale (default 0)")
    g.add_argument("--layout", choices=("NHWC", "NCHW"), help="where the channels are (default: inferred)")
    g.add_argument("--size", help="resize pictures to HEIGHTxWIDTH (needed when the model's size is free)")
    g.add_argument("--channels", type=int, help="1 (grey) or 3 (RGB) (default: the model's)")
    g.add_argument("--background", default="black", help="what shows through transparent pixels: black or white")
    g.add_argument("--labels", help="a text file with one class name per line")


def load_model(args):
    """The model of ``args``, with the user's preprocessing choices in place of the file's."""
    from .images import ImageOptions
    from .metadata import Normalization
    from .model import load
    from .signing import trusted_keys

    norm = None
    mean, std = parse_floats(args.mean, "--mean"), parse_floats(args.std, "--std")
    scale, offset = parse_floats(args.scale, "--scale"), parse_floats(args.offset, "--offset")
    if (mean is None) != (std is None):
        raise UserError("--mean and --std go together")
    if mean is not None and (scale is not None or offset is not None):
        raise UserError("give --mean/--std or --scale/--offset, not both")
    if mean is not None:
        norm = Normalization.from_mean_std(mean, std)
    elif scale is not None or offset is not None:
        norm = Normalization(scale or (1.0 / 255.0,), offset or (0.0,))
    labels = None
    if args.labels:
        from .files import read_limited

        text = read_limited(args.labels, 16 << 20, "labels file").decode("utf-8", "replace")
        labels = tuple(line.strip() for line in text.splitlines() if line.strip())
        if not labels:
            raise UserError(f"{args.labels}: holds no labels (one class name per line)")
    options = ImageOptions(size=_size(args.size), channels=args.channels, background=args.background)
    model = load(args.model, threads=args.threads, providers=_providers(args.providers), normalization=norm,
                 layout=args.layout, labels=labels, trust=trusted_keys(args.trust))  # fmt: skip
    return model, options


def describe(model, options) -> str:
    """What the model takes and returns, and what will be done to a picture."""
    meta = model.metadata
    lines = [f"{model.path.name}: {meta.format}, {meta.precision}, task {meta.task} (metadata: {meta.origin})"]
    lines.append("inputs:")
    for s in meta.inputs:
        q = f", quantized scale {s.quantization.scale:.6g} zero point {s.quantization.zero_point}" \
            if s.quantization else ""  # fmt: skip
        lines.append(f"  {s.name}: {s.dtype} {s.shown()}{q}")
        if s is meta.image_input:
            h, w, c = meta.image_shape
            size = f"resized to {options.size[0]}×{options.size[1]}" if options.size else \
                (f"resized to {h}×{w}" if h and w else "kept at its own size (the model's is free)")  # fmt: skip
            lines.append(f"    a picture is: {('grey' if (options.channels or c) == 1 else 'RGB')}, {size}, "
                         f"{meta.normalization.shown()}, laid out {meta.layout}")  # fmt: skip
    lines.append("outputs:")
    for s in meta.outputs:
        lines.append(f"  {s.name}: {s.dtype} {s.shown()}")
    if meta.labels:
        lines.append(f"labels: {len(meta.labels)} ({', '.join(meta.labels[:5])}{', ...' if len(meta.labels) > 5 else ''})")
    lines += [f"note: {n}" for n in meta.notes]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="edgedl-run", description="Run a .tflite or .onnx model (edgedl's or any other tool's) "
                      "on images or arrays. Also: 'edgedl-run bench MODEL' and 'edgedl-run unpack BUNDLE' "
                      "(each with --help).")  # fmt: skip
    p.add_argument("model", help="a .tflite or .onnx file")
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="PNG/JPEG/.npy files or folders of them; .npz (one array per input name) for several inputs")
    p.add_argument("--describe", action="store_true", help="print what the model takes and returns, and stop")
    p.add_argument("--top", type=int, default=1, help="how many classes to list per input (default 1)")
    p.add_argument("--batch", type=int, default=64, help="inputs per interpreter call (default 64)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    p.add_argument("--save-outputs", metavar="DIR", help="write every output of every input as .npy files")
    p.add_argument("--out", help="denoisers: folder for the denoised images (same names) and summary.json; "
                                 "segmenters: for the masks (palette PNGs the size of each input)")  # fmt: skip
    p.add_argument("--tile", type=int, default=512, help="denoisers: tile size for large images (default 512)")
    add_model_args(p)
    return p


def _bench_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="edgedl-run bench",
                      description="Measure a model as the host harness does: latency, init, memory and, with "
                                  "evaluation data, the metric. Without data: synthetic inputs of the model's shape.")
    p.add_argument("model", help="a .tflite or .onnx file (inside a bundle, its evaluation data is the default)")
    p.add_argument("--eval", help="evaluation data: the eval.npz of a run or bundle, or a .npy of model inputs")
    p.add_argument("--shape", action="append", default=[], metavar="NAME=1x3x224x224",
                   help="the shape of an input with free dimensions (repeat per input; default batch 1)")
    add_timing_args(p)
    p.add_argument("--json", dest="json_out", metavar="OUT.json",
                   help="write a report that 'edgedl report host.json OUT.json' merges with the host's")
    add_model_args(p)
    p.set_defaults(threads=1)
    return p


def bench_main(argv: Sequence[str]) -> int:
    from pathlib import Path

    from .bench import measure_report, parse_shapes
    from .files import check_writable, write_json

    args = _bench_parser().parse_args(argv)

    def body() -> int:
        check_timing(args.runs, args.warmup, args.seconds)
        if args.json_out:
            check_writable(args.json_out, "JSON report")
        model, _ = load_model(args)  # checks the model and the preprocessing options before measuring
        report = measure_report(args.model, args.eval, args.threads, args.runs, args.warmup, args.seconds,
                                _providers(args.providers), parse_shapes(args.shape),
                                loader=lambda: load_model(args)[0],
                                say=lambda line: print(f"edgedl-run: {line}", file=sys.stderr, flush=True))  # fmt: skip
        v = report["variants"][0]
        lat = v["latency_ms"]
        print(f"{v['name']} on {report['machine'].get('board') or report['machine']['cpu']}, "
              f"{args.threads} thread(s), {v['delegate']}")  # fmt: skip
        metric = report["metric"]
        if metric and metric in v["metrics"]:
            against = report["metric_delta_against"]
            delta = f" ({v['metric_delta']:+.2f} vs {against})" if against else ""
            print(f"  {metric}: {v['metrics'][metric]:.4f}{delta} on {report['eval']}")
        else:
            print(f"  {v.get('inputs_note', 'no accuracy measured')}")
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
    p.add_argument("--trust", metavar="PUBKEY", help="refuse a bundle whose manifest is not signed by this public key "
                                                     "(PEM) or one of this folder's (default: $EDGEDL_TRUSTED_KEYS)")
    args = p.parse_args(argv)

    def body() -> int:
        from .signing import trusted_keys

        keys = trusted_keys(args.trust)
        root = extract(args.bundle, args.to, keys)
        print(f"unpacked and verified: {root}" + (", signed by a trusted key" if keys else ""))
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
        from pathlib import Path

        from . import outputs
        from .answers import file_answer
        from .feeds import run_sequence, state_pairs
        from .images import expand_inputs, load_inputs

        if args.top < 1 or args.batch < 1 or not 64 <= args.tile <= 16384:
            raise UserError("--top and --batch must be at least 1, --tile from 64 to 16384")
        if not args.inputs and not args.describe:
            raise UserError("give one or more inputs (images, .npy, .npz or folders), or --describe")
        files = expand_inputs(args.inputs)  # bad paths fail before the interpreter starts
        model, options = load_model(args)
        if args.describe:
            print(describe(model, options))
            if not files:
                return 0
        answer = file_answer(model.metadata.task)
        if answer is not None:  # a task that answers with files of its own (a denoiser's images)
            return answer.run(model, files, args)
        if args.out:
            raise UserError("--out is for denoisers and segmenters; other models' results go to stdout (--json "
                            "for a document, --save-outputs DIR for the arrays)")  # fmt: skip
        names, x = load_inputs(files, model.metadata, options)
        if state_pairs(model.metadata):  # a recurrent model: the inputs are a sequence, the state carried
            outs = run_sequence(model, x)
        else:
            outs = outputs.per_input(model, x, args.batch)
        docs = outputs.results(model.metadata, names, outs, args.top)
        if args.save_outputs:
            outputs.save_outputs(Path(args.save_outputs), names, outs)
        if args.json:
            meta = model.metadata
            print(json.dumps({"model": args.model, "task": meta.task, "precision": meta.precision,
                              "results": docs}, indent=2, allow_nan=False))  # fmt: skip
        else:
            print(outputs.table(docs))
        flagged = sum(d.get("non_finite", 0) for d in docs)
        if flagged:
            print(f"error: the model produced {flagged} NaN or infinite values (shown as null); the model or its "
                  "input is broken", file=sys.stderr)  # fmt: skip
            return EXIT_NON_FINITE
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
