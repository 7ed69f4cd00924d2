"""``edgedl``: the host-side command line. Each subcommand is a thin call into the library.

    edgedl models
    edgedl train --model cnn --out runs/cnn
    edgedl export runs/cnn/model.keras --format tflite --precision int8 --out cnn_int8.tflite
    edgedl pipeline --model cnn --out runs/cnn
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from runtime.cli import OneLineParser, run_cli

HOST_MODULES = ("tensorflow", "tf_keras", "tensorflow_model_optimization", "tf2onnx", "onnx", "rich")


def _missing_host_module() -> Optional[str]:
    for module in HOST_MODULES:
        try:
            if importlib.util.find_spec(module) is None:
                return module
        except (ImportError, ValueError):
            return module
    return None


def _add_data_args(p) -> None:
    p.add_argument("--data", type=Path, help="training data: MNIST IDX file/folder, .npz, or a folder per class "
                                             "(default: the embedded MNIST split)")  # fmt: skip
    p.add_argument("--eval-data", type=Path, help="evaluation data, same forms (default: see --data)")


def _add_train_args(p) -> None:
    p.add_argument("--epochs", type=int, help="training epochs (default 8)")
    p.add_argument("--batch-size", type=int, help="batch size per device (default 64)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")


def _train_config(args):
    from .train import TrainConfig

    given = {k: getattr(args, k) for k in ("epochs", "batch_size", "seed") if getattr(args, k) is not None}
    return TrainConfig(**given)


def cmd_models(args) -> int:
    from .models import list_models, model_entry

    for name in list_models():
        e = model_entry(name)
        print(f"{name:<12} {e.task:<15} {'×'.join(map(str, e.input_shape)):<10} {e.description}")
    return 0


def cmd_train(args) -> int:
    from . import datasets
    from .models import model_entry
    from .train import train

    entry = model_entry(args.model)
    config = _train_config(args)
    train_data, eval_data = datasets.train_eval(args.data, args.eval_data, entry.input_shape, config.seed)
    model = train(lambda: entry.build(num_classes=len(train_data.labels)), entry.task, train_data, eval_data,
                  config, args.out)  # fmt: skip
    print(f"saved {Path(args.out) / 'model.keras'} ({model.count_params():,} parameters)")
    return 0


def cmd_export(args) -> int:
    from exporters import ModelInfo, export
    from runtime.metadata import Normalization

    from . import datasets
    from ._tf import weights_sha256
    from .pipeline import CALIBRATION_SAMPLES, _task_of
    from .train import load_keras_model

    model = load_keras_model(args.model)
    task = args.task or _task_of(model)
    train_data, _ = datasets.train_eval(args.data, None, tuple(model.inputs[0].shape[1:]))
    labels = tuple(args.labels.split(",")) if args.labels else train_data.labels
    info = ModelInfo(task=task, labels=labels if task == "classification" else None,
                     normalization=Normalization(), source_sha256=weights_sha256(model))  # fmt: skip
    art = export(model, args.out, args.format, info, precision=args.precision,
                 calibration=train_data.x[:CALIBRATION_SAMPLES], check_inputs=train_data.x[-64:])  # fmt: skip
    print(f"wrote {art.path} ({art.format}, {art.precision}, {art.size_bytes:,} bytes, sha256 {art.sha256[:12]}…)")
    return 0


def cmd_pipeline(args) -> int:
    from benchmarks import BenchConfig

    from .pipeline import ALL_VARIANTS, PipelineConfig, run_pipeline

    config = PipelineConfig(
        model=args.model,
        out=args.out,
        train=_train_config(args),
        bench=BenchConfig(threads=args.threads, runs=args.runs, warmup=args.warmup),
        data=args.data,
        eval_data=args.eval_data,
        variants=tuple(args.variants.split(",")) if args.variants else ALL_VARIANTS,
        retrain=args.retrain,
    )
    run_pipeline(config)
    return 0


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="edgedl", description="Train, compress, export and benchmark edge image models.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)

    p = sub.add_parser("models", help="list the model zoo")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("train", help="train a zoo model")
    p.add_argument("--model", default="cnn", help="registry name (see 'edgedl models')")
    p.add_argument("--out", type=Path, required=True, help="run folder for checkpoints, model.keras, history.json")
    _add_data_args(p)
    _add_train_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="export a saved Keras model to one artifact")
    p.add_argument("model", help="a saved Keras model (.keras, .h5 or SavedModel folder)")
    p.add_argument("--format", required=True, help="tflite or onnx")
    p.add_argument("--precision", default="float32", help="float32, float16, dynamic or int8 (default float32)")
    p.add_argument("--out", type=Path, required=True, help="the artifact to write (.tflite or .onnx)")
    p.add_argument("--data", type=Path, help="calibration data (default: the embedded MNIST split)")
    p.add_argument("--task", choices=("classification", "denoising"), help="default: inferred from the output")
    p.add_argument("--labels", help="comma-separated class names (default: from the data)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("pipeline", help="train, export every variant, benchmark, write report.json")
    p.add_argument("--model", default="cnn", help="registry name or the path of a saved Keras model")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    _add_data_args(p)
    _add_train_args(p)
    p.add_argument("--retrain", action="store_true", help="train a saved model further on --data")
    p.add_argument("--variants", help="comma-separated subset of the variants (default: all)")
    p.add_argument("--threads", type=int, default=1, help="interpreter threads when benchmarking (default 1)")
    p.add_argument("--runs", type=int, default=200, help="timed batch-1 runs per variant (default 200)")
    p.add_argument("--warmup", type=int, default=20, help="untimed warm-up runs per variant (default 20)")
    p.set_defaults(func=cmd_pipeline)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    missing = _missing_host_module()
    if missing is not None:
        print(f"edgedl: the host side is not installed ({missing} is missing): pip install 'edgedl[train]'",
              file=sys.stderr)  # fmt: skip
        return 2
    args = build_parser().parse_args(argv)
    # TensorFlow's C++ INFO/WARNING lines drown the progress display; a user's own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return run_cli(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
