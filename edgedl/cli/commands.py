"""``edgedl``: the host-side command line. Each subcommand is a thin call into the library.

    edgedl models
    edgedl train --model cnn --out runs/cnn
    edgedl export runs/cnn/model.keras --format tflite --precision int8 --out cnn_int8.tflite
    edgedl pipeline --model cnn --out runs/cnn
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from runtime.cli import OneLineParser, add_timing_args, run_cli
from runtime.errors import UserError
from runtime.tasks import TASKS, get_task

from ..training.cluster import in_cluster, launched, on_cluster
from .inputs import (
    add_data_args,
    add_normalization_args,
    add_strategy_args,
    add_train_args,
    compress_configs,
    log_name,
    prepare,
    prepare_model,
    setup_distribution,
    train_config,
)

HOST_MODULES = ("tensorflow", "tf_keras", "tensorflow_model_optimization", "tf2onnx", "onnx", "rich")


def _missing_host_module() -> Optional[str]:
    for module in HOST_MODULES:
        try:
            if importlib.util.find_spec(module) is None:
                return module
        except (ImportError, ValueError):
            return module
    return None


def _print_columns(rows: list) -> None:
    """Rows of text as aligned columns (each as wide as its widest cell), a header first."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[-1]]))


def cmd_models(args) -> int:
    from ..models import list_models, model_entry

    rows = [("model", "task", "input", "description")]
    for name in list_models():
        e = model_entry(name)
        rows.append((name, e.task, "×".join("any" if d is None else str(d) for d in e.input_shape), e.description))
    _print_columns(rows)
    return 0


def cmd_train(args) -> int:
    from ..terminal import Terminal

    if (code := launched(args)) is not None:
        return code
    terminal = Terminal(quiet=args.quiet, verbose=args.verbose)
    # TensorFlow is imported inside: its start-up lines and Keras's bars go to OUT/log.txt, a line per epoch here.
    with terminal.capture(args.out, f"edgedl train --model {args.model} --out {args.out}", log_name()):
        from ..models import build_for_task, model_entry
        from ..training.train import train

        dist = setup_distribution(args)
        entry = model_entry(args.model)
        config = train_config(args, args.model)
        data = prepare(args, entry.task, entry.input_shape, config.batch_size, config.seed)
        where = dist.describe(config.batch_size)
        terminal.say(f"train: {args.model}, {config.epochs} epochs on {data.train_source}, {where}")
        model = train(lambda: build_for_task(entry, data.labels), entry.task, data.fit, data.validation, config,
                      args.out, on_epoch=terminal.epochs(config.epochs, "train"))  # fmt: skip
        terminal.steps.finish()
        if dist.is_chief:
            terminal.out.print(f"saved {Path(args.out) / 'model.keras'} ({model.count_params():,} parameters)",
                               soft_wrap=True)  # fmt: skip
    return 0


def _add_output_args(p) -> None:
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--quiet", action="store_true", help="show only the results, failures and the summary")
    shown.add_argument("--verbose", action="store_true",
                       help="show TensorFlow's and the converters' output as it comes (default: in OUT/log.txt)")


def cmd_export(args) -> int:
    from exporters import ModelInfo, export
    from exporters.tfkeras import weights_sha256
    from runtime.cli import parse_floats

    from .. import tasks
    from ..data.preprocessing import model_normalization
    from ..training.model_io import load_keras_model

    model = load_keras_model(args.model)
    task = args.task or tasks.task_of(model)
    norm, _ = model_normalization(model, parse_floats(args.mean, "--mean"), parse_floats(args.std, "--std"))
    data = prepare_model(args, model, task, norm)
    labels = tuple(args.labels.split(",")) if args.labels else data.labels
    info = ModelInfo(task=task, labels=labels if get_task(task).class_scores else None,
                     normalization=norm, source_sha256=weights_sha256(model))  # fmt: skip
    art = export(model, args.out, args.format, info, precision=args.precision, calibration=data.calibration,
                 check_inputs=data.check)  # fmt: skip
    print(f"wrote {art.path} ({art.format}, {art.precision}, {art.size_bytes:,} bytes, sha256 {art.sha256[:12]}…)")
    return 0


