"""Training on whatever devices are present, resumable, reproducible.

Where it runs (one device, every GPU, several workers) is ``edgedl.training.distribute``'s
choice; mixed precision is on by default on GPUs. Every worker writes
checkpoints that a re-run resumes from (``BackupAndRestore``); the chief alone
writes the trained model, its history and ``train_config.json``.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

from exporters.tfkeras import keras, tf
from runtime.errors import UserError
from runtime.files import write_json

from . import distribute
from .model_io import save_model


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


def set_seeds(seed: int) -> None:
    """Python, numpy and TensorFlow seeds in one call."""
    keras().utils.set_random_seed(seed)


def compile_for_task(model, task: str, learning_rate: float, jit_compile: bool = False) -> None:
    """Compile with the loss and metric that fit ``task`` (``jit_compile``: XLA)."""
    from ..tasks import host_task

    host = host_task(task)
    loss = host.loss if isinstance(host.loss, str) else host.loss(model)  # a loss shaped by the model's outputs
    model.compile(optimizer=keras().optimizers.Adam(learning_rate), loss=loss, metrics=list(host.keras_metrics),
                  jit_compile=jit_compile)  # fmt: skip


def _input_speed(train_data, config: TrainConfig) -> Optional[float]:
    """Pictures read from files: how many a second the input pipeline prepares alone (decoded, fitted,
    augmented), measured on a copy of the training batches (the training's own order is not touched)."""
    from ..data.datasets import Dataset
    from ..data.photos import Pictures

    if not isinstance(train_data, Dataset) or not isinstance(train_data.x, Pictures):
        return None
    return distribute.input_rate(distribute.batch_source(train_data, config.batch_size, config.seed + 1))


def _settings_diff(before: dict, now: dict, prefix: str = "") -> list:
    """``key: old → new`` for every setting that differs (nested keys joined by dots)."""
    found = []
    for key in sorted(set(before) | set(now)):
        a, b = before.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += _settings_diff(a, b, f"{prefix}{key}.")
        elif a != b:
            found.append(f"{prefix}{key} {a} → {b}")
    return found


def backup_for(backup: Path, settings: dict, say: Callable[[str], None]) -> None:
    """Keep ``backup`` (an interrupted training's checkpoints) only if it was made with ``settings``: another
    run's is removed, saying which settings differ, so that no training resumes from another's weights. The
    settings are recorded beside it (``backup_settings.json``; Keras empties the folder itself)."""
    import json
    import shutil

    recorded = backup.with_name(backup.name + "_settings.json")
    settings = json.loads(json.dumps(settings, default=str))  # as the file will hold them
    try:
        before = json.loads(recorded.read_text()) if recorded.exists() else None
    except (OSError, ValueError):
        before = {}
    has_backup = backup.is_dir() and any(backup.iterdir())
    if has_backup and before != settings:
        changed = _settings_diff(before or {}, settings)[:4] if before else ["not recorded"]
        say(f"train: the interrupted training in {backup.parent} had other settings ({'; '.join(changed)}); "
            "starting afresh")  # fmt: skip
        shutil.rmtree(backup, ignore_errors=True)
        shutil.rmtree(distribute.steps_folder(backup), ignore_errors=True)
    if distribute.current().is_chief:
        write_json(recorded, settings)


def train(build: Callable[[], object], task: str, train_data, eval_data, config: TrainConfig, out_dir: Path,
          on_epoch: Optional[Callable[[int, dict], None]] = None, record: Optional[dict] = None,
          say: Callable[[str], None] = print):  # fmt: skip
    """Build a model under this process's strategy, train it; the chief saves ``model.keras``,
    ``history.json`` and ``train_config.json`` (``record`` and where and how it trained). Returns the trained
    model (in every worker). ``on_epoch(epoch, logs)`` is called after each epoch (a progress display).

    ``train_data`` is a ``Dataset`` (images and labels) or a Keras ``Sequence``
    of (input, target) batches of ``config.batch_size`` (per replica); ``eval_data`` a ``Dataset``, a tuple
    of arrays, or None. ``build`` is called inside the strategy's scope (variables must be created there).
    Interrupted runs resume from ``out_dir/backup`` when it was made with the same ``record`` and
    ``config`` (``backup_for``: otherwise it starts afresh and ``say``s why).
    """
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
        backup_for(backup, {**(record or {}), "train": asdict(config)}, say)
        input_speed = _input_speed(train_data, config) if dist.is_chief else None
        history = distribute.fit(model, train_data, batch_size=config.batch_size, epochs=config.epochs,
                                 seed=config.seed, validation=eval_data, callbacks=callbacks, backup=backup)
    finally:
        k.mixed_precision.set_global_policy("float32")  # whatever training used, exports are float32
    model = distribute.detached(model)  # every worker: reading synchronised variables is a collective
    if dist.is_chief:
        runs = {**distribute.steps_run(distribute.steps_folder(backup)),
                "epoch_seconds": [round(t, 3) for t in epoch_seconds]}
        if input_speed is not None and epoch_seconds:
            per_epoch = distribute.steps_per_epoch(distribute.batch_source(train_data, config.batch_size, config.seed),
                                                   dist.replicas) * config.batch_size * dist.replicas
            steady = epoch_seconds[1:] or epoch_seconds  # the first epoch also traces the step
            runs.update(input_examples_per_s=round(input_speed, 1),
                        train_examples_per_s=round(per_epoch * len(steady) / sum(steady), 1))
        history_record = {name: [float(v) for v in vals] for name, vals in history.history.items()}
        save_model(model, out_dir / "model.keras")
        write_json(out_dir / "history.json", {"config": asdict(config), "distribution": dist.record(config.batch_size),
                                               "history": history_record})  # fmt: skip
        write_json(out_dir / "train_config.json", {**(record or {}), "config": asdict(config),
                                                    "distribution": dist.record(config.batch_size), "run": runs})
    return model
