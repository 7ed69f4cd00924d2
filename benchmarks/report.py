"""``report.json``: one record per variant, against the original, with the machine that measured them."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from runtime.bench import metric_delta, primary_metric
from runtime.files import write_json
from runtime.machine import machine_info

SCHEMA_VERSION = 1


def with_deltas(variants: list[dict], task: str) -> list[dict]:
    """Add ``metric_delta`` (variant minus original; accuracy in points, PSNR in dB) to each record."""
    metric = primary_metric(task)
    original = next((v for v in variants if v["format"] == "keras"), variants[0])
    base = original["metrics"][metric]
    return [{**v, "metric_delta": metric_delta(v["metrics"][metric], base, metric)} for v in variants]


def make_report(model: str, task: str, variants: list[dict], threads: int, extra: Optional[dict] = None) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "model": model,
        "task": task,
        "metric": primary_metric(task),
        "machine": machine_info(threads),
        **(extra or {}),
        "variants": with_deltas(variants, task),
    }


def write_report(path: Path, report: dict) -> Path:
    return write_json(path, report)


def render_table(report: dict):
    """A rich ``Table``: one row per variant, the original first."""
    from rich.table import Table

    metric = report["metric"]
    unit = "pts" if metric == "accuracy" else "dB"
    extra = [m for m in ("ssim",) if m in report["variants"][0]["metrics"]]
    table = Table(title=f"{report['model']} ({report['task']}) on {report['machine']['cpu']}, "
                        f"{report['machine']['threads']} thread(s)")  # fmt: skip
    for col in ("variant", "format", "precision", "size KB", "gzip KB", metric, f"Δ {unit}", *extra,
                "p50 µs", "p90 µs", "p99 µs", "mean µs"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("variant", "format", "precision") else "right")
    for v in report["variants"]:
        lat = v["latency_ms"]
        value = v["metrics"][metric]
        table.add_row(
            v["name"], v["format"], v["precision"],
            f"{v['size_bytes'] / 1024:,.1f}", f"{v['gzip_bytes'] / 1024:,.1f}",
            f"{value:.4f}" if metric == "accuracy" else f"{value:.2f}",
            f"{v['metric_delta']:+.2f}",
            *(f"{v['metrics'][m]:.4f}" for m in extra),
            *(f"{lat[k] * 1e3:,.1f}" for k in ("p50", "p90", "p99", "mean")),
        )  # fmt: skip
    return table


def print_table(report: dict, console=None) -> None:
    """Print the table; when output is not a terminal, wide enough that no column is cut."""
    import sys

    from rich.console import Console

    console = console or Console(width=None if sys.stdout.isatty() else 132)
    console.print(render_table(report))
