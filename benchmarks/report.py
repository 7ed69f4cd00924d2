"""``report.json``: one record per variant, against the original, with the machine that measured them.

The schema itself (and its validation) is ``runtime.report``: the device writes reports too.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from runtime.files import write_json
from runtime.machine import machine_info
from runtime.report import is_ok
from runtime.report import make_report as _make
from runtime.report import unit


def make_report(model: str, task: str, variants: list[dict], threads: int, extra: Optional[dict] = None,
                metric: Optional[str] = None) -> dict:  # fmt: skip
    return _make(model, task, variants, machine_info(threads), extra, metric)


def write_report(path: Path, report: dict) -> Path:
    return write_json(path, report)


TAIL = ("flips", "recall_drop_max", "psnr_delta_min")  # the worst per-sample change (runtime.metrics.tail)
SHOWN = {"snr_db": "{:.1f}", "flips": "{:d}", "recall_drop_max": "{:.2f}", "psnr_delta_min": "{:+.2f}"}


def _cell(metrics: dict, name: str) -> str:
    return "-" if name not in metrics else SHOWN.get(name, "{:.4f}").format(metrics[name])


def render_table(report: dict):
    """A rich ``Table``: one row per variant, the original first; a failed variant shows its reason."""
    from rich.table import Table

    metric = report["metric"]
    ok = [v for v in report["variants"] if is_ok(v)]
    extra = [m for m in ("ssim", "top1_agreement", "snr_db", *TAIL) if m != metric and any(m in v["metrics"] for v in ok)]
    table = Table(title=f"{report['model']} ({report['task']}) on {report['machine']['cpu']}, "
                        f"{report['machine']['threads']} thread(s)")  # fmt: skip
    metric_cols = [metric, f"Δ {unit(metric)}"] if metric else []
    for col in ("variant", "format", "precision", "size KB", "gzip KB", *metric_cols, *extra,
                "p50 µs", "p90 µs", "p99 µs", "mean µs"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("variant", "format", "precision") else "right")
    for v in report["variants"]:
        if not is_ok(v):
            table.add_row(v["name"], v["format"], v["precision"], "[red]failed[/]")
            continue
        lat = v["latency_ms"]
        cells = []
        if metric:
            value = v["metrics"].get(metric)
            cells = ["-" if value is None else f"{value:.4f}" if unit(metric) == "points" else f"{value:.2f}",
                     "-" if v["metric_delta"] is None else f"{v['metric_delta']:+.2f}"]  # fmt: skip
        table.add_row(
            v["name"], v["format"], v["precision"],
            f"{v['size_bytes'] / 1024:,.1f}", f"{v['gzip_bytes'] / 1024:,.1f}", *cells,
            *(_cell(v["metrics"], m) for m in extra),
            *(f"{lat[k] * 1e3:,.1f}" for k in ("p50", "p90", "p99", "mean")),
        )  # fmt: skip
    return table


def print_table(report: dict, console=None) -> None:
    """Print the table; when output is not a terminal, wide enough that no column is cut."""
    import sys

    from rich.console import Console

    console = console or Console(width=None if sys.stdout.isatty() else 132)
    console.print(render_table(report))
    for v in report["variants"]:
        if not is_ok(v):
            console.print(f"[red]{v['name']} failed[/]: {v['error']}", highlight=False)
