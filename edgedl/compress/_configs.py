"""Typed, validated configs, one per technique (checked at construction, as tfmot checks its schedules)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from runtime.errors import UserError

from ..training.train import check_training

STRUCTURES = ("unstructured", "2:4")


def _check_training(epochs: int, learning_rate: float, batch_size: int) -> None:
    check_training(epochs, learning_rate, batch_size, what="fine-tuning ")


@dataclass(frozen=True)
class PruneConfig:
    """Magnitude pruning: a polynomial-decay schedule from 0 to ``target_sparsity`` over the first
    half of ``epochs``, then fine-tuning at that sparsity; or tfmot's 2:4 structured sparsity."""

    target_sparsity: float = 0.8
    structure: str = "unstructured"
    epochs: int = 6
    learning_rate: float = 5e-4
    batch_size: int = 64

    def __post_init__(self):
        if not 0.0 <= self.target_sparsity < 1.0:
            raise UserError(f"sparsity must be in [0, 1), got {self.target_sparsity}")
        if self.structure not in STRUCTURES:
            raise UserError(f"unknown pruning structure {self.structure!r}; choose one of {', '.join(STRUCTURES)}")
        _check_training(self.epochs, self.learning_rate, self.batch_size)


@dataclass(frozen=True)
class FilterPruneConfig:
    """Filter pruning: remove the ``ratio`` of each layer's filters (or units) with the smallest L1 norm,
    rebuild the thinner model, and fine-tune it (a classifier learns from the original as its teacher, or
    from the labels alone without ``teacher``: what the teacher is measured against)."""

    ratio: float = 0.5
    epochs: int = 6
    learning_rate: float = 1e-3
    batch_size: int = 64
    teacher: bool = True

    def __post_init__(self):
        if not 0.0 <= self.ratio < 1.0:
            raise UserError(f"filter pruning ratio must be in [0, 1), got {self.ratio}")
        _check_training(self.epochs, self.learning_rate, self.batch_size)


@dataclass(frozen=True)
class FineTuneConfig:
    """More training of the same model and nothing else: the control a compression recipe is measured
    against (its extra epochs, learning rate and batch size, on the same data and loss; batch norms frozen
    as QAT freezes them, when it is QAT's control)."""

    epochs: int = 2
    learning_rate: float = 1e-4
    batch_size: int = 64
    freeze_batch_norms: bool = False

    def __post_init__(self):
        _check_training(self.epochs, self.learning_rate, self.batch_size)


@dataclass(frozen=True)
class ClusterConfig:
    """Weight clustering: every kernel's weights share ``clusters`` values (k-means++ initialised)."""

    clusters: int = 16
    epochs: int = 3
    learning_rate: float = 1e-4
    batch_size: int = 64

    def __post_init__(self):
        if not 2 <= self.clusters <= 256:
            raise UserError(f"clusters must be between 2 and 256, got {self.clusters}")
        _check_training(self.epochs, self.learning_rate, self.batch_size)


@dataclass(frozen=True)
class QATConfig:
    """Quantization-aware training: fake-quantized fine-tuning, then an int8 TFLite artifact.
    After pruning or clustering, the sparsity or the clusters are preserved (tfmot's PQAT / CQAT)."""

    epochs: int = 2
    learning_rate: float = 1e-4
    batch_size: int = 64

    def __post_init__(self):
        _check_training(self.epochs, self.learning_rate, self.batch_size)


@dataclass(frozen=True)
class DistillConfig:
    """Knowledge distillation: the student learns from the teacher's outputs softened by ``temperature``
    and from the hard labels with weight ``alpha`` (Hinton et al., 2015). ``student`` is a registry
    name, ``width:F`` (the teacher's own architecture, F times as wide) or the path of a saved model;
    ``student_model`` a user's own (untrained) tf-keras model, which wins when given."""

    student: str = "cnn_student"
    temperature: float = 4.0
    alpha: float = 0.5
    epochs: int = 10
    learning_rate: float = 1e-3
    batch_size: int = 64
    shift: float = 2 / 28  # random translation, as a fraction of the image size (0 turns it off)
    student_model: Optional[object] = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if not self.temperature > 0:
            raise UserError(f"temperature must be positive, got {self.temperature}")
        if not 0.0 <= self.shift < 0.5:
            raise UserError(f"shift must be in [0, 0.5), got {self.shift}")
        if not 0.0 <= self.alpha <= 1.0:
            raise UserError(f"alpha (the weight of the hard-label loss) must be in [0, 1], got {self.alpha}")
        _check_training(self.epochs, self.learning_rate, self.batch_size)
