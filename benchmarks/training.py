"""Where a training run ran and what it cost, read from the runs' own records, side by side.

    edgedl train --model cnn --epochs 4 --batch-size 128 --out runs/one
    edgedl train --model cnn --epochs 4 --batch-size 64 --workers 2 --out runs/two
    python -m benchmarks.training runs/one runs/two

For each run folder (``train_config.json`` and ``history.json``, as ``edgedl train`` writes them): the
strategy, workers and replicas, the global batch, the median seconds per epoch (training and evaluation, of
the last attempt), the last epoch's validation metric, and the optimizer steps run over every attempt.
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from runtime.cli import OneLineParser, run_cli
from runtime.errors import UserError

COLUMNS = ("run", "strategy", "workers", "replicas", "global batch", "s / epoch", "validation", "steps run")


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: no such file; give a folder 'edgedl train' wrote") from None
    except ValueError:
        raise UserError(f"{path}: not JSON; is the run complete?") from None


def row(folder: Path) -> tuple:
    """One run's figures, as the table shows them."""
    config, history = _read(folder / "train_config.json"), _read(folder / "history.json")["history"]
    where, run = config["distribution"], config["run"]
    metric = next((k for k in history if k.startswith("val_") and k != "val_loss"), "val_loss")
    seconds = run.get("epoch_seconds") or []
    attempts = f" ({run['attempts']} attempts)" if run.get("attempts", 1) > 1 else ""
    return (
        str(folder),
        where["kind"],
        str(where["workers"]),
        str(where["replicas"]),
        str(where["global_batch"]),
        f"{statistics.median(seconds):.2f}" if seconds else "-",
        f"{metric[4:]} {history[metric][-1]:.4f}" if history.get(metric) else "-",
        f"{run['steps_run']:,}{attempts}",
    )


def main(argv=None) -> int:
    p = OneLineParser(prog="python -m benchmarks.training", description=__doc__.splitlines()[0])
    p.add_argument("runs", type=Path, nargs="+", help="run folders of 'edgedl train'")
    args = p.parse_args(argv)

    def body() -> int:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="training runs")
        for column in COLUMNS:
            table.add_column(column, justify="left" if column in ("run", "strategy") else "right")
        for folder in args.runs:
            table.add_row(*row(folder))
        Console(width=None if sys.stdout.isatty() else 160).print(table)
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
