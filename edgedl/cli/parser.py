"""``edgedl``: the host-side command line; each subcommand's handler is in ``commands``.

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

from runtime.cli import OneLineParser, add_timing_args, run_cli
from runtime.tasks import TASKS

from ..training.cluster import in_cluster
from .commands import (cmd_bundle, cmd_compress, cmd_deploy, cmd_export, cmd_models, cmd_pipeline, cmd_report,
                       cmd_select, cmd_train, cmd_variants)  # fmt: skip
from .inputs import (add_data_args, add_fresh_arg, add_normalization_args, add_onnx_args, add_strategy_args,
                     add_training_args)
from .runlock import owning_out

HOST_MODULES = ("tensorflow", "tf_keras", "tensorflow_model_optimization", "tf2onnx", "onnx", "rich")


def _missing_host_module() -> Optional[str]:
    for module in HOST_MODULES:
        try:
            if importlib.util.find_spec(module) is None:
                return module
        except (ImportError, ValueError):
            return module
    return None


def _add_output_args(p) -> None:
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--quiet", action="store_true", help="show only the results, failures and the summary")
    shown.add_argument("--verbose", action="store_true",
                       help="show TensorFlow's and the converters' output as it comes (default: in OUT/log.txt)")


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="edgedl", description="Train, compress, export and benchmark edge image models.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)

    p = sub.add_parser("models", help="list the model zoo")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("train", help="train a zoo model")
    p.add_argument("--model", default="cnn", help="registry name (see 'edgedl models')")
    p.add_argument("--out", type=Path, required=True, help="run folder for checkpoints, model.keras, history.json")
    add_training_args(p)
    add_fresh_arg(p)
    add_strategy_args(p)
    _add_output_args(p)
    p.set_defaults(func=in_cluster(owning_out(cmd_train)))

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
    p.add_argument("--resize", default="stretch", choices=("stretch", "crop", "pad"),
                   help="how a picture of another aspect fits the input (recorded in the artifact; default stretch)")
    add_onnx_args(p)
    add_normalization_args(p)
    p.add_argument("--sign", type=Path, metavar="KEY", help="sign with this private key (PEM: ECDSA P-256 or Ed25519; "
                   "an encrypted key's passphrase in $EDGEDL_KEY_PASSWORD); devices check it with 'edgedl-run --trust'")
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
    from benchmarks.select import add_on_arg, add_select_args, add_tail_arg

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
    add_on_arg(p)
    p.add_argument("--wheels", action="store_true", help="also pack every wheel the board installs, for a board "
                                                         "without internet (for the target's usual system)")  # fmt: skip
    p.add_argument("--wheels-for", metavar="MACHINE/PYTHON/GLIBC",
                   help="with --wheels: the board's, e.g. aarch64/3.11/2.36 (Raspberry Pi OS bookworm 64-bit)")
    p.add_argument("--sign", type=Path, metavar="KEY", help="sign with this private key (PEM: ECDSA P-256 or Ed25519; "
                   "an encrypted key's passphrase in $EDGEDL_KEY_PASSWORD); devices check it with 'edgedl-run --trust'")
    p.set_defaults(func=cmd_bundle)

    p = sub.add_parser("deploy", help="measure a run's variants on a board over SSH and add its figures to the report")
    p.add_argument("run", type=Path, metavar="RUN_DIR", help="a run folder of 'edgedl pipeline'")
    p.add_argument("--host", required=True, help="[USER@]HOST, as ssh takes it (your ~/.ssh/config, agent and keys "
                                                 "apply)")  # fmt: skip
    p.add_argument("--port", type=int, help="the board's SSH port (default: ssh's)")
    p.add_argument("--identity", type=Path, metavar="KEY", help="the private key to log in with (default: ssh's)")
    p.add_argument("--ssh-option", action="append", default=[], metavar="OPTION",
                   help="an ssh -o option, e.g. UserKnownHostsFile=FILE (repeat for more)")
    p.add_argument("--target", required=True, help="; ".join(f"{t.name}: {t.description}" for t in TARGETS.values()))
    which = p.add_mutually_exclusive_group()
    which.add_argument("--variants", help="comma-separated variants to measure (default: every one the target runs "
                                          "within the task's budget)")  # fmt: skip
    which.add_argument("--all-within", type=float, metavar="BUDGET",
                       help="every variant the target runs within this metric budget of the original")
    p.add_argument("--name", help="what the report calls the device (default: the host name)")
    p.add_argument("--remote-dir", default="edgedl", help="the board's folder, under its home (default: edgedl)")
    p.add_argument("--python", default="python3", help="the board's Python (default: python3)")
    p.add_argument("--runs", type=int, default=100, help="timed runs per variant on the board (default 100)")
    p.add_argument("--warmup", type=int, default=10, help="untimed warm-up runs per variant (default 10)")
    p.add_argument("--step-timeout", type=float, default=900, help="seconds for one step (a copy, a bench; "
                                                                   "installing gets twice that; default 900)")  # fmt: skip
    p.add_argument("--timeout", type=float, default=3600, help="seconds for the whole deployment (default 3600)")
    p.add_argument("--clean", action="store_true", help="remove the board's folder (bundles, environments) at the end")
    p.add_argument("--offline", action="store_true", help="the board has no package index: bring every wheel it "
                                                          "needs, fetched here for its architecture and Python")  # fmt: skip
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("pipeline", help="train, export every variant, benchmark, write report.json")
    p.add_argument("--model", default="cnn", help="registry name or the path of a saved Keras model")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    add_training_args(p)
    add_fresh_arg(p)
    p.add_argument("--retrain", action="store_true", help="train a saved model further on --data")
    p.add_argument("--eval-labels", type=Path, help="a model file's labels when --eval-data is an .npy of its inputs: "
                                                    "an .npy of class indices or one-hot rows")  # fmt: skip
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
    add_onnx_args(p)
    add_normalization_args(p)
    add_strategy_args(p)
    _add_output_args(p)
    p.set_defaults(func=in_cluster(owning_out(cmd_pipeline)))
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
    return run_cli(lambda: _storage_as_oserror(args.func, args), writing=getattr(args, "out", None))


def _storage_as_oserror(command, args) -> int:
    """``command(args)``, a full disk met inside TensorFlow (its checkpoint writer raises ResourceExhaustedError,
    not OSError) raised as the OSError it is, which ``run_cli`` says in one line."""
    import errno

    try:
        return command(args)
    except Exception as exc:  # noqa: BLE001 - re-raised unless it is a full disk said another way
        if isinstance(exc, OSError) or "No space left on device" not in str(exc):
            raise
        raise OSError(errno.ENOSPC, "No space left on device", getattr(args, "out", None)) from None


if __name__ == "__main__":
    sys.exit(main())
