"""What compression buys on this machine, read from one pipeline run, against the targets of the tracker.

    edgedl pipeline --model cnn --out runs/cnn                  # every variant, measured alike
    python -m benchmarks.compression runs/cnn/report.json --max-drop 0.5

Prints, side by side: the fastest variant within the budget and the
filter-pruned float32 variant against ``tflite_float32`` (p50 at batch 1),
``onnx_dynamic`` against ``onnx_float32``, the smallest variant within the
budget against ``tflite_float32`` (gzip size), and whether every measured
variant carries its tail of the damage.
"""
from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.select import select
from runtime.cli import OneLineParser, run_cli
from runtime.errors import UserError
from runtime.report import is_ok, read_report


def _p50(v: dict) -> float:
    return v["latency_ms"]["p50"]


def rows(report: dict, max_drop: float) -> list[tuple]:
    """(measure, value, target) for each figure the report can give; '-' where a variant is missing."""
    by_name = {v["name"]: v for v in report["variants"] if is_ok(v)}
    base, onnx = by_name.get("tflite_float32"), by_name.get("onnx_float32")
    if base is None:
        raise UserError("the report has no tflite_float32 variant to compare with; run the pipeline with it")
    fastest = select(report, max_drop).variant
    smallest = select(report, max_drop, by="size").variant
    pruned = sorted((v for v in by_name.values() if v["name"].startswith("filter_prune") and v["precision"] == "float32"
                     and v["format"] == "tflite" and -v["metric_delta"] <= max_drop), key=_p50)  # fmt: skip
    dynamic = by_name.get("onnx_dynamic")
    measured = [v for v in by_name.values() if v["format"] != "keras"]
    tails = sum(("flips" in v["metrics"] or "psnr_delta_min" in v["metrics"]) for v in measured)

    def speed(v):
        return "-" if v is None else f"{_p50(base) / _p50(v):.2f}× ({v['name']}, {v['metric_delta']:+.2f})"

    return [
        (f"fastest variant within {max_drop} vs tflite_float32, p50", speed(fastest), "≥ 6×"),
        (f"filter-pruned float32 within {max_drop} vs tflite_float32", speed(pruned[0] if pruned else None), "≥ 2×"),
        ("onnx_dynamic vs onnx_float32, p50", "-" if dynamic is None or onnx is None else
         f"{_p50(dynamic) / _p50(onnx):.2f}× the time", "never slower (≤ 1×)"),
        (f"smallest variant within {max_drop}, gzip vs tflite_float32", "-" if smallest is None else
         f"{smallest['gzip_bytes'] / base['gzip_bytes']:.3f}× ({smallest['name']})", "≤ 0.05×"),
        ("variants with tail columns", f"{tails} of {len(measured)}", "all"),
    ]  # fmt: skip


def main(argv=None) -> int:
    p = OneLineParser(prog="python -m benchmarks.compression", description=__doc__.splitlines()[0])
    p.add_argument("report", type=Path, help="report.json of 'edgedl pipeline --model cnn'")
    p.add_argument("--max-drop", type=float, default=0.5, help="the accuracy budget in points (default 0.5)")
    args = p.parse_args(argv)

    def run() -> int:
        from rich.console import Console
        from rich.table import Table

        report = read_report(args.report)
        table = Table(title=f"{report['model']} on {report['machine']['cpu']}, {report['machine']['threads']} thread(s)")
        for col in ("measure", "measured", "target"):
            table.add_column(col)
        for row in rows(report, args.max_drop):
            table.add_row(*row)
        Console(width=160).print(table)
        return 0

    return run_cli(run)


if __name__ == "__main__":
    sys.exit(main())
