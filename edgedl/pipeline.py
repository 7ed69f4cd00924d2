"""``edgedl pipeline``: train (or load) a model, export every variant, benchmark them, write ``report.json``.

Run folder layout::

    OUT/model.keras         the trained original (zoo models) and history.json
    OUT/eval.npz            the evaluation set every variant is measured on
    OUT/artifacts/*.tflite  one file per variant (+ .json sidecar); *.onnx
    OUT/report.json         the comparison

A re-run with the same arguments reuses a trained model and artifacts that
are still intact and built from the same model.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

from rich.console import Console

from benchmarks import BenchConfig, Variant, make_report, measure_all, print_table, write_report
from exporters import ModelInfo, export, get_exporter
from runtime import read_metadata
from runtime.errors import UserError
from runtime.metadata import Normalization

from . import datasets
from .models import list_models, model_entry
from .train import TrainConfig, load_keras_model, train

# (format, precision) of every post-training variant, in report order.
POST_TRAINING = (
    ("tflite", "float32"),
    ("tflite", "float16"),
    ("tflite", "dynamic"),
    ("tflite", "int8"),
    ("onnx", "float32"),
    ("onnx", "dynamic"),
    ("onnx", "int8"),
)
ALL_VARIANTS = tuple(f"{fmt}_{prec}" for fmt, prec in POST_TRAINING)
CALIBRATION_SAMPLES = 300


@dataclass(frozen=True)
class PipelineConfig:
    """One whole job. ``model`` is a registry name or the path of a saved Keras model."""

    model: str
    out: Path
    train: TrainConfig = field(default_factory=TrainConfig)
    bench: BenchConfig = field(default_factory=BenchConfig)
    data: Optional[Path] = None
    eval_data: Optional[Path] = None
    variants: tuple = ALL_VARIANTS
    retrain: bool = False

    def __post_init__(self):
        unknown = [v for v in self.variants if v not in ALL_VARIANTS]
        if unknown:
            raise UserError(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(ALL_VARIANTS)}")


def _is_path(model: str) -> bool:
    return model not in list_models() and (Path(model).exists() or Path(model).suffix in (".keras", ".h5"))


def _task_of(keras_model) -> str:
    """Infer the task of a user's model from its output: a vector of scores, or an image."""
    shape = keras_model.outputs[0].shape
    return "classification" if len(shape) == 2 else "denoising"


