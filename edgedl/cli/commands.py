"""``edgedl``'s commands, each a thin call into the library (``parser`` reads the command line).

    edgedl models
    edgedl train --model cnn --out runs/cnn
    edgedl export runs/cnn/model.keras --format tflite --precision int8 --out cnn_int8.tflite
    edgedl pipeline --model cnn --out runs/cnn
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

from runtime.errors import UserError
from runtime.tasks import get_task

from ..training.cluster import launched, on_cluster
from .inputs import (compress_configs, log_name, model_options, prepare, prepare_model, setup_distribution,
                     train_config)  # fmt: skip


def _print_columns(rows: list) -> None:
    """Rows of text as aligned columns (each as wide as its widest cell), a header first."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[-1]]))


def cmd_models(args) -> int:
    from ..models import list_models, model_entry

    rows = [("model", "task", "input", "description")]
    for name in list_models():
        e = model_entry(name)
        rows.append((name, e.task, "×".join("any" if d is None else str(d) for d in e.input_shape), e.description))
    _print_columns(rows)
    return 0


def cmd_train(args) -> int:
    from ..terminal import Terminal

    if (code := launched(args)) is not None:
        return code
    terminal = Terminal(quiet=args.quiet, verbose=args.verbose)
    # TensorFlow is imported inside: its start-up lines and Keras's bars go to OUT/log.txt, a line per epoch here.
    with terminal.capture(args.out, f"edgedl train --model {args.model} --out {args.out}", log_name()):
        from .. import tasks
        from ..data.preprocessing import RAW_PIXELS
        from ..models import build_for_task, model_entry
        from ..training.model_io import load_matching_weights
        from ..training.train import train

        dist = setup_distribution(args)
        entry = model_entry(args.model)
        options = entry.check_options(dict(model_options(args)))
        config = train_config(args, args.model)
        data = prepare(args, entry.task, entry.input_shape_for(options), config.batch_size, config.seed)
        if entry.raw_pixels:
            data = tasks.normalized(data, RAW_PIXELS)
        where = dist.describe(config.batch_size)
        terminal.say(f"train: {args.model}, {config.epochs} epochs on {data.train_source}, {where}")

        def build():
            model = build_for_task(entry, data.labels, options)
            if args.weights is not None:
                loaded, total = load_matching_weights(model, args.weights)
                terminal.say(f"weights: {loaded} of {total} layers from {args.weights}")
            return model

        record = {"model": args.model, "data": data.fingerprint, "options": options,
                  "weights": str(args.weights) if args.weights else None}  # what a backup must have been made with
        model = train(build, entry.task, data.fit, data.validation, config, args.out,
                      on_epoch=terminal.epochs(config.epochs, "train"), record=record, say=terminal.say)  # fmt: skip
        terminal.steps.finish()
        if dist.is_chief:
            terminal.out.print(f"saved {Path(args.out) / 'model.keras'} ({model.count_params():,} parameters)",
                               soft_wrap=True)  # fmt: skip
    return 0


def cmd_export(args) -> int:
    from exporters import ModelInfo, export
    from exporters.tfkeras import weights_sha256
    from runtime.cli import parse_floats
    from runtime.signing import load_private_key, sign_file

    from .. import tasks
    from ..data.preprocessing import model_normalization
    from ..training.model_io import load_keras_model

    key = load_private_key(args.sign) if args.sign else None  # a bad key is said before the export
    model = load_keras_model(args.model)
    task = args.task or tasks.task_of(model)
    norm, _ = model_normalization(model, parse_floats(args.mean, "--mean"), parse_floats(args.std, "--std"))
    data = prepare_model(args, model, task, norm)
    labels = tuple(args.labels.split(",")) if args.labels else data.labels
    classes = model.outputs[0].shape[-1]
    if not args.labels and labels and classes and len(labels) != classes:  # the default data's classes, not its
        print(f"note: {args.model} has {classes} classes, the data {len(labels)}: the artifact names none (give "
              "--labels)", file=sys.stderr)  # fmt: skip
        labels = None
    info = ModelInfo(task=task, labels=labels if get_task(task).class_scores else None,
                     normalization=norm, source_sha256=weights_sha256(model), resize=args.resize)  # fmt: skip
    options = {"activations": args.onnx_activations, "calibration_method": args.onnx_calibration} \
        if args.format == "onnx" else {}  # fmt: skip
    art = export(model, args.out, args.format, info, precision=args.precision, calibration=data.calibration,
                 check_inputs=data.check, **options)  # fmt: skip
    print(f"wrote {art.path} ({art.format}, {art.precision}, {art.size_bytes:,} bytes, sha256 {art.sha256[:12]}…)")
    if key is not None:
        print(f"signed: {sign_file(art.path, key)}")
    return 0


