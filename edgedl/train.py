"""Training on whatever devices are present, resumable, reproducible.

Where it runs (one device, every GPU, several workers) is ``edgedl.distribute``'s
choice; mixed precision is on by default on GPUs. Every worker writes
checkpoints that a re-run resumes from (``BackupAndRestore``); the chief alone
writes the trained model, its history and ``train_config.json``.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

from runtime.errors import UserError
from runtime.files import atomic_path, write_json

from ._tf import keras, tf


def check_training(epochs: int, learning_rate: float, batch_size: int, what: str = "") -> None:
    """The checks every training config makes (``what`` prefixes the message, e.g. "fine-tuning ")."""
    if epochs < 1:
        raise UserError(f"{what}epochs must be at least 1, got {epochs}")
    if not learning_rate > 0:
        raise UserError(f"learning rate must be positive, got {learning_rate}")
    if batch_size < 1:
        raise UserError(f"batch size must be at least 1, got {batch_size}")


@dataclass(frozen=True)
class TrainConfig:
    """How to train. Defaults reach >= 98 % on the seed CNN with the embedded split on a 2-core CPU."""

    epochs: int = 8
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 0
    lr_drop_at: float = 1.0  # fraction of the epochs after which the learning rate drops 10× (1.0: never)
    # Bit-for-bit repeatable runs (TensorFlow's op determinism; slower on GPUs). Without it, threaded kernels
    # reorder sums: the same seed then drifts by about 0.03 dB on DnCNN-lite, 0.1 points on the CNN.
    deterministic: bool = False

    def __post_init__(self):
        check_training(self.epochs, self.learning_rate, self.batch_size)
        if not 0.0 < self.lr_drop_at <= 1.0:
            raise UserError(f"lr_drop_at must be in (0, 1], got {self.lr_drop_at}")


def fit_verbosity() -> int:
    """Keras's progress bar on a terminal, one line per epoch in a log."""
    return 1 if sys.stdout.isatty() else 2


def set_seeds(seed: int) -> None:
    """Python, numpy and TensorFlow seeds in one call."""
    keras().utils.set_random_seed(seed)


def compile_for_task(model, task: str, learning_rate: float, jit_compile: bool = False) -> None:
    """Compile with the loss and metric that fit ``task`` (``jit_compile``: XLA)."""
    from .tasks import host_task

    host = host_task(task)
    loss = host.loss if isinstance(host.loss, str) else host.loss(model)  # a loss shaped by the model's outputs
    model.compile(optimizer=keras().optimizers.Adam(learning_rate), loss=loss, metrics=list(host.keras_metrics),
                  jit_compile=jit_compile)  # fmt: skip


def train(build: Callable[[], object], task: str, train_data, eval_data, config: TrainConfig, out_dir: Path,
          on_epoch: Optional[Callable[[int, dict], None]] = None, record: Optional[dict] = None):  # fmt: skip
    """Build a model under this process's strategy, train it; the chief saves ``model.keras``,
    ``history.json`` and ``train_config.json`` (``record`` and where and how it trained). Returns the trained
    model (in every worker). ``on_epoch(epoch, logs)`` is called after each epoch (a progress display).

    ``train_data`` is a ``Dataset`` (images and labels) or a Keras ``Sequence``
    of (input, target) batches of ``config.batch_size`` (per replica); ``eval_data`` a ``Dataset``, a tuple
    of arrays, or None. ``build`` is called inside the strategy's scope (variables must be created there).
    Interrupted runs resume from ``out_dir/backup``.
    """
    from . import distribute

    out_dir = Path(out_dir)
    dist = distribute.current()
    out_dir.mkdir(parents=True, exist_ok=True)
    set_seeds(config.seed)
    if config.deterministic:
        tf().config.experimental.enable_op_determinism()
    k = keras()
    k.mixed_precision.set_global_policy("mixed_float16" if dist.choice.mixed_precision else "float32")
    try:
        with dist.strategy.scope():
            model = build()
            compile_for_task(model, task, config.learning_rate, jit_compile=dist.choice.xla)
        started, epoch_seconds = [], []  # this attempt's epochs (a resumed run's first ones were another's)
        callbacks = [k.callbacks.LambdaCallback(
            on_epoch_begin=lambda epoch, logs: started.append(time.perf_counter()),
            on_epoch_end=lambda epoch, logs: epoch_seconds.append(time.perf_counter() - started[-1]))]
        if on_epoch is not None and dist.is_chief:
            callbacks.append(k.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: on_epoch(epoch, logs or {})))
        if config.lr_drop_at < 1.0:
            drop = int(config.epochs * config.lr_drop_at)
            callbacks.append(k.callbacks.LearningRateScheduler(
                lambda epoch, lr: config.learning_rate * (0.1 if epoch >= drop else 1.0)))  # fmt: skip
        backup = out_dir / "backup"
        history = distribute.fit(model, train_data, batch_size=config.batch_size, epochs=config.epochs,
                                 seed=config.seed, validation=eval_data, callbacks=callbacks, backup=backup)
    finally:
        k.mixed_precision.set_global_policy("float32")  # whatever training used, exports are float32
    model = distribute.detached(model)  # every worker: reading synchronised variables is a collective
    if dist.is_chief:
        runs = {**distribute.steps_run(distribute.steps_folder(backup)),
                "epoch_seconds": [round(t, 3) for t in epoch_seconds]}
        history_record = {name: [float(v) for v in vals] for name, vals in history.history.items()}
        save_model(model, out_dir / "model.keras")
        write_json(out_dir / "history.json", {"config": asdict(config), "distribution": dist.record(config.batch_size),
                                               "history": history_record})  # fmt: skip
        write_json(out_dir / "train_config.json", {**(record or {}), "config": asdict(config),
                                                    "distribution": dist.record(config.batch_size), "run": runs})
    return model


