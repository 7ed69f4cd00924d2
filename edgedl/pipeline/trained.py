"""The models a pipeline run trains, the original and a baseline: trained under this process's strategy (every
worker of a cluster alike), or reused when ``train_config.json`` says they were trained as this run would."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from .. import tasks
from ..models import build_for_task, model_entry
from runtime.errors import UserError
from runtime.files import sha256_file

from ..training import distribute
from ..training.model_io import load_keras_model, load_matching_weights
from ..training.twin import as_tf_keras
from ..training.train import train


def _computed() -> dict:
    """What of the distribution changes the trained weights: the replicas (the global batch), the precision."""
    dist = distribute.current()
    return {"replicas": dist.replicas, "mixed_precision": dist.choice.mixed_precision, "xla": dist.choice.xla}


def _records(marker: Path, wanted: dict) -> bool:
    """Whether a run's ``train_config.json`` says it trained as ``wanted`` says (it says more: where, how long)."""
    if not marker.exists():
        return False
    recorded = json.loads(marker.read_text())
    return {key: recorded.get(key) for key in wanted} == wanted


class Trainer:
    """The pipeline's training stage: the job's ``config``, its run folder ``out``, how it trains
    (``train_config``) and where its lines go (``terminal``)."""

    def __init__(self, config, out: Path, train_config, terminal):
        self.config, self.out, self.train_config, self.terminal = config, out, train_config, terminal

    def log(self, message: str) -> None:
        self.terminal.say(message)

    def original(self, data: tasks.Prepared, entry=None, user_model=None):
        """A user's saved model as it is, or a zoo model (``entry``) trained (or reused) in OUT."""
        cfg = self.config
        if user_model is not None and not cfg.retrain:
            self.log(f"model: {cfg.model} (loaded, not retrained)")
            return user_model, Path(cfg.model)
        saved, marker = self.out / "model.keras", self.out / "train_config.json"
        noise = asdict(cfg.noise) if tasks.host_task(data.task).noisy else None
        wanted = {"model": str(cfg.model), "train": asdict(self.train_config), "data": data.fingerprint,
                  "labels": list(data.labels or ()), "noise": noise, "computed": _computed(),
                  **({"options": dict(cfg.model_options)} if cfg.model_options else {}),
                  **({"weights": sha256_file(cfg.weights)} if cfg.weights else {})}  # fmt: skip
        if saved.exists() and _records(marker, wanted):
            try:
                model = load_keras_model(saved)
                self.log(f"model: reusing {saved} (trained with the same settings)")
                return model, saved
            except UserError as damaged:  # a truncated copy: trained again, not left for the user to delete
                self.log(f"model: {damaged}; training it again")
                marker.unlink(missing_ok=True)
        if user_model is None:
            build: Callable = lambda: self.built(entry, data.labels)  # noqa: E731
        else:
            build = lambda: as_tf_keras(load_keras_model(cfg.model))  # noqa: E731
        self.log(f"train: {cfg.model}, {self.train_config.epochs} epochs")
        model = train(build, data.task, data.fit, data.validation, self.train_config, self.out,
                      on_epoch=self.terminal.epochs(self.train_config.epochs, "train"), record=wanted,
                      say=self.log)  # fmt: skip
        return model, saved

    def built(self, entry, labels):
        """``entry``'s model with the user's architecture choices, from their checkpoint when given."""
        model = build_for_task(entry, labels, dict(self.config.model_options))
        if self.config.weights is not None:
            loaded, total = load_matching_weights(model, self.config.weights)
            self.log(f"weights: {loaded} of {total} layers from {self.config.weights} (the others as built: "
                     "a head for these classes)")  # fmt: skip
        return model

    def baseline_model(self, name: str, data: tasks.Prepared) -> Path:
        """The baseline ``name`` trained as the original was (or reused): its saved model."""
        entry = model_entry(name)
        out = self.out / "baseline"
        saved, marker = out / "model.keras", out / "train_config.json"
        wanted = {"model": name, "train": asdict(self.train_config), "noise": asdict(self.config.noise),
                  "computed": _computed()}
        if not (saved.exists() and _records(marker, wanted)):
            self.log(f"train: {name} (the baseline), {self.train_config.epochs} epochs")
            train(lambda: build_for_task(entry, data.labels), data.task, data.fit, data.validation,
                  self.train_config, out, on_epoch=self.terminal.epochs(self.train_config.epochs, "baseline"),
                  record=wanted, say=self.log)  # fmt: skip
        return saved
