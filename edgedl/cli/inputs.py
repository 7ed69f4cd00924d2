"""What the ``edgedl`` commands read: the argument groups they share, the training configuration and the data
they prepare for a zoo model or a saved one."""
from __future__ import annotations

import sys
from pathlib import Path


def add_data_args(p) -> None:
    p.add_argument("--data", type=Path, help="training data: MNIST IDX file/folder, .npz, or a folder per class "
                                             "(default: the embedded MNIST split)")  # fmt: skip
    p.add_argument("--eval-data", type=Path, help="evaluation data, same forms (default: see --data)")
    p.add_argument("--resize", default="stretch", choices=("stretch", "crop", "pad"),
                   help="how a picture of another aspect fits the input: stretch (default), crop its centre, or pad "
                        "it with black; recorded in every artifact, so that the device does the same")  # fmt: skip
    p.add_argument("--train-size", type=int, help="train on at most this many examples (pictures, canvases, "
                                                  "sequences): a quick trial run on large data")  # fmt: skip
    p.add_argument("--no-augment", action="store_true",
                   help="train on pictures from files as they are (default: flipped, shifted, brightened a little)")


def add_fresh_arg(p) -> None:
    p.add_argument("--fresh", action="store_true",
                   help="start afresh: remove what OUT holds of earlier runs (trained model, backups, artifacts, "
                        "measurements) instead of reusing what was made with the same settings")  # fmt: skip


def add_onnx_args(p) -> None:
    from exporters import ACTIVATIONS, CALIBRATIONS

    p.add_argument("--onnx-activations", default="auto", choices=ACTIVATIONS,
                   help="an int8 .onnx's activations: auto (default: uint8 on x86-64, whose onnxruntime kernels are "
                        "fastest so; int8 on ARM and for TensorRT), uint8 or int8; recorded in the artifact")  # fmt: skip
    p.add_argument("--onnx-calibration", default="minmax", choices=tuple(CALIBRATIONS),
                   help="how an int8 .onnx's activation ranges are calibrated: minmax (default: every value), "
                        "percentile (the top 0.001 %% clipped: outliers) or entropy (KL divergence); recorded in "
                        "the artifact")  # fmt: skip


def add_normalization_args(p) -> None:
    p.add_argument("--mean", help="the model takes (pixel/255 - MEAN) / STD: per channel (0.485,0.456,0.406) or one; "
                                  "recorded in every artifact (default: pixel/255, or raw pixels for a model whose "
                                  "first layer is Rescaling/Normalization)")  # fmt: skip
    p.add_argument("--std", help="see --mean")


def add_model_args(p) -> None:
    """A zoo model's architecture choices and starting weights (``ModelEntry.options``)."""
    p.add_argument("--width", type=float, help="width multiplier of the zoo model (mobilenet_v2: 0.35 to 1.4)")
    p.add_argument("--input-size", type=int, help="its input's height and width in pixels (mobilenet_v2: 96 to 224)")
    p.add_argument("--weights", type=Path, help="start from this checkpoint of the same architecture (an HDF5 weights "
                                                 "file by layer name, or a saved model); a head of another shape "
                                                 "is trained afresh")  # fmt: skip


def model_options(args) -> tuple:
    """The zoo model's options the user gave, as sorted (name, value) pairs."""
    given = {"width": getattr(args, "width", None), "input_size": getattr(args, "input_size", None)}
    return tuple(sorted((k, v) for k, v in given.items() if v is not None))


def add_train_args(p) -> None:
    p.add_argument("--epochs", type=int, help="training epochs (default: the model's, 8 for cnn)")
    p.add_argument("--batch-size", type=int, help="batch size per device (default: the model's, 64 for cnn)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--sigma", default="25", help="denoisers: noise σ on the 0-255 scale, or 'blind' (default 25)")


def add_training_args(p) -> None:
    """What a command that trains a zoo model reads: its data, its training, its architecture."""
    add_data_args(p)
    add_train_args(p)
    add_model_args(p)


def add_strategy_args(p, training: bool = True) -> None:
    """Where training runs (``edgedl.training.distribute``); with ``training``, how it computes too."""
    from ..training.distribute import MIXED_PRECISION, STRATEGIES

    p.add_argument("--strategy", default="auto", choices=STRATEGIES,
                   help="auto (default): a cluster when TF_CONFIG names one, else every GPU, else the CPU; one: "
                        "one device; mirrored: every GPU here; multiworker: the cluster of TF_CONFIG")  # fmt: skip
    p.add_argument("--workers", type=int,
                   help="run as N local workers on loopback (multi-worker, TF_CONFIG made for each; a killed "
                        "worker restarts them all from their backups)")  # fmt: skip
    if training:
        p.add_argument("--mixed-precision", default="auto", choices=MIXED_PRECISION,
                       help="float16 compute with float32 weights (auto, the default: on with GPUs)")
        p.add_argument("--xla", action="store_true", help="compile training steps with XLA (jit_compile)")


def setup_distribution(args):
    """This process's strategy, made before TensorFlow runs anything (a multi-worker one must come first)."""
    from ..training.distribute import setup

    return setup(args.strategy, getattr(args, "mixed_precision", "off"), getattr(args, "xla", False))


def log_name() -> str:
    """The chief's log is ``log.txt``; another worker of a cluster writes ``log-worker-I.txt``."""
    import os

    from ..training.distribute import read_cluster

    rank = read_cluster(os.environ.get("TF_CONFIG")).rank
    return "log.txt" if rank == 0 else f"log-worker-{rank}.txt"


def train_config(args, model: str):
    """The model's own training defaults (a zoo model's), overridden by what the user gave."""
    from ..models import list_models, model_entry
    from ..training.train import TrainConfig

    defaults = model_entry(model).train_defaults if model in list_models() else {}
    given = {k: getattr(args, k) for k in ("epochs", "batch_size", "seed") if getattr(args, k) is not None}
    return TrainConfig(**{**defaults, **given})


def prepare(args, task: str, image_shape: tuple, batch_size: int = 64, seed: int = 0):
    from .. import tasks
    from ..data.denoising import Noise

    noise = Noise.parse(getattr(args, "sigma", "25"), getattr(args, "eval_sigma", None))
    return tasks.prepare(task, args.data, getattr(args, "eval_data", None), image_shape, noise, batch_size, seed,
                         reading(args))  # fmt: skip


def reading(args):
    """How the user's pictures are read (``--resize``, ``--no-augment``)."""
    from ..data.datasets import Reading

    return Reading(getattr(args, "resize", "stretch"), not getattr(args, "no_augment", False),
                   limit=getattr(args, "train_size", None))


def prepare_model(args, model, task: str, norm, batch_size: int = 64, seed: int = 0):
    """The data for a saved model of ``task``; a generic one (several inputs or outputs) takes its inputs
    from ``--data`` (an .npz by input name, pictures, an .npy) as ``tasks.generic`` reads them."""
    from .. import tasks

    if tasks.host_task(task).prepare is not None:
        return tasks.normalized(prepare(args, task, tuple(model.inputs[0].shape[1:]), batch_size, seed), norm)
    from ..data.model_data import describe_keras

    log = lambda message: print(message, file=sys.stderr)  # noqa: E731
    return tasks.generic(model, describe_keras(model, norm), Path(args.model).name, None, args.data, batch_size,
                         seed, log)  # fmt: skip


def compress_configs(args) -> list:
    """The techniques of ``--technique`` (comma-separated) with their options (``compress.TECHNIQUES``)."""
    from ..compress import configs_from_options

    return configs_from_options(args.technique, args)
