"""Training on whatever devices are present, resumable, reproducible.

Several GPUs: ``MirroredStrategy`` over all of them, mixed precision.
One GPU: that device, mixed precision. No GPU: the default (CPU) strategy in
float32. A run writes checkpoints that a re-run resumes from
(``BackupAndRestore``), then the trained model and its history.
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from runtime.errors import UserError
from runtime.files import atomic_path, write_json

from ._tf import keras, tf
from .datasets import Dataset


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


@dataclass(frozen=True)
class StrategyChoice:
    """Which ``tf.distribute`` strategy to use, and whether to train in mixed precision."""

    kind: str  # "mirrored", "one_device" or "default"
    devices: tuple
    mixed_precision: bool


def choose_strategy(gpus: Sequence[str]) -> StrategyChoice:
    """The strategy for a list of visible GPU device names (pure: testable without a GPU)."""
    gpus = tuple(gpus)
    if len(gpus) > 1:
        return StrategyChoice("mirrored", gpus, True)
    if len(gpus) == 1:
        return StrategyChoice("one_device", gpus, True)
    return StrategyChoice("default", ("/cpu:0",), False)


def make_strategy(choice: StrategyChoice):
    """Build the ``tf.distribute`` strategy and set the Keras precision policy for ``choice``."""
    t, k = tf(), keras()
    k.mixed_precision.set_global_policy("mixed_float16" if choice.mixed_precision else "float32")
    if choice.kind == "mirrored":
        return t.distribute.MirroredStrategy(devices=list(choice.devices))
    if choice.kind == "one_device":
        return t.distribute.OneDeviceStrategy(choice.devices[0])
    return t.distribute.get_strategy()


def detect_strategy() -> StrategyChoice:
    """The choice for the GPUs this process can see."""
    return choose_strategy([d.name for d in tf().config.list_logical_devices("GPU")])


def fit_verbosity() -> int:
    """Keras's progress bar on a terminal, one line per epoch in a log."""
    return 1 if sys.stdout.isatty() else 2


def set_seeds(seed: int) -> None:
    """Python, numpy and TensorFlow seeds in one call."""
    keras().utils.set_random_seed(seed)


def compile_for_task(model, task: str, learning_rate: float) -> None:
    """Compile with the loss and metric that fit ``task``."""
    from .tasks import host_task

    host = host_task(task)
    loss = host.loss if isinstance(host.loss, str) else host.loss(model)  # a loss shaped by the model's outputs
    model.compile(optimizer=keras().optimizers.Adam(learning_rate), loss=loss, metrics=list(host.keras_metrics))


def _fit_inputs(data) -> dict:
    """``model.fit`` arguments: a ``Dataset`` is (images, labels); anything else is already a sequence of
    (input, target) batches (a denoiser's noisy patches)."""
    if isinstance(data, Dataset):
        return {"x": data.x, "y": data.y}
    return {"x": data}


def _validation(data):
    if data is None or not isinstance(data, Dataset):
        return data
    return (data.x, data.y)


def train(build: Callable[[], object], task: str, train_data, eval_data, config: TrainConfig, out_dir: Path,
          on_epoch: Optional[Callable[[int, dict], None]] = None):  # fmt: skip
    """Build a model under the right strategy, train it, save ``model.keras`` and ``history.json``.
    ``on_epoch(epoch, logs)`` is called after each epoch (a progress display).

    ``train_data`` is a ``Dataset`` (images and labels) or a Keras ``Sequence``
    of (input, target) batches; ``eval_data`` likewise, a tuple of arrays, or
    None. ``build`` is called inside the strategy's scope (variables must be
    created there). Interrupted runs resume from ``out_dir/backup``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    set_seeds(config.seed)
    if config.deterministic:
        tf().config.experimental.enable_op_determinism()
    choice = detect_strategy()
    strategy = make_strategy(choice)
    with strategy.scope():
        model = build()
        compile_for_task(model, task, config.learning_rate)
    k = keras()
    callbacks = [k.callbacks.BackupAndRestore(str(out_dir / "backup"))]
    if on_epoch is not None:
        callbacks.append(k.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: on_epoch(epoch, logs or {})))
    if config.lr_drop_at < 1.0:
        drop = int(config.epochs * config.lr_drop_at)
        callbacks.append(k.callbacks.LearningRateScheduler(
            lambda epoch, lr: config.learning_rate * (0.1 if epoch >= drop else 1.0)))  # fmt: skip
    inputs = _fit_inputs(train_data)
    if "y" in inputs:
        inputs["batch_size"] = config.batch_size * strategy.num_replicas_in_sync
    history = model.fit(
        **inputs,
        validation_data=_validation(eval_data),
        epochs=config.epochs,
        callbacks=callbacks,
        verbose=fit_verbosity(),
    )
    # Save in float32 whatever the training policy was, so exports are float32.
    keras().mixed_precision.set_global_policy("float32")
    save_model(model, out_dir / "model.keras")
    write_json(
        out_dir / "history.json",
        {
            "config": asdict(config),
            "strategy": asdict(choice),
            "history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
        },
    )
    return model


def save_model(model, path: Path) -> None:
    """Save the weights and architecture only, atomically: the optimizer state is training's business
    (``BackupAndRestore`` keeps it) and would triple the size the report compares against."""
    k = keras()
    if any("Quantize" in type(layer).__name__ for layer in model.layers):  # QAT: saved in tfmot's scope
        from .compress._techniques import qat_custom_objects, tfmot

        if Path(path).suffix != ".h5":  # the .keras format loses variables of tfmot's QuantizeLayer
            raise ValueError(f"{path}: save a quantization-aware-trained model as .h5")

        with tfmot().quantization.keras.quantize_scope(qat_custom_objects()):
            clean = k.models.clone_model(model)
            clean.set_weights(model.get_weights())
            with atomic_path(path) as tmp:
                clean.save(tmp)
        return
    clean = k.models.clone_model(model)
    clean.set_weights(model.get_weights())
    with atomic_path(path) as tmp:
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
