"""The model zoo's registry, in the shape of timm's ``@register_model``.

>>> from edgedl.models import create_model, list_models
>>> list_models()                    # doctest: +SKIP
['cnn']
>>> model = create_model("cnn")      # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from runtime.errors import UserError


@dataclass(frozen=True)
class ModelEntry:
    """A registered builder and what the pipeline needs to know about its models."""

    name: str
    build: Callable
    task: str
    input_shape: tuple
    description: str
    train_defaults: dict = field(default_factory=dict)  # TrainConfig fields that suit this model
    recipes: Optional[tuple] = None  # compression recipes that apply (None: every one for the task)
    baseline: Optional[str] = None  # a registry model trained the same way, whose metrics the report carries too
    student: Optional[str] = None  # the pipeline's distillation student (DistillConfig.student), if not the default


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(task: str, input_shape: tuple, train_defaults: Optional[dict] = None,
                   recipes: Optional[tuple] = None, baseline: Optional[str] = None,
                   student: Optional[str] = None):  # fmt: skip
    """Decorator: register a builder under its function name."""

    def wrap(fn: Callable) -> Callable:
        if fn.__name__ in _REGISTRY:
            raise ValueError(f"model {fn.__name__!r} is registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()
        _REGISTRY[fn.__name__] = ModelEntry(fn.__name__, fn, task, tuple(input_shape), doc[0] if doc else "",
                                            dict(train_defaults or {}), recipes, baseline, student)  # fmt: skip
        return fn

    return wrap


def list_models() -> list[str]:
    """Names of the registered models, sorted."""
    return sorted(_REGISTRY)


def model_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; an unknown name lists the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UserError(f"unknown model {name!r}; known models: {', '.join(list_models())}") from None


def create_model(name: str, **kwargs):
    """Build a fresh (untrained) tf-keras model from the registry."""
    return model_entry(name).build(**kwargs)


def build_for_task(entry: ModelEntry, labels: Optional[tuple]):
    """Build ``entry``'s model for the data: a classifier gets one output per class."""
    from runtime.tasks import get_task

    return entry.build(num_classes=len(labels)) if get_task(entry.task).class_scores else entry.build()
