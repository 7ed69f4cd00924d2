"""What the zoo's detector, segmenter and embedder reach, read from pipeline runs, against the tracker's targets.

    edgedl pipeline --model centernet_lite --out runs/det
    edgedl pipeline --model unet_lite --out runs/seg
    edgedl pipeline --model embedder --out runs/emb
    python -m benchmarks.tasks runs/det/report.json runs/seg/report.json runs/emb/report.json

For each report (any order, any subset): the original's metric against its target, and what int8 TFLite
costs against its budget, with the int8 artifact's p50 latency.
"""
from __future__ import annotations

import sys
from pathlib import Path

from runtime.cli import OneLineParser, run_cli
from runtime.errors import UserError
from runtime.report import is_ok, read_report
from runtime.tasks import TASKS

# task: (metric shown, its target for the original, the most int8 may lose, in the metric's own unit)
TARGETS = {name: task.target for name, task in TASKS.items() if task.target is not None}


def rows(report: dict) -> list[tuple]:
    """(measure, measured, target, met) rows for one run."""
    if report["task"] not in TARGETS:
        raise UserError(f"{report['model']}: a {report['task']} run; this benchmark reads {', '.join(TARGETS)} runs")
    shown, target, budget = TARGETS[report["task"]]
    by_name = {v["name"]: v for v in report["variants"] if is_ok(v)}
    original, int8 = by_name.get("original"), by_name.get("tflite_int8")
    if original is None:
        raise UserError(f"{report['model']}: the report's original model was not measured")
    metric = report["metric"]
    value = original["metrics"][metric]
    out = [(f"{report['model']}, {shown}, float (Keras)", f"{value:.4f}", f"≥ {target:.2f}", value >= target)]
    if int8 is not None:
        loss = value - int8["metrics"][metric]
        p50 = int8["latency_ms"]["p50"] * 1e3
        out.append((f"{report['model']}, int8 TFLite vs float", f"{-loss:+.4f} (p50 {p50:,.0f} µs)",
                    f"within {budget:.2f}", loss <= budget))  # fmt: skip
    else:
        out.append((f"{report['model']}, int8 TFLite vs float", "-", f"within {budget:.2f}", False))
    return out


def main(argv=None) -> int:
    p = OneLineParser(prog="python -m benchmarks.tasks", description=__doc__.splitlines()[0])
    p.add_argument("reports", type=Path, nargs="+", help="report.json of a detection, segmentation or embedding run")
    args = p.parse_args(argv)

    def body() -> int:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="detection, segmentation, embeddings")
        for column in ("measure", "measured", "target", ""):
            table.add_column(column)
        for path in args.reports:
            for measure, measured, target, met in rows(read_report(path)):
                table.add_row(measure, measured, target, "met" if met else "NOT MET")
        Console(width=None if sys.stdout.isatty() else 160).print(table)
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