def cmd_compress(args) -> int:
    """Compress a saved model, export it, and write what the compression did and what it cost."""
    import numpy as np

    from exporters import ModelInfo, export
    from exporters.tfkeras import weights_sha256
    from runtime.runfolder import write_compression

    from .. import tasks
    from ..compress import compress, model_stats
    from ..data.preprocessing import model_normalization
    from ..training.model_io import load_keras_model, save_model

    configs = compress_configs(args)
    if (code := launched(args)) is not None:
        return code
    dist = setup_distribution(args)  # before the model loads: a multi-worker strategy must come first
    model = load_keras_model(args.model)
    task = tasks.task_of(model)
    data = prepare_model(args, model, task, model_normalization(model)[0])
    out = Path(args.out)
    result = compress(model, configs, data.fit, task, workdir=out / "backup")
    if not dist.is_chief:  # the chief alone writes what the cluster made
        return 0
    precision = args.precision or ("int8" if result.quantized else "float32")
    info = ModelInfo(task=task, labels=data.labels, techniques=result.techniques, source_sha256=weights_sha256(model))
    name = "_".join(result.techniques)
    art = export(result.model, out / f"{name}_{precision}.tflite", "tflite", info, precision=precision,
                 calibration=data.calibration, check_inputs=data.check)  # fmt: skip
    # A QAT model too, so that 'edgedl export' takes it again (as .h5: tfmot's wrappers need HDF5).
    save_model(result.model, out / ("model.h5" if result.quantized else "model.keras"))

    def keras_accuracy(m) -> Optional[float]:
        if not get_task(task).class_scores:
            return None
        x, y = data.validation.x, data.validation.y
        return float(np.mean(m.predict(x, verbose=0).argmax(-1) == y))

    summary = write_compression(out / "compression.json", {**result.stats, "accuracy": keras_accuracy(result.model)},
                                result.techniques, [repr(c) for c in configs],
                                before={**model_stats(model), "accuracy": keras_accuracy(model)},
                                source=str(args.model), artifact=art.path.name)  # fmt: skip
    print(json.dumps(summary, indent=2))
    return 0


def cmd_variants(args) -> int:
    from ..pipeline.recipes import all_variants

    rows = [("variant", "format", "precision", "techniques")]
    rows += [(s.name, s.format, s.precision, ",".join(s.techniques) or "-") for s in all_variants(args.task)]
    _print_columns(rows)
    return 0


def cmd_pipeline(args) -> int:
    from benchmarks import BenchConfig
    from benchmarks.select import CRITERIA, check_max_drop
    from runtime.cli import parse_floats

    from ..terminal import Terminal

    if args.max_drop is not None:  # checked before hours of work, not after
        check_max_drop(args.max_drop)
    if args.target is not None:
        from ..deploy.targets import get_target

        get_target(args.target)  # an unknown name stops here, listing the known ones
    if args.max_drop is not None and not args.no_search and on_cluster(args):
        raise UserError("the search for thinner variants goes by latency the chief alone measures: give --no-search "
                        "with --max-drop on a cluster")  # fmt: skip
    if not 0 < args.search_seconds <= 86400:
        raise UserError(f"--search-seconds must be in (0, 86400], got {args.search_seconds}")
    if args.by not in CRITERIA:
        raise UserError(f"--by {args.by!r}: choose latency or size")
    bench = BenchConfig(threads=args.threads, runs=args.runs, warmup=args.warmup, seconds=args.seconds)
    mean, std = parse_floats(args.mean, "--mean"), parse_floats(args.std, "--std")
    terminal = Terminal(quiet=args.quiet, verbose=args.verbose)
    # TensorFlow is imported inside: its start-up lines go to the run's log.txt with the rest of its output.
    if (code := launched(args)) is not None:
        return code
    with terminal.capture(args.out, f"edgedl pipeline --model {args.model} --out {args.out}", log_name()):
        from ..data.denoising import Noise
        from ..pipeline import PipelineConfig, run_pipeline

        setup_distribution(args)

        config = PipelineConfig(
            model=args.model,
            out=args.out,
            train=train_config(args, args.model),
            bench=bench,
            noise=Noise.parse(args.sigma, args.eval_sigma),
            data=args.data,
            eval_data=args.eval_data,
            variants=tuple(args.variants.split(",")) if args.variants else (),
            retrain=args.retrain,
            search_drop=None if args.no_search else args.max_drop,
            search_seconds=args.search_seconds,
            budget=None if args.max_drop is None else {"max_drop": args.max_drop, "by": args.by},
            mean=mean,
            std=std,
        )
        report = run_pipeline(config, terminal)
        if report is None:  # another worker than the chief: its share is done
            return 0
        if args.max_drop is not None:
            from benchmarks.select import copy_selected, select

            if args.target is not None:  # among what the target's interpreter runs (operators, versions, format)
                from ..deploy.bundle import runnable
                from ..deploy.targets import get_target

                report = {**report, "variants": runnable(report, Path(args.out), get_target(args.target))}
            selection = select(report, args.max_drop, args.by)
            if selection.variant is None:
                raise UserError(selection.explanation)
            target = copy_selected(Path(args.out), selection.variant, selection.explanation)
            terminal.out.print(f"selected {selection.explanation}\ncopied to {target}", soft_wrap=True)
    return 0


