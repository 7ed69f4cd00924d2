"""The compression targets, checked on a pipeline's ``report.json`` and printed.

    edgedl pipeline --model cnn --out runs/cnn
    python -m benchmarks.compression runs/cnn/report.json

Every figure is read from the report, which measured each variant through
``runtime/`` on the same evaluation images; nothing is re-measured here.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from runtime.cli import OneLineParser, run_cli
from runtime.errors import UserError


@dataclass(frozen=True)
class Check:
    target: str
    variant: str
    measured: str
    passed: bool


def _variants(report: dict) -> dict:
    return {v["name"]: v for v in report["variants"]}


def _drop(v: dict) -> float:
    """Points of accuracy lost against the original (negative: gained)."""
    return -v["metric_delta"]


def checks(report: dict) -> list[Check]:
    """The targets of the compression issue that this report has the variants for."""
    if report.get("metric") != "accuracy":
        raise UserError("these targets are for classifiers; the report is for a " + report.get("task", "?") + " model")
    v = _variants(report)
    out: list[Check] = []

    def need(name: str) -> Optional[dict]:
        return v.get(name)

    for name in ("tflite_int8", "onnx_int8"):
        if need(name):
            out.append(Check("post-training int8: drop ≤ 0.3 pts", name, f"drop {_drop(v[name]):+.2f} pts",
                             _drop(v[name]) <= 0.3))  # fmt: skip
    if need("qat_tflite_int8"):
        d = _drop(v["qat_tflite_int8"])
        out.append(Check("QAT int8: drop ≤ 0.2 pts", "qat_tflite_int8", f"drop {d:+.2f} pts", d <= 0.2))
    if need("tflite_float32"):
        budget = v["tflite_float32"]["gzip_bytes"] / 10
        for name in ("prune_tflite_int8", "prune_qat_tflite_int8", "prune_cluster_qat_tflite_int8"):
            if need(name):
                gz, d, s = v[name]["gzip_bytes"], _drop(v[name]), v[name].get("sparsity", float("nan"))
                out.append(Check(
                    "pruned 80 % + int8: gzip ≤ 1/10 of float32 .tflite gzip, drop ≤ 0.5 pts", name,
                    f"sparsity {s:.2f}, gzip {gz:,} B = 1/{v['tflite_float32']['gzip_bytes'] / gz:.2f}, "
                    f"drop {d:+.2f} pts",
                    gz <= budget and d <= 0.5,
                ))  # fmt: skip
    if need("distill_tflite_float32"):
        student, original = v["distill_tflite_float32"], v["original"]
        ratio = original["macs"] / student["macs"]
        d = _drop(student)
        scratch = need("student_tflite_float32")
        versus = "" if scratch is None else f", scratch student {scratch['metrics']['accuracy']:.4f}"
        beats = scratch is None or student["metrics"]["accuracy"] > scratch["metrics"]["accuracy"]
        out.append(Check(
            "distilled student, ≥ 4× fewer MACs: drop ≤ 0.5 pts, beats the same student without teacher",
            "distill_tflite_float32",
            f"{ratio:.1f}× fewer MACs, accuracy {student['metrics']['accuracy']:.4f} (drop {d:+.2f}){versus}",
            ratio >= 4 and d <= 0.5 and beats and scratch is not None,
        ))  # fmt: skip
    return out


def print_checks(report: dict, results: list[Check]) -> None:
    from rich.console import Console
    from rich.table import Table

    original = _variants(report)["original"]
    table = Table(title=f"compression targets: {report['model']}, original accuracy "
                        f"{original['metrics']['accuracy']:.4f} on {report.get('data', {}).get('eval_size', '?')} images")
    for col in ("target", "variant", "measured", "met"):
        table.add_column(col)
    for c in results:
        table.add_row(c.target, c.variant, c.measured, "yes" if c.passed else "[bold red]NO[/]")
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def main(argv=None) -> int:
    p = OneLineParser(prog="python -m benchmarks.compression", description=__doc__.splitlines()[0])
    p.add_argument("report", type=Path, help="a report.json written by 'edgedl pipeline'")
    args = p.parse_args(argv)

    def body() -> int:
        if not args.report.exists():
            raise UserError(f"{args.report}: no such report; run 'edgedl pipeline --model cnn --out DIR' first")
        report = json.loads(args.report.read_text())
        results = checks(report)
        print_checks(report, results)
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
