"""The model zoo. Importing this package registers every model module."""
from . import centernet, cnn, dncnn, embedder, lstm, mobilenet, seq_denoiser, unet  # noqa: F401  (registers)
from ._registry import ModelEntry, build_for_task, create_model, list_models, model_entry, register_model

__all__ = ["ModelEntry", "build_for_task", "create_model", "list_models", "model_entry", "register_model"]
