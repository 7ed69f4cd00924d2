"""Run every variant the same way, each in its own process, and collect one record per variant."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from runtime.errors import UserError


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


@dataclass(frozen=True)
class BenchConfig:
    """How to measure: interpreter threads, timed runs at batch 1 and untimed warm-up runs."""

    threads: int = 1
    runs: int = 200
    warmup: int = 20
    seconds: Optional[float] = None  # a time budget for the latency runs, instead of a count

    def __post_init__(self):
        if self.threads < 1 or self.runs < 1 or self.warmup < 0 or (self.seconds is not None and self.seconds <= 0):
            raise UserError(f"threads and runs must be at least 1, warmup at least 0, seconds positive: got {self}")


def file_sizes(path: Path) -> tuple[int, int]:
    """(bytes, gzip bytes at level 9) of a file, or of all files in a folder (a SavedModel)."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    raw = b"".join(p.read_bytes() for p in files)
    return len(raw), len(gzip.compress(raw, compresslevel=9))


def measure_command(variant: Variant, eval_path: Path, config: BenchConfig) -> list[str]:
    """The command that measures ``variant`` in a fresh interpreter process."""
    budget = ["--seconds", str(config.seconds)] if config.seconds else []
    return [
        sys.executable, "-m", variant.measurer, str(variant.path), "--eval", str(eval_path),
        "--threads", str(config.threads), "--runs", str(config.runs), "--warmup", str(config.warmup), *budget,
    ]  # fmt: skip


def measure_variant(variant: Variant, eval_path: Path, config: BenchConfig, root: Optional[Path] = None) -> dict:
    """Measure one variant in a subprocess and return its report record."""
    proc = subprocess.run(measure_command(variant, eval_path, config), capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"measuring {variant.name} failed: {tail}")
    figures = json.loads(proc.stdout)
    size, gz = file_sizes(variant.path)
    shown = variant.path.relative_to(root) if root and variant.path.is_relative_to(root) else variant.path
    return {
        "name": variant.name,
        "format": variant.format,
        "precision": variant.precision,
        "techniques": list(variant.techniques),
        "path": str(shown),
        "size_bytes": size,
        "gzip_bytes": gz,
        **variant.extra,
        **figures,
    }


def measure_all(variants: Sequence[Variant], eval_path: Path, config: BenchConfig, root=None, progress=None) -> list[dict]:
    """Measure every variant in turn; ``progress(name)`` is called before each."""
    records = []
    for v in variants:
        if progress:
            progress(v.name)
        records.append(measure_variant(v, eval_path, config, root))
    return records
