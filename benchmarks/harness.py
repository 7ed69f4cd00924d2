"""Run every variant the same way, each in its own process, and collect one record per variant."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from runtime.errors import one_line
from runtime.report import layer_rows, variant_record
from runtime.runfolder import read_eval_arrays, stored_path


@dataclass(frozen=True)
class Variant:
    """One thing to measure: an exported artifact, or the original model (``format="keras"``).

    ``measurer`` is the module run as ``python -m MODULE PATH --eval ... --threads ...``
    that prints the figures as JSON: ``benchmarks.measure`` for artifacts; the
    host names its own for the Keras original, which needs TensorFlow.
    """

    name: str
    format: str
    precision: str
    path: Path
    techniques: tuple = ()
    measurer: str = "benchmarks.measure"
    extra: dict = field(default_factory=dict, compare=False, hash=False)  # copied into the record (params, macs, ...)


class MeasurementError(RuntimeError):
    """One variant could not be measured; the run records it and goes on."""


@dataclass(frozen=True)
class BenchConfig:
    """How to measure: interpreter threads, timed runs at batch 1 and untimed warm-up runs."""

    threads: int = 1
    runs: int = 200
    warmup: int = 20
    seconds: Optional[float] = None  # a time budget for the latency runs, instead of a count

    def __post_init__(self):
        from runtime.cli import check_timing
        from runtime.model import check_threads

        check_threads(self.threads)
        check_timing(self.runs, self.warmup, self.seconds)


def measure_command(variant: Variant, eval_path: Path, config: BenchConfig, reference: Optional[Path] = None,
                    save_to: Optional[Path] = None) -> list[str]:  # fmt: skip
    """The command that measures ``variant`` in a fresh interpreter process."""
    budget = ["--seconds", str(config.seconds)] if config.seconds else []
    outputs = (["--reference", str(reference)] if reference else []) + (["--save-outputs", str(save_to)] if save_to else [])
    return [
        sys.executable, "-m", variant.measurer, str(variant.path), "--eval", str(eval_path),
        "--threads", str(config.threads), "--runs", str(config.runs), "--warmup", str(config.warmup), *budget,
        *outputs,
    ]  # fmt: skip


def measure_variant(variant: Variant, eval_path: Path, config: BenchConfig, root: Optional[Path] = None,
                    reference: Optional[Path] = None, save_to: Optional[Path] = None) -> dict:  # fmt: skip
    """Measure one variant in a subprocess and return its report record; with ``reference`` (the original's
    outputs, written by its own measurement with ``save_to``) the record's metrics include its fidelity."""
    proc = subprocess.run(measure_command(variant, eval_path, config, reference, save_to), capture_output=True,
                          text=True)  # fmt: skip
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}, no output"]
        tail = next((ln for ln in reversed(lines) if ln.startswith("error: ")), lines[-1])
        raise MeasurementError(f"measuring {variant.name} failed: {one_line(tail.removeprefix('error: '))}")
    try:
        figures = json.loads(proc.stdout)
    except ValueError:
        raise MeasurementError(f"measuring {variant.name} failed: its measurer printed no JSON") from None
    shown = stored_path(variant.path, root) if root else str(variant.path)
    return variant_record(variant.name, variant.format, variant.precision, variant.techniques, variant.path, shown,
                          figures, {**variant.extra, **_layers(variant)})  # fmt: skip


def _layers(variant: Variant) -> dict:
    """An int8 artifact's per-layer quantization error, as its record's ``layers`` (``runtime.report.layer_rows``
    of the artifact's notes); nothing for other variants."""
    from runtime import read_metadata

    if variant.format not in ("tflite", "onnx") or "int8" not in variant.precision:
        return {}
    try:
        rows = layer_rows(read_metadata(variant.path).notes)
    except Exception:  # noqa: BLE001 - a file without edgedl's record (another tool's): no layer table
        return {}
    return {"layers": rows} if rows else {}


def _fingerprint(variant: Variant, eval_path: Path, config: BenchConfig, reference: Optional[Path] = None) -> str:
    """What a measurement depends on: the artifact's bytes, the evaluation set, how it was measured, and the
    original's outputs its fidelity is measured against."""
    import hashlib

    from runtime.files import sha256_file

    files = sorted(p for p in variant.path.rglob("*") if p.is_file()) if variant.path.is_dir() else [variant.path]
    digest = hashlib.sha256()
    parts = [sha256_file(f) for f in files] + [repr(config), variant.measurer,
                                               json.dumps(variant.extra, sort_keys=True, default=str)]  # fmt: skip
    parts.append(sha256_file(reference) if reference is not None and reference.exists() else "no reference")
    for part in parts:
        digest.update(part.encode())
    arrays = read_eval_arrays(eval_path)  # the arrays, not the file: .npz stores write times
    for name in sorted(arrays):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()


def measure_all(variants: Sequence[Variant], eval_path: Path, config: BenchConfig, root=None, progress=None,
                cache_dir: Optional[Path] = None) -> list[dict]:  # fmt: skip
    """Measure every variant in turn; ``progress(name, reused)`` is called before each.

    A variant that cannot be measured is recorded as failed, with its reason,
    and the others are measured all the same. With ``cache_dir``, a variant
    whose artifact, evaluation set and settings are unchanged since its last
    measurement keeps that measurement.
    """
    import tempfile

    from runtime.files import write_json
    from runtime.report import failed_record

    reference = Path(cache_dir or tempfile.mkdtemp(prefix="edgedl-reference-")) / "original_outputs.npz"
    records = []
    for v in variants:
        is_original = v.name == "original" and not records
        ref = None if is_original else reference if reference.exists() else None
        cached = cache_dir / f"{v.name}.json" if cache_dir else None
        key = _fingerprint(v, eval_path, config, ref) if cached else None
        stale = is_original and not reference.exists()  # the variants need its outputs: measure it again
        if cached and cached.exists() and not stale:
            try:
                previous = json.loads(cached.read_text())
            except ValueError:  # a cache entry cut short: measure again
                previous = {}
            if isinstance(previous, dict) and previous.get("fingerprint") == key and "record" in previous:
                if progress:
                    progress(v.name, True)
                records.append(previous["record"])
                continue
        if progress:
            progress(v.name, False)
        try:
            record = measure_variant(v, eval_path, config, root, reference=ref,
                                     save_to=reference if is_original else None)  # fmt: skip
        except MeasurementError as exc:
            records.append(failed_record(v.name, v.format, v.precision, v.techniques, str(exc)))
            continue
        if cached:
            write_json(cached, {"fingerprint": key, "record": record})
        records.append(record)
    return records
