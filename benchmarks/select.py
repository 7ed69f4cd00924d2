"""Pick the variant for the device: the fastest (or smallest) within an accuracy budget of the original.

    python -m benchmarks.select runs/cnn/report.json --max-drop 0.5 --by latency

The budget is in the report's metric: accuracy points for classifiers, dB of
PSNR for denoisers. The chosen artifact (and an older artifact's sidecar) is copied to
``RUN_DIR/selected/`` under a stable name, with ``selection.json`` saying why.
"""
from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from runtime.cli import OneLineParser, run_cli
from runtime.errors import UserError
from runtime.devices import device_view
from runtime.files import atomic_path, write_json
from runtime.metadata import sidecar_path
from runtime.report import is_ok, read_report, unit
from runtime.runfolder import resolve, run_report
from runtime.tasks import TASKS

CRITERIA = {"latency": lambda v: (v["latency_ms"]["p50"], v["size_bytes"]), "size": lambda v: (v["size_bytes"], v["latency_ms"]["p50"])}


@dataclass(frozen=True)
class Selection:
    variant: Optional[dict]
    explanation: str


def tail_drop(variant: dict) -> Optional[float]:
    """The worst loss against the original (``runtime.tasks``' tail): the largest fall of one class's recall,
    IoU or AP@0.5 in points, or the worst single image's PSNR loss in dB; None when not measured."""
    metrics = variant.get("metrics", {})
    for task in TASKS.values():  # each task's worst change, as a loss
        if task.tail_loss is not None and task.tail_loss[0] in metrics:
            return task.tail_loss[1] * metrics[task.tail_loss[0]]
    return None


def default_budget(report: dict) -> float:
    """The budget of the report's task (``runtime.tasks``): 1 point of accuracy, 0.5 dB of PSNR, 1 point of
    fidelity; 1.0 for a task this side does not know."""
    task = TASKS.get(report.get("task"))
    return task.budget if task is not None else 1.0


def select(report: dict, max_drop: Optional[float] = None, by: str = "latency",
           max_tail_drop: Optional[float] = None) -> Selection:  # fmt: skip
    """The best artifact variant whose metric is at most ``max_drop`` (default: the task's budget) below
    the original's and, with ``max_tail_drop``, whose worst per-sample loss (``tail_drop``) is at most that."""
    max_drop = default_budget(report) if max_drop is None else max_drop
    if by not in CRITERIA:
        raise UserError(f"unknown criterion {by!r}; choose latency or size")
    check_max_drop(max_drop)
    if max_tail_drop is not None:
        check_max_drop(max_tail_drop, "--max-tail-drop")
    if report.get("metric") is None:
        raise UserError(f"the report of {report['model']} scored nothing (no labelled evaluation data), so no "
                        "variant can be chosen within a budget; name one (--variant), or measure with --eval-data")
    units = unit(report["metric"])
    artifacts = [v for v in report["variants"] if v["format"] != "keras" and is_ok(v) and v["metric_delta"] is not None]
    fits = [v for v in artifacts if -v["metric_delta"] <= max_drop + 1e-9]
    if max_tail_drop is not None:
        fits = [v for v in fits if tail_drop(v) is not None and tail_drop(v) <= max_tail_drop + 1e-9]
        within = f"{max_drop} {units} of the original, and a worst case within {max_tail_drop} {units}"
    else:
        within = f"{max_drop} {units} of the original"
    if not fits:
        failed = [v for v in report["variants"] if not is_ok(v)]
        built = "" if not failed else (f"; {len(failed)} failed to build or measure (" + ", ".join(
            f"{v['name']}: {v.get('error') or 'no reason recorded'}" for v in failed[:3]) + (", …" if len(failed) > 3 else "") + ")")
        if not artifacts:
            return Selection(None, f"no variant was measured, so none can be chosen{built}")
        best = max(artifacts, key=lambda v: v["metric_delta"])
        closest = f"; the closest, {best['name']}, loses {-best['metric_delta']:.2f} {units}"
        return Selection(None, f"no variant stays within {within}{closest}{built}")
    chosen = min(fits, key=CRITERIA[by])
    figure = (f"{chosen['latency_ms']['p50'] * 1e3:.1f} µs p50" if by == "latency"
              else f"{chosen['size_bytes']:,} bytes")  # fmt: skip
    return Selection(chosen, f"{chosen['name']}: the {'fastest' if by == 'latency' else 'smallest'} of "
                             f"{len(fits)} variants within {max_drop} {units} ({figure}, "
                             f"{report['metric']} {chosen['metric_delta'] + 0.0:+.2f} {units} vs the original)")  # fmt: skip


