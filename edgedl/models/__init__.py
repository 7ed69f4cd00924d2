"""The model zoo. Importing this package registers every model module."""
from . import cnn, dncnn, lstm  # noqa: F401  (registers)
from ._registry import ModelEntry, create_model, list_models, model_entry, register_model

__all__ = ["ModelEntry", "create_model", "list_models", "model_entry", "register_model"]