def cmd_compress(args) -> int:
    """Compress a saved model, export it, and write what the compression did and what it cost."""
    import numpy as np

    from exporters import ModelInfo, export
    from exporters.tfkeras import weights_sha256
    from runtime.runfolder import write_compression

    from .. import tasks
    from ..compress import compress, model_stats
    from ..data.preprocessing import model_normalization
    from ..training.model_io import load_keras_model, save_model
    from ..training.twin import as_tf_keras

    configs = compress_configs(args)
    if (code := launched(args)) is not None:
        return code
    dist = setup_distribution(args)  # before the model loads: a multi-worker strategy must come first
    model = as_tf_keras(load_keras_model(args.model))  # a Keras 3 model: its tf-keras twin, which tfmot takes
    task = tasks.task_of(model)
    data = prepare_model(args, model, task, model_normalization(model)[0])
    out = Path(args.out)
    result = compress(model, configs, data.fit, task, workdir=out / "backup")
    if not dist.is_chief:  # the chief alone writes what the cluster made
        return 0
    precision = args.precision or ("int8" if result.quantized else "float32")
    info = ModelInfo(task=task, labels=data.labels, techniques=result.techniques, source_sha256=weights_sha256(model),
                     resize=data.resize)  # fmt: skip
    name = "_".join(result.techniques)
    art = export(result.model, out / f"{name}_{precision}.tflite", "tflite", info, precision=precision,
                 calibration=data.calibration, check_inputs=data.check)  # fmt: skip
    # A QAT model too, so that 'edgedl export' takes it again (as .h5: tfmot's wrappers need HDF5).
    save_model(result.model, out / ("model.h5" if result.quantized else "model.keras"))

    def keras_accuracy(m) -> Optional[float]:
        if not get_task(task).class_scores:
            return None
        x, y = data.validation.x, data.validation.y
        return float(np.mean(m.predict(x, verbose=0).argmax(-1) == y))

    summary = write_compression(out / "compression.json", {**result.stats, "accuracy": keras_accuracy(result.model)},
                                result.techniques, [repr(c) for c in configs],
                                before={**model_stats(model), "accuracy": keras_accuracy(model)},
                                source=str(args.model), artifact=art.path.name)  # fmt: skip
    print(json.dumps(summary, indent=2))
    return 0


def cmd_variants(args) -> int:
    from ..pipeline.recipes import all_variants

    rows = [("variant", "format", "precision", "techniques")]
    rows += [(s.name, s.format, s.precision, ",".join(s.techniques) or "-") for s in all_variants(args.task)]
    _print_columns(rows)
    return 0


def cmd_pipeline(args) -> int:
    from benchmarks import BenchConfig
    from benchmarks.select import CRITERIA, check_max_drop
    from runtime.cli import parse_floats

    from ..terminal import Terminal

    if args.max_drop is not None:  # checked before hours of work, not after
        check_max_drop(args.max_drop)
    if args.target is not None:
        from ..deploy.targets import get_target

        get_target(args.target)  # an unknown name stops here, listing the known ones
    if args.max_drop is not None and not args.no_search and on_cluster(args):
        raise UserError("the search for thinner variants goes by latency the chief alone measures: give --no-search "
                        "with --max-drop on a cluster")  # fmt: skip
    if not 0 < args.search_seconds <= 86400:
        raise UserError(f"--search-seconds must be in (0, 86400], got {args.search_seconds}")
    if args.by not in CRITERIA:
        raise UserError(f"--by {args.by!r}: choose latency or size")
    bench = BenchConfig(threads=args.threads, runs=args.runs, warmup=args.warmup, seconds=args.seconds)
    mean, std = parse_floats(args.mean, "--mean"), parse_floats(args.std, "--std")
    terminal = Terminal(quiet=args.quiet, verbose=args.verbose)
    # TensorFlow is imported inside: its start-up lines go to the run's log.txt with the rest of its output.
    if (code := launched(args)) is not None:
        return code
    with terminal.capture(args.out, f"edgedl pipeline --model {args.model} --out {args.out}", log_name()):
        from ..data.denoising import Noise
        from ..pipeline import PipelineConfig, run_pipeline

        setup_distribution(args)

        config = PipelineConfig(
            model=args.model,
            out=args.out,
            train=train_config(args, args.model),
            bench=bench,
            noise=Noise.parse(args.sigma, args.eval_sigma),
            data=args.data,
            eval_data=args.eval_data,
            eval_labels=args.eval_labels,
            variants=tuple(args.variants.split(",")) if args.variants else (),
            retrain=args.retrain,
            search_drop=None if args.no_search else args.max_drop,
            search_seconds=args.search_seconds,
            budget=None if args.max_drop is None else {"max_drop": args.max_drop, "by": args.by},
            mean=mean,
            std=std,
            model_options=model_options(args),
            weights=args.weights,
            resize=args.resize,
            augment=not args.no_augment,
            train_size=args.train_size,
            onnx_activations=args.onnx_activations,
            onnx_calibration=args.onnx_calibration,
        )
        report = run_pipeline(config, terminal)
        if report is None:  # another worker than the chief: its share is done
            return 0
        if args.max_drop is not None:
            from benchmarks.select import copy_selected, select

            where = ""
            if args.target is not None:  # among what the target's interpreter runs (operators, versions, format)
                from ..deploy.bundle import runnable, timed_here
                from ..deploy.targets import get_target

                device = get_target(args.target)
                report = {**report, "variants": runnable(report, Path(args.out), device)}
                where = timed_here(report, device)
            selection = select(report, args.max_drop, args.by)
            if selection.variant is None:
                raise UserError(selection.explanation)
            target = copy_selected(Path(args.out), selection.variant, selection.explanation + where)
            terminal.out.print(f"selected {selection.explanation}{where}\ncopied to {target}", soft_wrap=True)
    return 0