def check_max_drop(max_drop: float, option: str = "--max-drop") -> None:
    """A budget is a finite loss of zero or more (checked before any work starts)."""
    import math

    if not math.isfinite(max_drop) or max_drop < 0:
        raise UserError(f"{option} must be zero or more (points of accuracy, or dB), got {max_drop}")


def copy_selected(run_dir: Path, variant: dict, explanation: str) -> Path:
    """Copy the chosen artifact (and its sidecar) to ``run_dir/selected/model.<ext>``."""
    source = resolve(variant["path"], run_dir)
    if not source.exists():
        raise UserError(f"{source}: the selected artifact is missing; re-run the pipeline")
    target = run_dir / "selected" / f"model{source.suffix}"
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob("model.*"):  # a previous choice, maybe of another format
        stale.unlink()
    if sidecar_path(source).exists():
        with atomic_path(sidecar_path(target)) as tmp:
            shutil.copyfile(sidecar_path(source), tmp)
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    write_json(target.parent / "selection.json", {"variant": variant["name"], "source": variant["path"],
                                                  "why": explanation})  # fmt: skip
    return target


def main(argv=None) -> int:
    p = OneLineParser(prog="python -m benchmarks.select", description=__doc__.splitlines()[0])
    add_select_args(p)
    args = p.parse_args(argv)
    return run_cli(lambda: run_select(args.report, args.max_drop, args.by, args.max_tail_drop, args.on))


def add_select_args(p) -> None:
    p.add_argument("report", type=Path, metavar="RUN_OR_REPORT",
                   help="a run folder of 'edgedl pipeline', or its report.json")
    p.add_argument("--max-drop", type=float, help="largest metric loss allowed (points or dB; default: the task's "
                                                  "budget, 1 point of accuracy or 0.5 dB of PSNR)")  # fmt: skip
    p.add_argument("--by", default="latency", help="latency (default) or size")
    add_tail_arg(p)
    add_on_arg(p)


def add_on_arg(p) -> None:
    p.add_argument("--on", metavar="DEVICE", help="choose by the figures measured on this device ('edgedl deploy'; "
                                                  "default: the host's)")  # fmt: skip


def add_tail_arg(p) -> None:
    p.add_argument("--max-tail-drop", type=float,
                   help="also the largest worst-case loss: one class's recall, IoU or AP (points), or one image's "
                        "PSNR (dB)")  # fmt: skip


def run_select(report_path: Path, max_drop: Optional[float], by: str, max_tail_drop: Optional[float] = None,
               on: Optional[str] = None) -> int:  # fmt: skip
    """``edgedl select``: by the host's figures, or (``on``) by those measured on that device."""
    report_path, run_dir = run_report(report_path)
    report = read_report(report_path)
    if on:
        report = device_view(report, on)
    selection = select(report, max_drop, by, max_tail_drop)
    if selection.variant is None:
        raise UserError(selection.explanation)
    where = f"measured on {on}" if on else f"timed on this host ({report['machine'].get('cpu', '?')})"
    target = copy_selected(run_dir, selection.variant, f"{selection.explanation}; {where}")
    print(f"selected {selection.explanation}; {where}")
    print(f"copied to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
