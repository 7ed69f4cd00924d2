"""What every exporter shares: the typed config, the description of the model, the artifact, the registry."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, Iterator, Optional

import contextlib
import os
import shutil
import tempfile

import numpy as np

from runtime.errors import UserError
from runtime.metadata import ModelMetadata, Normalization, TensorSpec

def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("edgedl")  # pyproject.toml is the one place the version is written
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


EDGEDL_VERSION = _version()


class NotApplicable(UserError):
    """The variant asked for does not apply to this model (nothing for it to do): not a failure of the model."""


def _rows(data, n: int):
    """The first ``n`` samples as float32: an array, or a dict of arrays by input name (several inputs)."""
    if isinstance(data, dict):
        return {k: np.asarray(v[:n], dtype=np.float32) for k, v in data.items()}
    return np.asarray(data[:n], dtype=np.float32)


def sample_count(data) -> int:
    return len(next(iter(data.values()))) if isinstance(data, dict) else len(data)


@dataclass(frozen=True)
class ExportConfig:
    """Precision of the artifact and the data to calibrate and check it with.

    ``calibration`` (model-ready float inputs from the training data: an
    array, or a dict of arrays by input name for a model with several inputs)
    is required for ``int8``; its first ``num_calibration`` rows are used. The
    first ``num_check`` rows of ``check_inputs`` (or of ``calibration``) are
    run through the artifact and compared against the Keras model.
    """

    PRECISIONS: ClassVar[tuple] = ()

    precision: str = "float32"
    calibration: Optional[object] = field(default=None, compare=False, repr=False)
    num_calibration: int = 300
    check_inputs: Optional[object] = field(default=None, compare=False, repr=False)
    num_check: int = 64

    def __post_init__(self):
        if self.precision not in self.PRECISIONS:
            raise UserError(
                f"precision {self.precision!r} is not supported by {type(self).__name__}; "
                f"choose one of {', '.join(self.PRECISIONS)}"
            )
        if self.precision.startswith("int8") and (self.calibration is None or sample_count(self.calibration) == 0):
            raise UserError("int8 export needs calibration data (a few hundred training inputs)")
        if self.num_calibration < 1 or self.num_check < 1:
            raise UserError("num_calibration and num_check must be at least 1")

    def calibration_set(self):
        return _rows(self.calibration, self.num_calibration)

    def check_set(self):
        source = self.check_inputs if self.check_inputs is not None else self.calibration
        return None if source is None else _rows(source, self.num_check)


@dataclass(frozen=True)
class ModelInfo:
    """What the artifact says about the model it came from."""

    task: str
    labels: Optional[tuple] = None
    normalization: Normalization = field(default_factory=Normalization)
    techniques: tuple = ()
    source_sha256: str = ""
    build_key: str = ""  # what the artifact was built from and with (see edgedl.pipeline): reused only on a match
    layout: str = "NHWC"  # where the image input's channels are (a PyTorch export: NCHW)
    decoding: tuple = ()  # the task's decoding parameters, (name, number) pairs (runtime.metadata)
    resize: str = "stretch"  # how a picture of another aspect was fitted to the input (runtime.metadata)

    def record(self, fmt: str, precision: str, inputs: tuple, outputs: tuple, notes: tuple = ()) -> ModelMetadata:
        """The artifact's metadata, its checksum left zeroed for ``runtime.files.seal`` to fill in; ``notes``:
        how the exporter chose to build it (an int8 ``.onnx``'s activation type, say)."""
        from runtime.files import UNSEALED

        return ModelMetadata(task=self.task, format=fmt, precision=precision, inputs=inputs, outputs=outputs,
                             normalization=self.normalization, layout=self.layout, labels=self.labels,
                             techniques=tuple(self.techniques), decoding=tuple(self.decoding), resize=self.resize,
                             source_sha256=self.source_sha256, build_key=self.build_key,
                             edgedl_version=EDGEDL_VERSION, artifact_sha256=UNSEALED, notes=tuple(notes))  # fmt: skip


@dataclass(frozen=True)
class Artifact:
    """An exported model file and what it says about itself."""

    path: Path
    format: str
    precision: str
    metadata: ModelMetadata
    size_bytes: int
    sha256: str
    max_abs_diff: float = float("nan")
    top1_agreement: float = float("nan")

    @property
    def input(self) -> TensorSpec:
        return self.metadata.input

    @property
    def output(self) -> TensorSpec:
        return self.metadata.output


@dataclass(frozen=True)
class Exporter:
    format: str
    suffix: str
    config_cls: type
    export: Callable


_EXPORTERS: dict[str, Exporter] = {}


def register_exporter(fmt: str, suffix: str, config_cls: type):
    """Decorator: register ``fn(model, path, config, info) -> Artifact`` for format ``fmt``."""

    def wrap(fn: Callable) -> Callable:
        _EXPORTERS[fmt] = Exporter(fmt, suffix, config_cls, fn)
        return fn

    return wrap


def list_formats() -> list[str]:
    return sorted(_EXPORTERS)


def get_exporter(fmt: str) -> Exporter:
    try:
        return _EXPORTERS[fmt]
    except KeyError:
        raise UserError(f"unknown export format {fmt!r}; known formats: {', '.join(list_formats())}") from None


@contextlib.contextmanager
def staged(path: Path) -> Iterator[Path]:
    """Yield where to write ``path`` inside a temporary folder beside it.

    On success every file written there is moved next to ``path`` under the
    same name, the model file last (so a reader never sees a new model with an
    old sidecar); on failure nothing is moved and the folder is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield stage / path.name
        for f in sorted(stage.iterdir(), key=lambda f: f.name == path.name):
            os.replace(f, path.parent / f.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