class Pipeline:
    """The stages of one job, each callable on its own (the CLI runs them in order)."""

    def __init__(self, config: PipelineConfig, console: Optional[Console] = None):
        self.config = config
        self.out = Path(config.out)
        self.console = console or Console(stderr=True)
        self.is_user_model = _is_path(config.model)
        if not self.is_user_model:
            model_entry(config.model)  # unknown names fail here, listing the known ones

    def log(self, message: str) -> None:
        self.console.print(f"[bold cyan]edgedl[/] {message}")

    def input_shape(self, keras_model=None) -> tuple:
        if keras_model is not None:
            return tuple(keras_model.inputs[0].shape[1:])
        return model_entry(self.config.model).input_shape

    def load_data(self, image_shape: tuple):
        cfg = self.config
        train_data, eval_data = datasets.train_eval(cfg.data, cfg.eval_data, image_shape, cfg.train.seed)
        self.log(f"data: {len(train_data)} training images ({train_data.source}), "
                 f"{len(eval_data)} evaluation images ({eval_data.source})")  # fmt: skip
        return train_data, eval_data

    def model(self, train_data, eval_data, user_model=None):
        """The original: a user's saved model as it is, or a zoo model trained (or reused) in OUT."""
        cfg = self.config
        if user_model is not None and not cfg.retrain:
            self.log(f"model: {cfg.model} (loaded, not retrained)")
            return user_model, Path(cfg.model)
        saved = self.out / "model.keras"
        marker = self.out / "train_config.json"
        wanted = {"model": str(cfg.model), "train": asdict(cfg.train), "data": str(cfg.data), "labels": list(train_data.labels)}
        if saved.exists() and marker.exists() and json.loads(marker.read_text()) == wanted:
            self.log(f"model: reusing {saved} (trained with the same settings)")
            return load_keras_model(saved), saved
        entry = None if self.is_user_model else model_entry(cfg.model)
        self.log(f"train: {cfg.model}, {cfg.train.epochs} epochs")
        if entry is not None:
            build: Callable = lambda: entry.build(num_classes=len(train_data.labels))  # noqa: E731
            task = entry.task
        else:
            build = lambda: load_keras_model(cfg.model)  # noqa: E731
            task = _task_of(user_model)
        model = train(build, task, train_data, eval_data, cfg.train, self.out)
        marker.write_text(json.dumps(wanted, indent=2) + "\n")
        return model, saved

    def export_all(self, keras_model, info: ModelInfo, calibration, check) -> list[Variant]:
        """Export every asked-for variant; reuse one already exported from this very model."""
        variants = []
        for fmt, precision in POST_TRAINING:
            name = f"{fmt}_{precision}"
            if name not in self.config.variants:
                continue
            path = self.out / "artifacts" / f"{name}{get_exporter(fmt).suffix}"
            if self._intact(path, info.source_sha256, precision):
                self.log(f"export: {name} (reused)")
            else:
                self.log(f"export: {name}")
                art = export(keras_model, path, fmt, info, precision=precision, calibration=calibration,
                             check_inputs=check)  # fmt: skip
                self.log(f"        {art.size_bytes:,} bytes, max |Δ| vs Keras {art.max_abs_diff:.2g}, "
                         f"top-1 agreement {art.top1_agreement:.3f}")  # fmt: skip
            variants.append(Variant(name, fmt, precision, path, info.techniques))
        return variants

    @staticmethod
    def _intact(path: Path, source_sha256: str, precision: str) -> bool:
        if not path.exists():
            return False
        try:
            meta = read_metadata(path)
        except UserError:
            return False
        return meta.source_sha256 == source_sha256 and meta.precision == precision

    def run(self) -> dict:
        from ._tf import weights_sha256

        cfg = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        user_model = load_keras_model(cfg.model) if self.is_user_model else None
        train_data, eval_data = self.load_data(self.input_shape(user_model))
        keras_model, keras_path = self.model(train_data, eval_data, user_model)
        task = _task_of(keras_model)
        classes = keras_model.outputs[0].shape[-1]
        if task == "classification" and classes != len(train_data.labels):
            raise UserError(f"{cfg.model}: the model has {classes} outputs but the data has "
                            f"{len(train_data.labels)} classes; give matching data")  # fmt: skip
        eval_path = self.out / "eval.npz"
        eval_data.save_npz(eval_path, task)
        info = ModelInfo(
            task=task,
            labels=train_data.labels if task == "classification" else None,
            normalization=Normalization(scale=1.0 / 255.0, offset=0.0),
            source_sha256=weights_sha256(keras_model),
        )
        calibration = train_data.x[:CALIBRATION_SAMPLES]
        variants = [Variant("original", "keras", "float32", keras_path, (), measurer="edgedl.measure_keras")]
        variants += self.export_all(keras_model, info, calibration, eval_data.x[:64])
        records = measure_all(variants, eval_path, cfg.bench, root=self.out,
                              progress=lambda name: self.log(f"benchmark: {name}"))  # fmt: skip
        report = make_report(str(cfg.model), task, records, cfg.bench.threads,
                             extra={"data": {"train": train_data.source, "eval": eval_data.source,
                                             "eval_size": len(eval_data)}})  # fmt: skip
        write_report(self.out / "report.json", report)
        print_table(report)
        self.log(f"report: {self.out / 'report.json'}")
        return report


def run_pipeline(config: PipelineConfig) -> dict:
    """Run the whole job and return the report (also written to ``OUT/report.json``)."""
    return Pipeline(config).run()