def cmd_report(args) -> int:
    from benchmarks.render import render

    for kind, path in render(args.reports, args.out).items():
        print(f"{kind:>13}: {path}")
    return 0


def cmd_select(args) -> int:
    from benchmarks.select import run_select

    return run_select(args.report, args.max_drop, args.by, args.max_tail_drop, args.on)


def cmd_bundle(args) -> int:
    from ..deploy.bundle import bundle
    from ..deploy.targets import get_target
    from ..deploy.wheels import parse_platform, this_machine

    variants = [v for item in args.variant for v in item.split(",") if v]
    wheels_for = None
    if args.wheels or args.wheels_for:
        board = args.wheels_for or get_target(args.target).board
        wheels_for = parse_platform(board) if board else this_machine()
    result = bundle(args.source, args.target, args.out, variants, args.max_drop, args.by, args.max_tail_drop,
                    args.sign, args.on, wheels_for)  # fmt: skip
    print(f"bundled {', '.join(result.variants)} for {result.target} ({result.why})" + (", signed" if args.sign else ""))
    print(f"{result.path}: {result.files} files, {result.bytes:,} bytes"
          + (f", with every wheel for {wheels_for.machine}, Python {wheels_for.python}" if wheels_for else ""))
    return 0


def cmd_deploy(args) -> int:
    from benchmarks.select import select
    from runtime.cli import check_timing
    from runtime.devices import device_view
    from runtime.runfolder import run_report

    from ..deploy.device import Steps, deploy
    from ..deploy.ssh import Deadline, Ssh
    from .runlock import run_lock

    check_timing(args.runs, args.warmup, None)
    if args.step_timeout <= 0 or args.timeout <= 0 or (args.port is not None and not 0 < args.port < 65536):
        raise UserError("--step-timeout and --timeout must be positive, --port from 1 to 65535")
    if args.identity is not None and not args.identity.is_file():
        raise UserError(f"--identity {args.identity}: no such key file")
    _, run_dir = run_report(args.run)
    ssh = Ssh(args.host, args.port, args.identity, tuple(args.ssh_option), deadline=Deadline(args.timeout))
    steps = Steps(probe=min(60.0, args.step_timeout), copy=args.step_timeout, install=2 * args.step_timeout,
                  bench=args.step_timeout)  # fmt: skip
    names = [n for n in (args.variants or "").split(",") if n]
    with run_lock(run_dir, "edgedl deploy " + " ".join(getattr(args, "argv", None) or [])):
        result = deploy(run_dir, ssh, args.target, args.name, names, args.all_within, args.remote_dir, args.python,
                        args.runs, args.warmup, args.clean, steps, say=lambda line: print(line, flush=True),
                        work=run_dir, offline=args.offline)  # fmt: skip
    print(f"measured on {result.device}: {', '.join(result.measured) or 'nothing new'}"
          + (f"; measured before: {', '.join(result.reused)}" if result.reused else ""))
    for name, why in result.failed:
        print(f"error: bench {name} on {result.device}: {why}", file=sys.stderr)
    view = device_view(result.report, result.device) if result.measured or result.reused else None
    picked = select(view) if view is not None and view.get("metric") else None
    if picked is not None:
        print(f"would ship {picked.explanation}, measured on {result.device}" if picked.variant is not None
              else f"would ship nothing: {picked.explanation}")  # fmt: skip
    print(f"report: {run_dir / 'report.json'} and {run_dir / 'report' / 'report.html'}")
    return 1 if result.failed else 0
