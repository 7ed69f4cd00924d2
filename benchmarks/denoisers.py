"""What the lite denoisers reach on Set12, read from pipeline runs, against the tracker's targets.

    edgedl pipeline --model ircnn_lite --data ../shared/data/bsd/train400 --eval-data ../shared/data/bsd/set12 \
                    --sigma 25 --variants post,distill,student,qat --out runs/ircnn
    python -m benchmarks.denoisers runs/ircnn/report.json [runs/seq/report.json]

Prints, side by side: the lite denoiser's PSNR against BM3D's (29.97 dB on Set12
at σ = 25, published and measured here with the 8-bit protocol of
``shared/data/bsd/README.md``), what int8 costs (post-training, and after QAT), its MACs per pixel, the
distilled student against the same student trained without its teacher, and,
given a sequence denoiser's run, its gain over its per-frame twin.
"""
from __future__ import annotations

import sys
from pathlib import Path

from runtime.cli import OneLineParser, run_cli
from runtime.errors import UserError
from runtime.report import is_ok, read_report

BM3D_SET12_SIGMA25 = 29.97  # dB: Dabov et al. (2007) as DnCNN's paper tabulates it; 29.96 measured here


def _psnr(v) -> str:
    return "-" if v is None else f"{v['metrics']['psnr']:.2f} dB"


def rows(report: dict, sequence: dict | None = None) -> list[tuple]:
    """(measure, value, target) for each figure the reports give; '-' where a variant is missing."""
    if report["metric"] != "psnr":
        raise UserError(f"{report['model']}: a denoiser's report scores psnr, this one {report['metric']}")
    by_name = {v["name"]: v for v in report["variants"] if is_ok(v)}
    original, int8, qat = by_name.get("original"), by_name.get("tflite_int8"), by_name.get("qat_tflite_int8")
    if original is None:
        raise UserError("the report's original model was not measured")
    distilled, alone = by_name.get("distill_tflite_float32"), by_name.get("student_tflite_float32")
    gain = "-"
    if distilled is not None and alone is not None:
        taught = distilled["metrics"]["psnr"] - alone["metrics"]["psnr"]
        gain = f"{taught:+.2f} dB ({_psnr(distilled)} vs {_psnr(alone)})"
    versus = original["metrics"]["psnr"] - BM3D_SET12_SIGMA25
    out = [
        (f"{report['model']}, float (Keras), PSNR", f"{_psnr(original)} ({versus:+.2f} vs BM3D)",
         f"≥ {BM3D_SET12_SIGMA25} dB (BM3D, Set12 σ = 25)"),
        ("same model, int8 TFLite vs float", "-" if int8 is None else f"{int8['metric_delta']:+.2f} dB",
         "within 0.2 dB"),
        ("same model, QAT int8 TFLite vs float", "-" if qat is None else f"{qat['metric_delta']:+.2f} dB",
         "within 0.2 dB"),
        ("same model, MACs per pixel", f"{original.get('macs_per_pixel', '-'):,}" if original.get("macs_per_pixel")
         else "-", "≤ 120,000"),
        ("distilled student vs the same student without its teacher", gain, "higher PSNR"),
    ]  # fmt: skip
    if sequence is not None:
        metrics = sequence["variants"][0]["metrics"]
        twin = next((k for k in metrics if k.startswith("psnr_") and k.endswith("_baseline")), None)
        out.append(("sequence denoiser vs its per-frame twin", "-" if twin is None else
                    f"{metrics['psnr'] - metrics[twin]:+.2f} dB", "≥ +1.0 dB"))  # fmt: skip
    return out


def main(argv=None) -> int:
    p = OneLineParser(prog="python -m benchmarks.denoisers", description=__doc__.splitlines()[0])
    p.add_argument("report", type=Path, help="report.json of a lite denoiser's run on Set12 at σ = 25")
    p.add_argument("sequence", type=Path, nargs="?", help="report.json of a sequence denoiser's run (optional)")
    args = p.parse_args(argv)

    def body() -> int:
        from rich.console import Console
        from rich.table import Table

        report = read_report(args.report)
        sequence = read_report(args.sequence) if args.sequence else None
        table = Table(title=f"denoisers: {args.report}")
        for column in ("measure", "measured", "target"):
            table.add_column(column)
        for row in rows(report, sequence):
            table.add_row(*row)
        Console(width=None if sys.stdout.isatty() else 160).print(table)
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
