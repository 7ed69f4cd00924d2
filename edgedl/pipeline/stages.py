"""``edgedl pipeline``: train (or load) a model, build every variant, benchmark them, write the report.

Run folder layout (``runtime.runfolder`` names it for host and device alike)::

    OUT/model.keras            the trained original (zoo models), history.json
    OUT/eval.npz               the evaluation set every variant is measured on
    OUT/artifacts/NAME.tflite  one file per variant, its metadata inside; NAME.onnx
    OUT/compressed/RECIPE.json what each compression recipe did (sparsity, params, MACs)
    OUT/report.json            the comparison

The stages run in order, each handing the run context (``Run``) to the next:
``start`` (the model, its variants, its data, the original trained or
reused), ``build`` (compress and export each variant), ``measure``, the
optional ``search``, then ``report``, written once. A re-run with the same
arguments reuses the trained model, and every artifact still built from it
with the same techniques.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from benchmarks import Variant, make_report, measure_all, measure_variant
from exporters import ModelInfo, NotApplicable, activation_type, export, get_exporter
from exporters.tfkeras import weights_sha256
from runtime.errors import UserError, one_line
from runtime.report import failed_record, is_ok
from runtime.runfolder import EVAL_FILE, read_compression, write_compression
from runtime.tasks import get_task

from .. import tasks
from ..compress import DistillConfig, compress, model_stats
from ..data.datasets import Reading
from ..data.model_data import describe_keras
from ..data.preprocessing import DEFAULT, RAW_PIXELS, model_normalization
from ..models import model_entry
from ..terminal import Terminal
from ..training import distribute
from ..training.model_io import is_tf_keras, load_keras_model
from ..training.twin import is_keras3, tf_keras_twin
from ..training.train import TrainConfig
from . import foreign, keras_measure
from .config import USER_STUDENT, PipelineConfig
from .provenance import build_key, built_with, library_versions
from .report import merged_with_previous, publish
from .recipes import RECIPES, control_deltas, search_candidates, select_variants
from .search import search
from .trained import Trainer


@dataclass
class Run:
    """The run context every stage after ``start`` is handed: the zoo entry (None for a user's model), the
    task, the variants to build, the data, the original model and its path, and what every artifact records
    of it."""

    entry: object
    task: str
    specs: tuple
    data: tasks.Prepared
    original: object
    original_path: Path
    info: ModelInfo


class Pipeline:
    """The stages of one job; ``run`` runs them in order (``follow`` is another worker's share of them)."""

    def __init__(self, config: PipelineConfig, terminal: Optional[Terminal] = None):
        self.config = config
        self.out = Path(config.out)
        self.terminal = terminal or Terminal()
        self.is_user_model = config.is_user_model
        # A zoo model's entry, looked up once; an unknown model or variant name fails here, before any work,
        # listing the known ones.
        self.entry = None if self.is_user_model else model_entry(config.model)
        self.specs = None if self.entry is None else select_variants(config.variants, self.entry.task,
                                                                     self.entry.recipes)  # fmt: skip
        if self.entry is not None:
            self.entry.check_options(dict(config.model_options))
        elif config.model_options or config.weights:
            raise UserError(f"{config.model}: --width, --input-size and --weights are for a zoo model; a saved "
                            "model keeps its own architecture and weights")  # fmt: skip
        self.train_config = config.train or TrainConfig(**({} if self.entry is None else self.entry.train_defaults))
        self.trainer = Trainer(config, self.out, self.train_config, self.terminal)
        self._compressed: dict = {}
        self._key_parts: Optional[tuple] = None  # (calibration hash, library versions) of the build keys

    def log(self, message: str) -> None:
        self.terminal.say(message)

    def step(self, message: str) -> None:
        """A step line that moves the progress display on."""
        self.terminal.step(message)

    # -- start: the model, its variants, its data, the original ------------------------------------

    def start(self) -> Run:
        """What every worker of a run does alike before the chief builds and measures the variants."""
        cfg, entry = self.config, self.entry
        if cfg.eval_labels is not None:
            raise UserError("--eval-labels is for a model file (.onnx, .tflite) evaluated on an .npy; for a Keras "
                            "model give an .npz with x and y")  # fmt: skip
        user_model = load_keras_model(cfg.model) if entry is None else None
        task = tasks.task_of(user_model) if entry is None else entry.task
        specs = self.specs if entry is not None else select_variants(cfg.variants, task)
        # data, model, an export and a measurement per variant, the original's measurement, the report
        self.terminal.steps.plan(2 * len(specs) + 4 + (1 if entry is not None and entry.baseline else 0))
        self.terminal.steps.begin("data")
        if user_model is not None and is_keras3(user_model):
            user_model, specs = self._in_tf_keras(user_model, specs)
        norm, why = model_normalization(user_model, cfg.mean, cfg.std)
        if entry is not None and entry.raw_pixels and cfg.mean is None:
            norm, why = RAW_PIXELS, f"{entry.name} scales 0–255 pixels itself"
        if tasks.host_task(task).prepare is None:  # no data of its own: inputs read for the model
            data = self._generic_data(user_model, norm)
        else:
            data = tasks.normalized(self._data(task, user_model), norm)
        if norm != DEFAULT:
            self.log(f"input: {norm.shown()} ({why})")
        self.terminal.steps.begin("model")
        original, original_path = self.trainer.original(data, entry, user_model)
        classes = original.outputs[0].shape[-1]
        numbered = data.labels is not None and data.labels == tuple(str(i) for i in range(len(data.labels)))
        if get_task(task).class_scores and numbered and classes > len(data.labels):  # the model's classes
            data = tasks.with_labels(data, tuple(str(i) for i in range(classes)))
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
            resize=data.resize,
        )
        return Run(entry, task, specs, data, original, original_path, info)

    def _in_tf_keras(self, model, specs: tuple) -> tuple:
        """A Keras 3 model's tf-keras twin, which every technique can compress (tfmot works on tf-keras alone),
        and the variants; without a twin, the Keras 3 model and its post-training variants (a compression named
        with --variants is refused in one line saying why)."""
        try:
            twin = tf_keras_twin(model)
        except UserError as exc:
            named = [s.name for s in specs if s.recipe is not None]
            if self.config.variants and named:
                raise UserError(f"{self.config.model}: {', '.join(named)} need a tf-keras model: {exc}") from None
            self.log(f"model: a Keras 3 model, post-training variants only: {exc}")
            return model, tuple(s for s in specs if s.recipe is None)
        self.log("model: a Keras 3 model, rebuilt in tf-keras with the same layers, weights and outputs "
                 "(tensorflow-model-optimization compresses tf-keras models)")  # fmt: skip
        return twin, specs

    def _data(self, task: str, user_model) -> tasks.Prepared:
        cfg, tc = self.config, self.train_config
        shape = (self.entry.input_shape_for(dict(cfg.model_options)) if user_model is None
                 else tuple(user_model.inputs[0].shape[1:]))  # fmt: skip
        reading = Reading(cfg.resize, cfg.augment, self.log, cfg.train_size)
        prepared = tasks.prepare(task, cfg.data, cfg.eval_data, shape, cfg.noise, tc.batch_size, tc.seed, reading)
        self.log(f"data: training on {prepared.train_source}; evaluating on {prepared.eval_size} images "
                 f"({prepared.eval_source}){tasks.too_few(prepared.eval_size)}")  # fmt: skip
        return prepared

    def _generic_data(self, model, norm) -> tasks.Prepared:
        """The inputs of a model without a known task (see ``tasks.generic``); it is compressed as it is."""
        cfg, tc = self.config, self.train_config
        if cfg.retrain:
            raise UserError(f"{cfg.model}: --retrain needs targets, and a model with several inputs or outputs (or "
                            "an output that is neither scores nor an image) has none here; train it yourself")
        meta = describe_keras(model, norm)
        prepared = tasks.generic(model, meta, Path(cfg.model).name, cfg.data, cfg.eval_data, tc.batch_size, tc.seed,
                                 self.log)  # fmt: skip
        shown = ", ".join(f"{s.name} {s.shown()}" for s in meta.inputs)
        self.log(f"data: {prepared.eval_size} evaluation inputs ({prepared.eval_source}) for {shown}; no targets: "
                 f"every variant is compared with the original{tasks.too_few(prepared.eval_size)}")  # fmt: skip
        return prepared

    # -- build: compress and export ----------------------------------------------------------------

    def compressed(self, recipe_name: str, run: Run):
        """The recipe's compressed model (its parent's first), built once per run."""
        if recipe_name not in self._compressed:
            recipe = RECIPES[recipe_name]
            base, before = run.original, ()
            if recipe.parent:
                parent = self.compressed(recipe.parent, run)
                base, before = parent.model, parent.techniques
            configs = self.recipe_configs(recipe_name)
            student = next((c.student for c in configs if hasattr(c, "student")), None)
            self.log(f"compress: {recipe_name} ({', '.join(type(c).__name__ for c in configs)}"
                     f"{f', student {student}' if student else ''})")  # fmt: skip
            result = compress(base, configs, run.data.fit, run.data.task, seed=self.train_config.seed, before=before,
                              workdir=self.out / "compressed" / "backup" / recipe_name)  # fmt: skip
            self._compressed[recipe_name] = result
        return self._compressed[recipe_name]

    def build(self, run: Run, specs) -> tuple[list, list]:
        """Export every spec, each on its own: a spec that fails is recorded with its one-line reason and the
        others go on. An artifact is reused when its build key (``provenance``) matches.

        Returns the variants to measure and the failed records.
        """
        base_stats = model_stats(run.original)
        variants, failed = [], []
        for spec in specs:
            path, stats_path, key = self.planned(spec, run)
            try:
                stats = self._build_one(spec, path, stats_path, key, base_stats, run)
            except Exception as exc:  # noqa: BLE001 - one variant's failure is recorded; the run goes on
                if isinstance(exc, NotApplicable) and spec.name not in self.config.variants:  # not named: left out
                    self.log(f"skipped: {spec.name}: {exc}")
                    continue
                reason = one_line(exc, typed=True)
                self.terminal.note(f"[red]failed[/]: {spec.name}: {reason}")
                failed.append(failed_record(spec.name, spec.format, spec.precision, spec.techniques, reason))
                continue
            variants.append(Variant(spec.name, spec.format, spec.precision, path, spec.techniques, extra=stats))
        return variants, failed

    def planned(self, spec, run: Run) -> tuple:
        """(the artifact's path, its recipe's record, its build key) for ``spec``."""
        if self._key_parts is None:  # one run, one data: hashed and looked up once
            self._key_parts = tasks.content_hash(run.data.calibration, run.data.check), library_versions()
        calibration, versions = self._key_parts
        path = self.out / "artifacts" / f"{spec.name}{get_exporter(spec.format).suffix}"
        stats_path = self.out / "compressed" / f"{spec.recipe}.json"
        key = build_key(run.info.source_sha256, spec.recipe, spec.format, spec.precision, calibration,
                        run.data.fingerprint, self.train_config.seed, versions,
                        settings=self._settings(spec.recipe), form=self.export_options(spec))  # fmt: skip
        return path, stats_path, key

    def reusable(self, spec, path: Path, stats_path: Path, key: str) -> bool:
        """Whether ``spec``'s artifact (and its recipe's record) were built as this run would build them."""
        return built_with(path, key) and (spec.recipe is None or read_compression(stats_path) is not None)

    def _build_one(self, spec, path: Path, stats_path: Path, key: str, base_stats: dict, run: Run) -> dict:
        if self.reusable(spec, path, stats_path, key):
            self.step(f"export: {spec.name} (reused)")
            return base_stats if spec.recipe is None else read_compression(stats_path)["after"]
        model, stats = run.original, base_stats
        if spec.recipe is not None:
            result = self.compressed(spec.recipe, run)
            model, stats = result.model, result.stats
            write_compression(stats_path, stats, result.techniques, self.recipe_configs(spec.recipe))
        self.step(f"export: {spec.name}")
        data = run.data
        art = export(model, path, spec.format, replace(run.info, techniques=spec.techniques, build_key=key),
                     precision=spec.precision, calibration=data.calibration, check_inputs=data.check,
                     **self.export_options(spec))  # fmt: skip
        agreement = f", top-1 agreement {art.top1_agreement:.3f}" if get_task(data.task).class_scores else ""
        self.log(f"        {art.size_bytes:,} bytes, max |Δ| vs its Keras model {art.max_abs_diff:.2g}{agreement}")
        return stats

    def export_options(self, spec) -> dict:
        """The exporter's options for ``spec`` beyond its precision: an int8 .onnx's activation type, resolved
        for this machine (so that a run on another processor builds its own), and its calibration method."""
        if spec.format != "onnx" or not spec.precision.startswith("int8"):
            return {}
        return {"activations": activation_type(self.config.onnx_activations)[0],
                "calibration_method": self.config.onnx_calibration}

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
        configs = RECIPES[name].configs
        student = USER_STUDENT if self.entry is None else self.entry.student
        if student is None:
            return configs
        return tuple(replace(c, student=student) if isinstance(c, DistillConfig) else c for c in configs)

    # -- measure and search ------------------------------------------------------------------------

    def measure(self, variants: list, eval_path: Path) -> list:
        return measure_all(variants, eval_path, self.config.bench, root=self.out, cache_dir=self.out / "measurements",
                           progress=lambda name, reused: self.step(f"benchmark: {name}{' (reused)' * reused}"))

    def baseline_metrics(self, run: Run, eval_path: Path) -> dict:
        """Train the registry's baseline for this model the same way (epochs, seed, data) and measure it on
        the same evaluation set: its metrics join the original's as ``<metric>_<baseline suffix>``."""
        name = run.entry.baseline
        prefix = f"{self.config.model}_"  # seq_denoiser_per_frame -> psnr_per_frame_baseline
        suffix = name[len(prefix):] if name.startswith(prefix) else name
        saved = self.trainer.baseline_model(name, run.data)
        self.step(f"benchmark: {name} (baseline)")
        record = measure_variant(Variant(name, "keras", "float32", saved, measurer=keras_measure.__name__),
                                 eval_path, self.config.bench, self.out)  # fmt: skip
        return {f"{metric}_{suffix}_baseline": value for metric, value in record["metrics"].items()}

    def search(self, run: Run, original_record: dict, eval_path: Path) -> tuple[list, tuple]:
        """The accuracy-aware search (``search.search``): candidates built and measured like the variants,
        into the same folder; returns their records and specs."""
        from runtime.report import fidelity_metric, metric_delta, primary_metric

        if not is_tf_keras(run.original):
            self.log("search: skipped (filter pruning needs a tf-keras model)")
            return [], ()
        metric = primary_metric(run.task) or fidelity_metric([original_record])
        base = original_record["metrics"].get(metric)
        records, specs = [], []

        def try_one(name: str) -> Optional[float]:
            chosen = select_variants((name,), run.task)
            self.terminal.steps.plan(2 * len(chosen))
            built, failed = self.build(run, chosen)
            measured = self.measure(built, eval_path)
            records.extend(measured + failed)
            specs.extend(chosen)
            losses = [-metric_delta(r["metrics"][metric], base, metric) for r in measured
                      if is_ok(r) and metric in r["metrics"]]  # fmt: skip
            return min(losses, default=None)

        candidates = search_candidates(run.task)
        self.log(f"search: filter pruning beyond 50 % ({', '.join(candidates)}) within {self.config.search_drop:g} "
                 f"of the original's {metric}")  # fmt: skip
        outcome = search(candidates, try_one, self.config.search_drop, self.config.search_seconds)
        self.log(f"search: stopped: {outcome.stopped}")
        return records, tuple(specs)

    # -- report ------------------------------------------------------------------------------------

    def report(self, run: Run, records: list) -> dict:
        """The report, made and written once (``report.json``), then rendered from memory."""
        cfg, data = self.config, run.data
        records = merged_with_previous(records, self.out, str(cfg.model), run.task, data.fingerprint, self.log)
        report = make_report(str(cfg.model), run.task, records, cfg.bench.threads,
                             extra={"data": {"train": data.train_source, "eval": data.eval_source,
                                             "eval_size": data.eval_size, "fingerprint": data.fingerprint},
                                    **({"budget": cfg.budget} if cfg.budget else {})})  # fmt: skip
        return publish(report, self.out, self.terminal, str(cfg.model))

    # -- the whole job -----------------------------------------------------------------------------

    def run(self) -> dict:
        cfg = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        run = self.start()
        eval_path = self.out / EVAL_FILE
        run.data.save_eval(eval_path)
        original = Variant("original", "keras", "float32", run.original_path, (), measurer=keras_measure.__name__,
                           extra=model_stats(run.original))  # fmt: skip
        built, failed = self.build(run, run.specs)
        records = self.measure([original, *built], eval_path)
        if not is_ok(records[0]):
            raise UserError(f"{cfg.model}: the original model could not be measured ({records[0]['error']})")
        order = {s.name: i for i, s in enumerate(run.specs)}
        records = [records[0], *sorted(records[1:] + failed, key=lambda r: order.get(r["name"], len(order)))]
        specs = run.specs
        if cfg.search_drop is not None:
            searched, tried = self.search(run, records[0], eval_path)
            records, specs = records + searched, tuple(specs) + tried
        records = control_deltas(records, specs, run.task)
        if run.entry is not None and run.entry.baseline:
            records[0]["metrics"].update(self.baseline_metrics(run, eval_path))
        return self.report(run, records)

    def follow(self) -> None:
        """Another worker's share of a run on a cluster: the chief's training and compression, in the chief's
        order, and nothing written.

        Every worker of a multi-worker run executes the same steps (each training step sums the gradients of
        all of them), so another worker than the chief repeats the chief's choices: the same model trained or
        reused, then each variant that needs a compressed model (its artifact not built as this run would
        build it) compressed, in the order of the variants, then the baseline. The choices read the run
        folder as it was before the run (the chief writes an artifact only after the compression every worker
        took part in); a compression that fails fails in every worker, and the chief records it. Exports,
        measurements and the report are the chief's alone.
        """
        run = self.start()
        for spec in run.specs:
            if spec.recipe is None or self.reusable(spec, *self.planned(spec, run)):
                continue
            try:
                self.compressed(spec.recipe, run)
            except Exception:  # noqa: BLE001 - the chief records the failure; the run goes on, here as there
                continue
        if run.entry is not None and run.entry.baseline:
            self.trainer.baseline_model(run.entry.baseline, run.data)


def run_pipeline(config: PipelineConfig, terminal: Optional[Terminal] = None) -> Optional[dict]:
    """Run the whole job and return the report (also written to ``OUT/report.json``); another worker than
    the chief of a cluster does its share of the training and compression, and returns None."""
    pipeline = Pipeline(config, terminal)
    if not distribute.current().is_chief:
        return None if config.is_model_file else pipeline.follow()
    if config.is_model_file:  # another tool's model: measured, not trained
        return foreign.run(config, pipeline.terminal)
    return pipeline.run()
