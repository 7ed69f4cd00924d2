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
from runtime.tasks import TASKS


def make_report(model: str, task: str, variants: list[dict], threads: int, extra: Optional[dict] = None,
                metric: Optional[str] = None) -> dict:  # fmt: skip
    return _make(model, task, variants, machine_info(threads), extra, metric)


def write_report(path: Path, report: dict) -> Path:
    return write_json(path, report)


SHOWN = {"snr_db": "{:.1f}", "channel_psnr_min": "{:.1f}", "flips": "{:d}", "recall_drop_max": "{:.2f}", "psnr_delta_min": "{:+.2f}",
         "iou_drop_max": "{:.2f}", "ap50_drop_max": "{:.2f}"}  # fmt: skip
# The terminal table's columns in the order shown, each with its short header and its rank when the terminal
# is too narrow for all: the highest ranks are left out first (variant, metric, Δ, p50 and sizes stay).
# The variant's name holds its format and precision; every column is in report.md and report.csv.
RANK = {"variant": 0, "metric": 1, "delta": 2, "p50": 3, "gzip": 4, "size": 5, "speed": 6, "control": 6, "flips": 7,
        "psnr_delta_min": 7, "iou_drop_max": 7, "ap50_drop_max": 7, "recall_drop_max": 8, "ssim": 9,
        "top1_agreement": 9, "snr_db": 10, "channel_psnr_min": 10, "p90": 11,
        "p99": 12, "mean": 13, "format": 14, "precision": 15}  # fmt: skip
HEADERS = {"ssim": "SSIM", "top1_agreement": "top-1 agree", "snr_db": "SNR dB", "channel_psnr_min": "worst ch dB",
           "flips": "flips",
           "recall_drop_max": "recall↓ pts", "psnr_delta_min": "worst Δ dB",
           "iou_drop_max": "IoU↓ pts", "ap50_drop_max": "AP↓ pts"}  # fmt: skip
# The worst change against the original (each task's ``tail_metrics``) that the terminal table has room for.
TAIL = tuple(m for task in TASKS.values() for m in task.tail_metrics if m in HEADERS)


def _cell(metrics: dict, name: str) -> str:
    return "-" if name not in metrics else SHOWN.get(name, "{:.4f}").format(metrics[name])


def _columns(report: dict) -> list[tuple[str, str, object]]:
    """(key, header, cell of a variant) for every column the report has, in the order shown."""
    metric = report["metric"]
    ok = [v for v in report["variants"] if is_ok(v)]
    fidelity = ("channel_psnr_min",) if metric == "channels_ok" else ()  # the worst channel, where it ranks
    extra = [m for m in ("ssim", "top1_agreement", "snr_db", *fidelity, *TAIL)
             if m != metric and any(m in v["metrics"] for v in ok)]  # fmt: skip

    def lat(key):
        return lambda v: f"{v['latency_ms'][key] * 1e3:,.1f}"

    def signed(value) -> str:
        return "-" if value is None else f"{value + 0.0:+.2f}"  # + 0.0: no "-0.00"

    cols = [("variant", "variant", lambda v: v["name"]), ("format", "format", lambda v: v["format"]),
            ("precision", "precision", lambda v: v["precision"]),
            ("size", "size KB", lambda v: f"{v['size_bytes'] / 1024:,.1f}"),
            ("gzip", "gzip KB", lambda v: f"{v['gzip_bytes'] / 1024:,.1f}")]  # fmt: skip
    if metric:
        digits = 4 if unit(metric) == "points" else 2
        value = lambda v: v["metrics"].get(metric)  # noqa: E731
        cols += [("metric", metric, lambda v: "-" if value(v) is None else f"{value(v):.{digits}f}"),
                 ("delta", f"Δ {'pts' if unit(metric) == 'points' else unit(metric)}".strip(),
                  lambda v: signed(v["metric_delta"]))]  # fmt: skip
        if any(v.get("control_delta") is not None for v in ok):
            cols.append(("control", "Δ control", lambda v: signed(v.get("control_delta"))))
    cols += [(m, HEADERS[m], lambda v, m=m: _cell(v["metrics"], m)) for m in extra]
    cols += [("p50", "p50 µs", lat("p50"))]
    if any(v.get("speed_vs_float32") is not None for v in ok):  # below 1: slower than its format's float32
        speed = lambda v: v.get("speed_vs_float32")  # noqa: E731
        cols.append(("speed", "× f32", lambda v: "-" if speed(v) is None else
                     f"{speed(v):.2f}{' slower' if speed(v) < 1 else ''}"))  # fmt: skip
    cols += [("p90", "p90 µs", lat("p90")), ("p99", "p99 µs", lat("p99")), ("mean", "mean µs", lat("mean"))]
    return cols


def render_table(report: dict, width: Optional[int] = None):
    """A rich ``Table``: one row per variant, the original first; a failed variant shows its reason.
    With ``width``, the lowest-ranked columns (``RANK``) are left out until the table fits in it."""
    from rich import box
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table

    cols = _columns(report)
    title = (f"{report['model']} ({report['task']}) on {report['machine']['cpu']}, "
             f"{report['machine']['threads']} thread(s)")  # fmt: skip
    left_out: list = []
    while True:
        table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True,
                      title_justify="left")  # fmt: skip
        for key, header, _ in cols:
            table.add_column(header, justify="left" if key in ("variant", "format", "precision") else "right",
                             no_wrap=True)  # fmt: skip
        for v in report["variants"]:
            if is_ok(v):
                table.add_row(*(cell(v) for _, _, cell in cols))
            else:
                table.add_row(v["name"], "[red]failed[/]", *[""] * (len(cols) - 2))
        if left_out:
            table.caption = f"left out to fit: {', '.join(left_out)} (all columns: report/report.md)"
        if width is None or len(cols) <= 2:
            return table
        console = Console(width=10_000)
        if Measurement.get(console, console.options, table).maximum <= width:
            return table
        dropped = max(cols, key=lambda c: RANK.get(c[0], 9))
        if RANK.get(dropped[0], 9) == 0:
            return table
        cols = [c for c in cols if c is not dropped]
        left_out.append(dropped[1])


def print_table(report: dict, console=None) -> None:
    """Print the table as wide as the terminal allows (whole when the output is a file), then the failures."""
    from rich.console import Console

    from rich.measure import Measurement

    console = console or Console(soft_wrap=True, highlight=False)
    if console.is_terminal:
        console.print(render_table(report, console.width))
    else:  # a file: every column, at the table's own width
        table = render_table(report)
        natural = Measurement.get(Console(width=10_000), Console(width=10_000).options, table).maximum
        width, console.width = console.width, max(natural, console.width)
        try:
            console.print(table, crop=False)
        finally:
            console.width = width
    for v in report["variants"]:
        if not is_ok(v):
            console.print(f"[red]{v['name']} failed[/]: {v['error']}", highlight=False, soft_wrap=True)
