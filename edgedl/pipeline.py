"""``edgedl pipeline``: train (or load) a model, build every variant, benchmark them, write ``report.json``.

Run folder layout::

    OUT/model.keras            the trained original (zoo models), history.json
    OUT/eval.npz               the evaluation set every variant is measured on
    OUT/artifacts/NAME.tflite  one file per variant, its metadata inside; NAME.onnx
    OUT/compressed/RECIPE.json what each compression recipe did (sparsity, params, MACs)
    OUT/report.json            the comparison

A re-run with the same arguments reuses the trained model, and every
artifact still built from it with the same techniques.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple, Optional

from benchmarks.render import render
from benchmarks import BenchConfig, Variant, make_report, measure_all, measure_variant, print_table, write_report
from exporters import ModelInfo, NotApplicable, export, get_exporter
from runtime.errors import UserError
from runtime.files import write_json
from runtime.report import failed_record, is_ok, read_report
from runtime.tasks import get_task

from . import tasks
from .compress import compress, model_stats
from .compress._techniques import is_tf_keras, require_tf_keras
from .denoising import Noise
from .preprocessing import DEFAULT, model_normalization
from .provenance import built_with
from .models import list_models, model_entry
from .pipeline_models import TrainedModels
from .recipes import RECIPES, control_deltas, select_variants
from .terminal import Terminal
from .train import TrainConfig, load_keras_model



@dataclass(frozen=True)
class PipelineConfig:
    """One whole job. ``model`` is a registry name or the path of a saved Keras model;
    ``variants`` names variants or recipes (see ``edgedl.recipes``), all when empty."""

    model: str
    out: Path
    train: Optional[TrainConfig] = None  # None: the model's own defaults (see the registry)
    bench: BenchConfig = field(default_factory=BenchConfig)
    data: Optional[Path] = None
    eval_data: Optional[Path] = None
    variants: tuple = ()
    retrain: bool = False
    noise: Noise = field(default_factory=Noise)  # denoisers: training and evaluation noise
    search_drop: Optional[float] = None  # with a budget: the accuracy-aware search (edgedl.search) after the variants
    search_seconds: Optional[float] = None  # its time budget
    budget: Optional[dict] = None  # {"max_drop": D, "by": "latency"}: what the report marks as selected
    mean: Optional[tuple] = None  # the model's inputs are (pixel / 255 - mean) / std (see edgedl.preprocessing)
    std: Optional[tuple] = None


MODEL_FILES = (".onnx", ".tflite")  # another tool's model: measured (and, for .onnx, converted) as it is
USER_STUDENT = "width:0.5"  # a user's model is distilled into itself at half width


def _is_path(model: str) -> bool:
    suffixes = (".keras", ".h5", *MODEL_FILES)
    return model not in list_models() and (Path(model).exists() or Path(model).suffix.lower() in suffixes)


def one_line(exc: BaseException) -> str:
    """An exception as one line: the converter's own "error: ..." when it has one (TFLite's run to 90 lines)."""
    import re

    text = str(exc)
    found = re.search(r"error: ([^\n]+)", text)
    line = found.group(1) if found else next((ln for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    line = " ".join(line.split())
    return line[:300] if isinstance(exc, UserError) else f"{type(exc).__name__}: {line}"[:300]


def task_of(keras_model) -> str:
    """The task of a user's model, from its shape: one input and a vector of scores (classification), one
    input and an output of the input's shape (denoising), anything else (several inputs or outputs, boxes,
    masks, embeddings) generic: measured by its fidelity to the original."""
    if len(keras_model.inputs) == 1 and len(keras_model.outputs) == 1:
        given, made = tuple(keras_model.inputs[0].shape[1:]), tuple(keras_model.outputs[0].shape[1:])
        if len(made) == 1:
            return "classification"
        if len(made) == len(given) and all(a == b or None in (a, b) for a, b in zip(given, made)):
            return "denoising"
    return "generic"


class Started(NamedTuple):
    """What ``Pipeline.start`` gives: the zoo entry (None for a user's model), the task, the variants to build,
    the data, the original model and its path, and what every artifact records of it."""

    entry: object
    task: str
    specs: tuple
    data: tasks.Prepared
    original: object
    original_path: Path
    info: ModelInfo


class Pipeline(TrainedModels):
    """The stages of one job, run in order by ``run``."""

    def __init__(self, config: PipelineConfig, terminal: Optional[Terminal] = None):
        self.config = config
        self.out = Path(config.out)
        self.terminal = terminal or Terminal()
        self.is_user_model = _is_path(config.model)
        if not self.is_user_model:
            # Unknown model or variant names fail here, before any work, listing the known ones.
            entry = model_entry(config.model)
            select_variants(config.variants, entry.task, entry.recipes)
        self._compressed: dict = {}
        self._key_parts: Optional[tuple] = None  # (calibration hash, library versions) of the build keys
        self._data_fingerprint: Optional[str] = None
        defaults = {} if self.is_user_model else model_entry(config.model).train_defaults
        self.train_config = config.train or TrainConfig(**defaults)

    def log(self, message: str) -> None:
        self.terminal.say(message)

    def step(self, message: str) -> None:
        """A step line that moves the progress display on."""
        self.terminal.step(message)

    def prepare(self, task: str, image_shape: tuple) -> tasks.Prepared:
        cfg, tc = self.config, self.train_config
        prepared = tasks.prepare(task, cfg.data, cfg.eval_data, image_shape, cfg.noise, tc.batch_size, tc.seed)
        self.log(f"data: training on {prepared.train_source}; evaluating on {prepared.eval_size} images "
                 f"({prepared.eval_source})")  # fmt: skip
        return prepared

    def prepare_generic(self, model, norm) -> tasks.Prepared:
        """The inputs of a model without a known task (see ``tasks.generic``); it is compressed as it is."""
        from .model_data import describe_keras

        cfg, tc = self.config, self.train_config
        if cfg.retrain:
            raise UserError(f"{cfg.model}: --retrain needs targets, and a model with several inputs or outputs (or "
                            "an output that is neither scores nor an image) has none here; train it yourself")
        meta = describe_keras(model, norm)
        prepared = tasks.generic(model, meta, Path(cfg.model).name, cfg.data, cfg.eval_data, tc.batch_size, tc.seed,
                                 self.log)  # fmt: skip
        shown = ", ".join(f"{s.name} {s.shown()}" for s in meta.inputs)
        self.log(f"data: {prepared.eval_size} evaluation inputs ({prepared.eval_source}) for {shown}; no targets: "
                 "every variant is compared with the original")  # fmt: skip
        return prepared

    def baseline_metrics(self, name: str, data: tasks.Prepared, eval_path: Path) -> dict:
        """Train the registry's baseline for this model the same way (epochs, seed, data) and measure it on
        the same evaluation set: its metrics join the original's as ``<metric>_<baseline suffix>``."""
        prefix = f"{self.config.model}_"  # seq_denoiser_per_frame -> psnr_per_frame_baseline
        suffix = name[len(prefix):] if name.startswith(prefix) else name
        saved = self.baseline_model(name, data)
        self.step(f"benchmark: {name} (baseline)")
        record = measure_variant(Variant(name, "keras", "float32", saved, measurer="edgedl.measure_keras"),
                                 eval_path, self.config.bench, self.out)  # fmt: skip
        return {f"{metric}_{suffix}_baseline": value for metric, value in record["metrics"].items()}

    # -- compression ------------------------------------------------------------------------------

    def compressed(self, recipe_name: str, original, data: tasks.Prepared):
        """The recipe's compressed model (its parent's first), built once per run."""
        if recipe_name not in self._compressed:
            recipe = RECIPES[recipe_name]
            base, before = original, ()
            if recipe.parent:
                parent = self.compressed(recipe.parent, original, data)
                base, before = parent.model, parent.techniques
            configs = self.recipe_configs(recipe_name)
            student = next((c.student for c in configs if hasattr(c, "student")), None)
            self.log(f"compress: {recipe_name} ({', '.join(type(c).__name__ for c in configs)}"
                     f"{f', student {student}' if student else ''})")  # fmt: skip
            result = compress(base, configs, data.fit, data.task, seed=self.train_config.seed, before=before,
                              workdir=self.out / "compressed" / "backup" / recipe_name)  # fmt: skip
            self._compressed[recipe_name] = result
        return self._compressed[recipe_name]

    # -- export -----------------------------------------------------------------------------------

    def build_variants(self, specs, original, data: tasks.Prepared, info: ModelInfo) -> tuple[list, list]:
        """Export every spec, each on its own: a spec that fails is recorded with its one-line reason and the
        others go on. An artifact is reused when its build key (``edgedl.provenance``) matches.

        Returns the variants to measure and the failed records.
        """
        base_stats = model_stats(original)
        variants, failed = [], []
        for spec in specs:
            path, stats_path, key = self.planned(spec, info, data)
            try:
                stats = self._build_one(spec, path, stats_path, key, original, base_stats, data, info)
            except Exception as exc:  # noqa: BLE001 - one variant's failure is recorded; the run goes on
                if isinstance(exc, NotApplicable) and spec.name not in self.config.variants:  # not named: left out
                    self.log(f"skipped: {spec.name}: {exc}")
                    continue
                reason = one_line(exc)
                self.terminal.note(f"[red]failed[/]: {spec.name}: {reason}")
                failed.append(failed_record(spec.name, spec.format, spec.precision, spec.techniques, reason))
                continue
            variants.append(Variant(spec.name, spec.format, spec.precision, path, spec.techniques, extra=stats))
        return variants, failed

    def planned(self, spec, info: ModelInfo, data: tasks.Prepared) -> tuple:
        """(the artifact's path, its recipe's record, its build key) for ``spec``."""
        from .provenance import build_key, library_versions
        from .tasks import content_hash

        if self._key_parts is None:  # one run, one data: hashed and looked up once
            self._key_parts = content_hash(data.calibration, data.check), library_versions()
        calibration, versions = self._key_parts
        path = self.out / "artifacts" / f"{spec.name}{get_exporter(spec.format).suffix}"
        stats_path = self.out / "compressed" / f"{spec.recipe}.json"
        key = build_key(info.source_sha256, spec.recipe, spec.format, spec.precision, calibration,
                        data.fingerprint, self.train_config.seed, versions,
                        settings=self._settings(spec.recipe))  # fmt: skip
        return path, stats_path, key

    def reusable(self, spec, path: Path, stats_path: Path, key: str) -> bool:
        """Whether ``spec``'s artifact (and its recipe's record) were built as this run would build them."""
        return self._intact(path, key) and (spec.recipe is None or stats_path.exists())

    def _build_one(self, spec, path: Path, stats_path: Path, key: str, original, base_stats, data, info) -> dict:
        if self.reusable(spec, path, stats_path, key):
            self.step(f"export: {spec.name} (reused)")
            return base_stats if spec.recipe is None else json.loads(stats_path.read_text())
        model, stats = original, base_stats
        if spec.recipe is not None:
            result = self.compressed(spec.recipe, original, data)
            model, stats = result.model, result.stats
            write_json(stats_path, stats)
        self.step(f"export: {spec.name}")
        art = export(model, path, spec.format, replace(info, techniques=spec.techniques, build_key=key),
                     precision=spec.precision, calibration=data.calibration, check_inputs=data.check)  # fmt: skip
        agreement = f", top-1 agreement {art.top1_agreement:.3f}" if get_task(data.task).class_scores else ""
        self.log(f"        {art.size_bytes:,} bytes, max |Δ| vs its Keras model {art.max_abs_diff:.2g}{agreement}")
        return stats

    _intact = staticmethod(built_with)  # reuse an artifact only when its build key matches

    def _settings(self, name: Optional[str]) -> Optional[list]:
        """The recipe chain's settings as this run applies them (for the build key)."""
        chain = []
        while name is not None:
            chain.append({"recipe": name, "configs": [repr(c) for c in self.recipe_configs(name)]})
            name = RECIPES[name].parent
        return chain

    def recipe_configs(self, name: str) -> tuple:
        """A recipe's configs for this model: a user's model is distilled into a half-width copy of itself,
        never into the zoo's MNIST student; a zoo model into its registered student."""
        from .compress import DistillConfig

        configs = RECIPES[name].configs
        student = USER_STUDENT if self.is_user_model else model_entry(self.config.model).student
        if student is None:
            return configs
        return tuple(replace(c, student=student) if isinstance(c, DistillConfig) else c for c in configs)

    def _merged_with_previous(self, records: list, model: str, task: str) -> list:
        """A re-run of some variants into the same folder keeps the others' records (same model and data)."""
        previous_path = self.out / "report.json"
        if not previous_path.exists():
            return records
        try:
            previous = read_report(previous_path)
        except UserError:
            return records
        fingerprint = (previous.get("data") or {}).get("fingerprint")
        ran = {r["name"] for r in records}
        if previous["model"] != model or previous["task"] != task or fingerprint != self._data_fingerprint:
            return records
        fresh = {r["name"]: r for r in records}
        kept = [v["name"] for v in previous["variants"] if v["name"] not in ran]
        if kept:
            self.log(f"report: keeping {len(kept)} variants of the previous run ({', '.join(kept)})")
        merged = [fresh.pop(v["name"], None) or {k: x for k, x in v.items() if k != "metric_delta"}
                  for v in previous["variants"]]  # the previous order, this run's records in place
        return merged + list(fresh.values())

    # -- the whole job ----------------------------------------------------------------------------

    def start(self) -> "Started":
        """The model, its variants, its data and the original (trained, or reused): what every worker of a
        run does alike before the chief builds and measures the variants."""
        from ._tf import weights_sha256

        cfg = self.config
        user_model = load_keras_model(cfg.model) if self.is_user_model else None
        entry = None if user_model is not None else model_entry(cfg.model)
        task = task_of(user_model) if user_model is not None else entry.task
        image_shape = tuple(user_model.inputs[0].shape[1:]) if user_model is not None else entry.input_shape
        specs = select_variants(cfg.variants, task, entry.recipes if entry is not None else None)
        # data, model, an export and a measurement per variant, the original's measurement, the report
        self.terminal.steps.plan(2 * len(specs) + 4 + (1 if entry is not None and entry.baseline else 0))
        self.terminal.steps.begin("data")
        if user_model is not None and not is_tf_keras(user_model):
            if cfg.variants:
                for spec in specs:
                    if spec.recipe is not None:  # says, in one line, that compression needs tf-keras
                        require_tf_keras(user_model, f"{spec.name} ({', '.join(spec.techniques)})")
            else:
                specs = tuple(s for s in specs if s.recipe is None)
                self.log("model: a Keras 3 model: post-training variants only (compression needs tf-keras)")
        norm, why = model_normalization(user_model, cfg.mean, cfg.std)
        if tasks.host_task(task).prepare is None:  # no data of its own: inputs read for the model
            data = self.prepare_generic(user_model, norm)
        else:
            data = self.prepare(task, image_shape).normalized(norm)
        if norm != DEFAULT:
            self.log(f"input: {norm.shown()} ({why})")
        self._data_fingerprint = data.fingerprint
        self.terminal.steps.begin("model")
        original, original_path = self.original(data, user_model)
        classes = original.outputs[0].shape[-1]
        if get_task(task).class_scores and classes != len(data.labels):
            raise UserError(f"{cfg.model}: the model has {classes} outputs but the data has "
                            f"{len(data.labels)} classes; give matching data")  # fmt: skip
        decode_with = tasks.host_task(task).decoding  # what the device decides by (an embedder's threshold)
        info = ModelInfo(
            task=task,
            labels=data.labels,
            normalization=norm,
            source_sha256=weights_sha256(original),
            decoding=tuple(sorted(decode_with(original, data).items())) if decode_with else (),
        )
        return Started(entry, task, specs, data, original, original_path, info)

    def run(self) -> dict:
        cfg = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        entry, task, specs, data, original, original_path, info = self.start()
        eval_path = self.out / "eval.npz"
        data.save_eval(eval_path)
        variants = [Variant("original", "keras", "float32", original_path, (), measurer="edgedl.measure_keras",
                            extra=model_stats(original))]  # fmt: skip
        built, failed = self.build_variants(specs, original, data, info)
        variants += built
        records = measure_all(variants, eval_path, cfg.bench, root=self.out, cache_dir=self.out / "measurements",
                              progress=lambda name, reused: self.step(f"benchmark: {name}{' (reused)' * reused}"))
        if not is_ok(records[0]):
            raise UserError(f"{cfg.model}: the original model could not be measured ({records[0]['error']})")
        order = {s.name: i for i, s in enumerate(specs)}
        records = [records[0], *sorted(records[1:] + failed, key=lambda r: order.get(r["name"], len(order)))]
        if cfg.search_drop is not None:
            from .search import run_search

            searched, tried = run_search(self, records[0], original, data, info, eval_path)
            records, specs = records + searched, tuple(specs) + tried
        records = control_deltas(records, specs, task)
        if entry is not None and entry.baseline:
            records[0]["metrics"].update(self.baseline_metrics(entry.baseline, data, eval_path))
        records = self._merged_with_previous(records, str(cfg.model), task)
        report = make_report(str(cfg.model), task, records, cfg.bench.threads,
                             extra={"data": {"train": data.train_source, "eval": data.eval_source,
                                             "eval_size": data.eval_size, "fingerprint": data.fingerprint},
                                    **({"budget": cfg.budget} if cfg.budget else {})})  # fmt: skip
        write_report(self.out / "report.json", report)
        bad = [r for r in report["variants"] if not is_ok(r)]
        if bad:
            self.terminal.note(f"[yellow]{len(bad)} of {len(report['variants'])} variants failed[/] "
                     f"({', '.join(r['name'] for r in bad)}): their reasons are in the report")  # fmt: skip
        self.terminal.steps.begin("report")
        written = render([self.out / "report.json"], self.out / "report")
        self.terminal.steps.finish()
        print_table(report, self.terminal.out)
        self.log(f"report: {self.out / 'report.json'}, {written['html']}")
        return report


def run_pipeline(config: PipelineConfig, terminal: Optional[Terminal] = None) -> Optional[dict]:
    """Run the whole job and return the report (also written to ``OUT/report.json``); another worker than
    the chief of a cluster does its share of the training and compression, and returns None."""
    from . import distribute

    pipeline = Pipeline(config, terminal)
    artifact = Path(config.model).suffix.lower() in MODEL_FILES  # another tool's model: measured, not trained
    if not distribute.current().is_chief:
        from .pipeline_worker import follow

        return None if artifact else follow(pipeline)
    if artifact:
        from . import artifact_pipeline

        return artifact_pipeline.run(config, pipeline.terminal)
    return pipeline.run()