def cmd_report(args) -> int:
    from benchmarks.render import render

    for kind, path in render(args.reports, args.out).items():
        print(f"{kind:>13}: {path}")
    return 0


def cmd_select(args) -> int:
    from benchmarks.select import run_select

    return run_select(args.report, args.max_drop, args.by, args.max_tail_drop)


def cmd_bundle(args) -> int:
    from ..deploy.bundle import bundle

    variants = [v for item in args.variant for v in item.split(",") if v]
    result = bundle(args.source, args.target, args.out, variants, args.max_drop, args.by, args.max_tail_drop)
    print(f"bundled {', '.join(result.variants)} for {result.target} ({result.why})")
    print(f"{result.path}: {result.files} files, {result.bytes:,} bytes")
    return 0


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="edgedl", description="Train, compress, export and benchmark edge image models.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)

    p = sub.add_parser("models", help="list the model zoo")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("train", help="train a zoo model")
    p.add_argument("--model", default="cnn", help="registry name (see 'edgedl models')")
    p.add_argument("--out", type=Path, required=True, help="run folder for checkpoints, model.keras, history.json")
    add_data_args(p)
    add_train_args(p)
    add_strategy_args(p)
    _add_output_args(p)
    p.set_defaults(func=in_cluster(cmd_train))

    p = sub.add_parser("export", help="export a saved Keras model to one artifact")
    p.add_argument("model", help="a saved Keras model (.keras, .h5 or SavedModel folder)")
    p.add_argument("--format", required=True, help="tflite or onnx")
    p.add_argument("--precision", default="float32", help="float32, float16, dynamic or int8 (default float32)")
    p.add_argument("--out", type=Path, required=True, help="the artifact to write (.tflite or .onnx)")
    p.add_argument("--data", type=Path, help="calibration data (default: the embedded MNIST split)")
    p.add_argument("--task", choices=tuple(TASKS),
                   help="default: inferred from the inputs and outputs (generic: several, or boxes, masks)")
    p.add_argument("--labels", help="comma-separated class names (default: from the data)")
    p.add_argument("--sigma", default="25", help="denoisers: noise σ of the calibration inputs (default 25)")
    add_normalization_args(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("compress", help="prune, cluster, quantization-aware train or distill a saved model")
    p.add_argument("model", help="a saved tf-keras model (.keras, .h5 or SavedModel folder)")
    from ..compress import TECHNIQUES

    offered = [f"{t.name} ({t.about})" for t in TECHNIQUES.values() if t.from_options is not None]
    p.add_argument("--technique", required=True, help=f"{'; '.join(offered)}; or a chain such as prune,qat")
    p.add_argument("--out", type=Path, required=True, help="folder for the artifact, model.keras, compression.json")
    p.add_argument("--sparsity", type=float, default=0.8, help="pruning target sparsity in [0, 1) (default 0.8)")
    p.add_argument("--ratio", type=float, default=0.5,
                   help="filter_prune: share of each layer's filters removed, in [0, 1) (default 0.5)")
    p.add_argument("--clusters", type=int, default=16, help="clusters per kernel (default 16)")
    p.add_argument("--student", default="width:0.5",
                   help="distillation student: width:F (the model F times as wide; default width:0.5), a saved "
                        "model, or a registry name (cnn_student)")
    p.add_argument("--temperature", type=float, default=4.0, help="distillation temperature (default 4)")
    p.add_argument("--alpha", type=float, default=0.5,
                   help="weight of the labels (a denoiser's clean image) against the teacher (default 0.5)")
    p.add_argument("--epochs", type=int, help="fine-tuning epochs per technique (default: each technique's own)")
    p.add_argument("--precision", help="precision of the .tflite (default int8 after qat, float32 otherwise)")
    p.add_argument("--sigma", default="25", help="denoisers: noise σ for fine-tuning (default 25)")
    add_data_args(p)
    add_strategy_args(p, training=False)
    p.set_defaults(func=in_cluster(cmd_compress))

    p = sub.add_parser("variants", help="list the variants the pipeline can build")
    p.add_argument("--task", default="classification", choices=tuple(TASKS))
    p.set_defaults(func=cmd_variants)

    p = sub.add_parser("report", help="report.md, report.csv and report.html (with plots) from one or more runs")
    p.add_argument("reports", type=Path, nargs="+", metavar="RUN.json", help="report.json files to merge")
    p.add_argument("--out", type=Path, required=True, help="folder for the report files")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("select", help="pick the fastest (or smallest) variant within an accuracy budget")
    from benchmarks.select import add_select_args, add_tail_arg

    add_select_args(p)
    p.set_defaults(func=cmd_select)

    from ..deploy.targets import TARGETS

    p = sub.add_parser("bundle", help="pack artifacts, the device runtime and eval data for a Raspberry Pi or Jetson")
    p.add_argument("source", type=Path, metavar="RUN_DIR_OR_ARTIFACT",
                   help="a run folder of 'edgedl pipeline', or one .tflite/.onnx artifact")  # fmt: skip
    p.add_argument("--target", required=True, help="; ".join(f"{t.name}: {t.description}" for t in TARGETS.values()))
    p.add_argument("--out", type=Path, required=True, help="the bundle to write (.tar.gz)")
    p.add_argument("--variant", action="append", default=[],
                   help="variant(s) of the run to bundle (repeat or comma-separate; default: the one 'select' "
                        "picks among those the target runs)")  # fmt: skip
    p.add_argument("--max-drop", type=float, help="for the default choice: metric budget (default: the task's)")
    p.add_argument("--by", default="latency", help="for the default choice: latency (default) or size")
    add_tail_arg(p)
    p.set_defaults(func=cmd_bundle)

    p = sub.add_parser("pipeline", help="train, export every variant, benchmark, write report.json")
    p.add_argument("--model", default="cnn", help="registry name or the path of a saved Keras model")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    add_data_args(p)
    add_train_args(p)
    p.add_argument("--retrain", action="store_true", help="train a saved model further on --data")
    p.add_argument("--eval-sigma", type=float, help="denoisers: σ of the evaluation noise (default: --sigma, or 25)")
    p.add_argument("--variants", help="comma-separated variants or recipes, e.g. tflite_int8,prune,qat; 'post' for "
                                      "all post-training ones (default: all; see 'edgedl variants')")  # fmt: skip
    p.add_argument("--threads", type=int, default=1, help="interpreter threads when benchmarking (default 1)")
    add_timing_args(p, " per variant")
    p.add_argument("--max-drop", type=float, help="then select the best variant within this metric budget")
    p.add_argument("--by", default="latency", help="with --max-drop: latency (default) or size")
    p.add_argument("--search-seconds", type=float, default=900,
                   help="with --max-drop: time budget of the search for thinner filter-pruned variants (default 900)")
    p.add_argument("--no-search", action="store_true", help="with --max-drop: select among the variants, no search")
    p.add_argument("--target", help="with --max-drop: select among the variants this device runs (see 'edgedl bundle')")
    add_normalization_args(p)
    add_strategy_args(p)
    _add_output_args(p)
    p.set_defaults(func=in_cluster(cmd_pipeline))
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    missing = _missing_host_module()
    if missing is not None:
        print(f"edgedl: the host side is not installed ({missing} is missing): pip install 'edgedl[train]'",
              file=sys.stderr)  # fmt: skip
        return 2
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # what --workers runs in each worker
    # TensorFlow's C++ INFO/WARNING lines drown the progress display; a user's own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return run_cli(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