def plain_copy(model):
    """A copy of ``model`` (architecture and weights) in variables of no strategy, computing in float32
    whatever precision it trained in; a QAT model's in tfmot's scope."""
    k = keras()
    if any("Quantize" in type(layer).__name__ for layer in model.layers):
        from .compress._techniques import qat_custom_objects, tfmot

        with tfmot().quantization.keras.quantize_scope(qat_custom_objects()):
            clean = k.models.clone_model(model)
    elif any(layer.dtype_policy.name != "float32" for layer in model.layers):  # trained in mixed precision
        clean = k.models.clone_model(model, clone_function=_in_float32)
    else:
        clean = k.models.clone_model(model)
    clean.set_weights(model.get_weights())
    return clean


def _in_float32(layer):
    """A new layer like ``layer`` that computes in float32 (mixed precision keeps float32 weights already)."""
    return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})


def save_model(model, path: Path) -> None:
    """Save the weights and architecture only, atomically: the optimizer state is training's business
    (``BackupAndRestore`` keeps it) and would triple the size the report compares against."""
    quantized = any("Quantize" in type(layer).__name__ for layer in model.layers)
    if quantized and Path(path).suffix != ".h5":  # the .keras format loses variables of tfmot's QuantizeLayer
        raise ValueError(f"{path}: save a quantization-aware-trained model as .h5")
    try:
        clean = plain_copy(model)
    except ValueError:  # cluster-preserving QAT: tfmot's clone drops its variables; saved as it is
        clean = model
    with atomic_path(path) as tmp:
        if quantized:  # saved in tfmot's scope
            from .compress._techniques import qat_custom_objects, tfmot

            with tfmot().quantization.keras.quantize_scope(qat_custom_objects()):
                clean.save(tmp, include_optimizer=False)
        else:
            clean.save(tmp)


def load_keras_model(path: str | Path):
    """Load a user's saved Keras model (``.keras``, ``.h5`` or a SavedModel folder) with tf-keras."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such model file or folder")
    if path.is_file() and path.suffix not in (".keras", ".h5", ".hdf5"):
        raise UserError(f"{path}: unknown Keras model format {path.suffix!r}; expected .keras, .h5 or a SavedModel folder")
    if path.is_dir() and not (path / "saved_model.pb").exists():
        raise UserError(f"{path}: folder is not a SavedModel (no saved_model.pb inside)")
    from .models.seq_denoiser import recurrent_frame_denoiser

    recurrent_frame_denoiser()  # registers edgedl's own layer before a model that uses it loads
    try:
        if _saved_by_keras3(path):
            import keras as keras3  # Keras 3 files load with Keras 3: post-training variants only

            return keras3.models.load_model(path, compile=False)
        return _load_tf_keras(path)
    except Exception as exc:  # Keras raises many types for a bad file; all mean "cannot load"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise UserError(f"{path}: cannot load this Keras model ({first}); is the file complete?") from None


def _load_tf_keras(path: Path):
    """tf-keras's loader; a quantization-aware-trained model (tfmot's wrappers) loads in tfmot's scope."""
    try:
        return keras().models.load_model(path, compile=False)
    except Exception as first:  # noqa: BLE001 - tf-keras says only "'str' object is not callable"
        from .compress._techniques import qat_custom_objects, tfmot

        try:
            with tfmot().quantization.keras.quantize_scope(qat_custom_objects()):
                return keras().models.load_model(path, compile=False)
        except Exception:  # noqa: BLE001 - not a QAT model either: the first reason is the one to give
            raise first from None


def _saved_by_keras3(path: Path) -> bool:
    """Whether a ``.keras`` archive was written by Keras 3 (its metadata.json says so)."""
    import zipfile

    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        try:
            meta = json.loads(archive.read("metadata.json"))
        except (KeyError, ValueError):
            return False
    return str(meta.get("keras_version", "")).startswith("3")
