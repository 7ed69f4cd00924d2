"""``report.md``, ``report.csv`` and a self-contained ``report.html`` (plots inlined) from one or more runs.

    python -m benchmarks.render runs/cnn/report.json [pi/report.json ...] --out runs/cnn/report

Several runs (the same model measured on the host and on a Raspberry Pi, say)
merge into one table with the machine as a column. The accuracy-vs-latency
plot marks the Pareto-optimal variants: none of the others is both faster
and at least as good.
"""
from __future__ import annotations

import base64
import csv
import html
import io
import json
import sys
from pathlib import Path

from runtime.cli import OneLineParser, run_cli
from runtime.errors import UserError
from runtime.files import atomic_path

COLUMNS = (
    ("machine", lambda r: r["machine"]),
    ("variant", lambda r: r["name"]),
    ("format", lambda r: r["format"]),
    ("precision", lambda r: r["precision"]),
    ("techniques", lambda r: ",".join(r.get("techniques", [])) or "-"),
    ("size_kb", lambda r: round(r["size_bytes"] / 1024, 1)),
    ("gzip_kb", lambda r: round(r["gzip_bytes"] / 1024, 1)),
    ("params", lambda r: r.get("params", "")),
    ("macs", lambda r: r.get("macs", "")),
    ("metric", lambda r: round(r["metrics"][r["_metric"]], 4)),
    ("delta", lambda r: round(r["metric_delta"], 2)),
    ("p50_us", lambda r: round(r["latency_ms"]["p50"] * 1e3, 1)),
    ("p90_us", lambda r: round(r["latency_ms"]["p90"] * 1e3, 1)),
    ("p99_us", lambda r: round(r["latency_ms"]["p99"] * 1e3, 1)),
    ("init_ms", lambda r: round(r.get("init_ms", float("nan")), 1)),
    ("items_per_s", lambda r: round(r["throughput"]["items_per_s"]) if r.get("throughput") else ""),
    ("peak_rss_mb", lambda r: round(r["peak_rss_mb"], 1) if r.get("peak_rss_mb") else ""),
    ("pareto", lambda r: "★" if r["_pareto"] else ""),
)


def machine_label(report: dict) -> str:
    m = report["machine"]
    where = f"{m['hostname']}: " if m.get("hostname") else ""
    return f"{where}{m.get('board') or m.get('cpu', '?')} ({m.get('arch', '?')}, {m.get('threads', '?')} thr)"


def pareto_front(rows: list[dict]) -> set:
    """Indices of rows that no other row beats on latency without losing metric (and vice versa)."""
    front = set()
    for i, a in enumerate(rows):
        dominated = any(
            b["latency_ms"]["p50"] <= a["latency_ms"]["p50"] and b["metric_delta"] >= a["metric_delta"]
            and (b["latency_ms"]["p50"] < a["latency_ms"]["p50"] or b["metric_delta"] > a["metric_delta"])
            for j, b in enumerate(rows) if j != i and b["_machine"] == a["_machine"]
        )  # fmt: skip
        if not dominated:
            front.add(i)
    return front


def merge(reports: list[dict]) -> list[dict]:
    """One row per variant per run, tagged with its machine; the Pareto flag set within each machine."""
    metrics = {r["metric"] for r in reports}
    if len(metrics) > 1:
        raise UserError(f"these reports measure different metrics ({', '.join(sorted(metrics))}); render them apart")
    rows = []
    for report in reports:
        label = machine_label(report)
        rows += [{**v, "machine": label, "_machine": label, "_metric": report["metric"]} for v in report["variants"]]
    front = pareto_front(rows)
    return [{**r, "_pareto": i in front} for i, r in enumerate(rows)]


def table(rows: list[dict]) -> tuple[list[str], list[list]]:
    multi = len({r["_machine"] for r in rows}) > 1
    cols = [c for c in COLUMNS if multi or c[0] != "machine"]
    metric = rows[0]["_metric"]
    header = [metric if name == "metric" else name for name, _ in cols]
    return header, [[get(r) for _, get in cols] for r in rows]


