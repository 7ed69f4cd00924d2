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
    options: tuple = ()  # what a user may choose of its architecture (``width``, ``input_size``): builder arguments
    raw_pixels: bool = False  # it takes 0–255 pixels and normalises them itself (its first layer rescales)

    def input_shape_for(self, options: dict) -> tuple:
        """The input shape of the model built with ``options`` (``input_size``: its height and width)."""
        size = options.get("input_size")
        return self.input_shape if size is None else (size, size, *self.input_shape[2:])

    def check_options(self, options: dict) -> dict:
        """``options`` the model takes, in their ranges; anything else is refused naming the model."""
        for name, value in options.items():
            if name not in self.options:
                takers = [e.name for e in _REGISTRY.values() if name in e.options]
                raise UserError(f"--{name.replace('_', '-')}: {self.name} takes no {name}; "
                                f"{', '.join(takers) or 'no zoo model'} does")  # fmt: skip
            low, high = OPTION_RANGES[name]
            if not low <= value <= high:
                raise UserError(f"--{name.replace('_', '-')} {value}: give {low:g} to {high:g}")
        return options


_REGISTRY: dict[str, ModelEntry] = {}
OPTION_RANGES = {"width": (0.1, 2.0), "input_size": (32, 1024)}


def register_model(task: str, input_shape: tuple, train_defaults: Optional[dict] = None,
                   recipes: Optional[tuple] = None, baseline: Optional[str] = None,
                   student: Optional[str] = None, options: tuple = (), raw_pixels: bool = False):  # fmt: skip
    """Decorator: register a builder under its function name."""

    def wrap(fn: Callable) -> Callable:
        if fn.__name__ in _REGISTRY:
            raise ValueError(f"model {fn.__name__!r} is registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()
        _REGISTRY[fn.__name__] = ModelEntry(fn.__name__, fn, task, tuple(input_shape), doc[0] if doc else "",
                                            dict(train_defaults or {}), recipes, baseline, student, tuple(options),
                                            raw_pixels)  # fmt: skip
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


def build_for_task(entry: ModelEntry, labels: Optional[tuple], options: Optional[dict] = None):
    """Build ``entry``'s model for the data (with the user's ``options``): a classifier gets one output per
    class."""
    from runtime.tasks import get_task

    options = entry.check_options(dict(options or {}))
    if get_task(entry.task).class_scores:
        return entry.build(num_classes=len(labels), **options)
    return entry.build(**options)
