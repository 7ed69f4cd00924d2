"""The project's accuracy and size targets, checked on pipeline reports and printed.

    edgedl pipeline --model cnn --out runs/cnn
    python -m benchmarks.targets runs/cnn/report.json [runs/lstm/report.json ...]

Which targets apply follows from the report: the compression targets for a
classifier with compression variants, the int8 target for the LSTM, PSNR
targets for DnCNN, and the recurrence target for the sequence denoiser.

Every figure is read from the report, which measured each variant through
``runtime/`` on the same evaluation images; nothing is re-measured here.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from runtime.cli import OneLineParser, run_cli
from runtime.errors import UserError
from runtime.report import is_ok, read_report


@dataclass(frozen=True)
class Check:
    target: str
    variant: str
    measured: str
    passed: bool


def _variants(report: dict) -> dict:
    return {v["name"]: v for v in report["variants"] if is_ok(v)}  # a failed variant meets no target


def _drop(v: dict) -> float:
    """Points of accuracy lost against the original (negative: gained)."""
    return -v["metric_delta"]


BM3D_SET12_SIGMA25 = 29.97  # dB, the published figure the lite DnCNN must reach


def denoising_checks(report: dict) -> list[Check]:
    v = _variants(report)
    out: list[Check] = []
    original = v["original"]
    if "psnr_per_frame_baseline" in original["metrics"]:
        ours, base = original["metrics"]["psnr"], original["metrics"]["psnr_per_frame_baseline"]
        out.append(Check("recurrent denoiser: higher mean PSNR than the per-frame network", "original",
                         f"{ours:.2f} dB vs {base:.2f} dB per frame ({ours - base:+.2f})", ours > base))  # fmt: skip
    evaluated_on = report.get("data", {}).get("eval", "")
    if report["model"].startswith("dncnn") and "set12" in evaluated_on.lower() and "σ=25," in evaluated_on:
        p = original["metrics"]["psnr"]
        out.append(Check(f"{report['model']}, float: ≥ {BM3D_SET12_SIGMA25} dB (BM3D) on {report['data']['eval']}",
                         "original", f"{p:.2f} dB ({p - BM3D_SET12_SIGMA25:+.2f})", p >= BM3D_SET12_SIGMA25))
    for name in ("tflite_int8", "onnx_int8"):
        if name in v:
            d = v[name]["metric_delta"]
            out.append(Check("int8: within 0.3 dB of the float original", name, f"{d:+.2f} dB", d >= -0.3))
    return out


def checks(report: dict) -> list[Check]:
    """The targets that this report has the variants for."""
    if report.get("metric") == "psnr":
        return denoising_checks(report)
    v = _variants(report)
    out: list[Check] = []

    def need(name: str) -> Optional[dict]:
        return v.get(name)

    budget = 0.5 if report["model"] == "lstm" else 0.3  # the LSTM's int8 target is 0.5 points
    for name in ("tflite_int8", "onnx_int8"):
        if need(name):
            out.append(Check(f"post-training int8: drop ≤ {budget} pts", name, f"drop {_drop(v[name]):+.2f} pts",
                             _drop(v[name]) <= budget))  # fmt: skip
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
    # A distilled student, and the same student trained without the teacher: the zoo's, and the searched widths.
    pairs = [("distill_tflite_float32", "student_tflite_float32")] + [
        (name, name.replace("_tflite_float32", "_labels_tflite_float32")) for name in v
        if name.startswith("filter_prune_") and name.endswith("_tflite_float32") and "_labels" not in name]
    for name, without in pairs:
        if need(name):
            student, original = v[name], v["original"]
            ratio = original["macs"] / student["macs"]
            d = _drop(student)
            scratch = need(without)
            versus = "" if scratch is None else f", without teacher {scratch['metrics']['accuracy']:.4f}"
            beats = scratch is not None and student["metrics"]["accuracy"] > scratch["metrics"]["accuracy"]
            out.append(Check(
                "distilled student, ≥ 4× fewer MACs: drop ≤ 0.5 pts, beats the same student without teacher", name,
                f"{ratio:.1f}× fewer MACs, accuracy {student['metrics']['accuracy']:.4f} (drop {d:+.2f}){versus}",
                ratio >= 4 and d <= 0.5 and beats,
            ))  # fmt: skip
    return out


def print_checks(report: dict, results: list[Check]) -> None:
    from rich.console import Console
    from rich.table import Table

    original = _variants(report)["original"]
    metric = report["metric"]
    table = Table(title=f"targets: {report['model']}, original {metric} {original['metrics'][metric]:.4f} on "
                        f"{report.get('data', {}).get('eval_size', '?')} inputs")  # fmt: skip
    for col in ("target", "variant", "measured", "met"):
        table.add_column(col)
    for c in results:
        table.add_row(c.target, c.variant, c.measured, "yes" if c.passed else "[bold red]NO[/]")
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def main(argv=None) -> int:
    p = OneLineParser(prog="python -m benchmarks.targets", description=__doc__.splitlines()[0])
    p.add_argument("reports", type=Path, nargs="+", help="report.json files written by 'edgedl pipeline'")
    args = p.parse_args(argv)

    def body() -> int:
        for path in args.reports:
            if not path.exists():
                raise UserError(f"{path}: no such report; run 'edgedl pipeline --model cnn --out DIR' first")
            report = read_report(path)
            print_checks(report, checks(report))
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