def to_markdown(title: str, header: list, body: list) -> str:
    lines = [f"# {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in body]
    lines += ["", "★: Pareto-optimal (no other variant on the same machine is faster and at least as good)."]
    return "\n".join(lines) + "\n"


def _plot(rows: list[dict], x_of, x_label: str, title: str, log_x: bool) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = rows[0]["_metric"]
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=110)
    for machine in dict.fromkeys(r["_machine"] for r in rows):
        mine = [r for r in rows if r["_machine"] == machine]
        ax.scatter([x_of(r) for r in mine], [r["metrics"][metric] for r in mine], label=machine, alpha=0.8)
        front = sorted((r for r in mine if r["_pareto"]), key=x_of)
        if front and x_label.startswith("latency"):
            ax.plot([x_of(r) for r in front], [r["metrics"][metric] for r in front], "--", color="tab:red",
                    label=f"Pareto front ({machine})" if len(rows) != len(mine) else "Pareto front")  # fmt: skip
            ax.scatter([x_of(r) for r in front], [r["metrics"][metric] for r in front], s=140, facecolors="none",
                       edgecolors="tab:red")  # fmt: skip
        for r in mine:
            ax.annotate(r["name"], (x_of(r), r["metrics"][metric]), fontsize=7, xytext=(4, 3),
                        textcoords="offset points")  # fmt: skip
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def to_html(title: str, header: list, body: list, plots: dict) -> str:
    cells = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in body
    )  # fmt: skip
    images = "".join(
        f'<figure><img id="{name}" alt="{html.escape(name)}" src="data:image/png;base64,'
        f'{base64.b64encode(png).decode()}"><figcaption>{html.escape(name)}</figcaption></figure>'
        for name, png in plots.items()
    )
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#eee}"
             "td:nth-child(-n+5){text-align:left}img{max-width:100%}")  # fmt: skip
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<table id='variants'><thead><tr>{cells}</tr></thead><tbody>{rows}</tbody></table>"
            f"<p>★: Pareto-optimal on accuracy vs latency.</p>{images}</body></html>\n")  # fmt: skip


def _write(path: Path, data) -> None:
    with atomic_path(path) as tmp:
        (tmp.write_bytes if isinstance(data, bytes) else tmp.write_text)(data)


def render(report_paths: list[Path], out: Path) -> dict:
    """Write report.md, report.csv, report.html and the two PNG plots into ``out``; return their paths."""
    reports = []
    for p in report_paths:
        if not Path(p).exists():
            raise UserError(f"{p}: no such report")
        reports.append(json.loads(Path(p).read_text()))
    rows = merge(reports)
    models = ", ".join(dict.fromkeys(r["model"] for r in reports))
    title = f"edgedl: {models} ({reports[0]['task']})"
    header, body = table(rows)
    metric = rows[0]["_metric"]
    plots = {
        "tradeoff.png": _plot(rows, lambda r: r["latency_ms"]["p50"] * 1e3, "latency p50, batch 1 (µs)",
                              f"{metric} vs latency", log_x=True),
        "size.png": _plot(rows, lambda r: r["size_bytes"] / 1024, "file size (KB)", f"{metric} vs size",
                          log_x=True),
    }  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    written = {"md": out / "report.md", "csv": out / "report.csv", "html": out / "report.html"}
    _write(written["md"], to_markdown(title, header, body))
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *body])
    _write(written["csv"], buffer.getvalue())
    _write(written["html"], to_html(title, header, body, plots))
    for name, png in plots.items():
        _write(out / name, png)
        written[name] = out / name
    return written


def main(argv=None) -> int:
    p = OneLineParser(prog="python -m benchmarks.render", description=__doc__.splitlines()[0])
    p.add_argument("reports", type=Path, nargs="+")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)

    def body() -> int:
        for kind, path in render(args.reports, args.out).items():
            print(f"{kind:>13}: {path}")
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
