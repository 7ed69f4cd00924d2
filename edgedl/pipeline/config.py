"""What one ``edgedl pipeline`` job is asked to do: ``PipelineConfig``, and how its ``model`` is read (a zoo
name, a saved Keras model, or another tool's ``.tflite`` / ``.onnx``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from benchmarks import BenchConfig

from ..data.denoising import Noise
from ..models import list_models
from ..training.train import TrainConfig

MODEL_FILES = (".onnx", ".tflite")  # another tool's model: measured (and, for .onnx, converted) as it is
KERAS_FILES = (".keras", ".h5")
USER_STUDENT = "width:0.5"  # a user's model is distilled into itself at half width


@dataclass(frozen=True)
class PipelineConfig:
    """One whole job. ``model`` is a registry name or the path of a saved Keras model;
    ``variants`` names variants or recipes (see ``edgedl.pipeline.recipes``), all when empty."""

    model: str
    out: Path
    train: Optional[TrainConfig] = None  # None: the model's own defaults (see the registry)
    bench: BenchConfig = field(default_factory=BenchConfig)
    data: Optional[Path] = None
    eval_data: Optional[Path] = None
    eval_labels: Optional[Path] = None  # a model file's labels for an .npy of evaluation inputs
    variants: tuple = ()
    retrain: bool = False
    noise: Noise = field(default_factory=Noise)  # denoisers: training and evaluation noise
    search_drop: Optional[float] = None  # with a budget: the accuracy-aware search after the variants
    search_seconds: Optional[float] = None  # its time budget
    budget: Optional[dict] = None  # {"max_drop": D, "by": "latency"}: what the report marks as selected
    mean: Optional[tuple] = None  # the model's inputs are (pixel / 255 - mean) / std (see data.preprocessing)
    std: Optional[tuple] = None
    model_options: tuple = ()  # a zoo model's architecture choices, as (name, value) pairs: width, input_size
    weights: Optional[Path] = None  # a checkpoint of the zoo model's architecture to start training from
    resize: str = "stretch"  # how pictures of another aspect fit the input (recorded in every artifact)
    augment: bool = True  # pictures read from files are flipped, shifted and brightened for training
    train_size: Optional[int] = None  # at most this many training examples (a quick trial run)
    onnx_calibration: str = "minmax"  # how an int8 .onnx's ranges are calibrated (exporters.CALIBRATIONS)
    onnx_activations: str = "auto"  # an int8 .onnx's activation type (exporters.onnx_source.activation_type)

    @property
    def is_model_file(self) -> bool:
        """Another tool's model: measured, not trained."""
        return Path(self.model).suffix.lower() in MODEL_FILES

    @property
    def is_user_model(self) -> bool:
        """A user's saved model (Keras, or another tool's file), not a zoo name."""
        suffixes = (*KERAS_FILES, *MODEL_FILES)
        return self.model not in list_models() and (Path(self.model).exists()
                                                    or Path(self.model).suffix.lower() in suffixes)
