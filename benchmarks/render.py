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
import sys
from pathlib import Path

from runtime.cli import OneLineParser, run_cli
from runtime.errors import UserError
from runtime.files import atomic_path
from runtime.report import is_ok, metric_delta, read_report, unit

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
    ("metric", lambda r: "" if r["metrics"].get(r["_metric"]) is None else round(r["metrics"][r["_metric"]], 4)),
    ("delta", lambda r: "" if r["metric_delta"] is None else f"{r['metric_delta']:+.2f} {unit(r['_metric'])}"),
    ("vs_control", lambda r: "" if r.get("control_delta") is None else f"{r['control_delta']:+.2f}"),
    ("top1_agree", lambda r: _rounded(r["metrics"].get("top1_agreement"), 4)),
    ("snr_db", lambda r: _rounded(r["metrics"].get("snr_db"), 1)),
    ("flips", lambda r: r["metrics"].get("flips", "")),
    ("recall_drop_max", lambda r: _rounded(r["metrics"].get("recall_drop_max"), 2)),
    ("psnr_delta_p5", lambda r: _rounded(r["metrics"].get("psnr_delta_p5"), 2)),
    ("psnr_delta_min", lambda r: _rounded(r["metrics"].get("psnr_delta_min"), 2)),
    ("p50_us", lambda r: round(r["latency_ms"]["p50"] * 1e3, 1)),
    ("p90_us", lambda r: round(r["latency_ms"]["p90"] * 1e3, 1)),
    ("p99_us", lambda r: round(r["latency_ms"]["p99"] * 1e3, 1)),
    ("init_ms", lambda r: round(r.get("init_ms", float("nan")), 1)),
    ("items_per_s", lambda r: round(r["throughput"]["items_per_s"]) if r.get("throughput") else ""),
    ("peak_rss_mb", lambda r: round(r["peak_rss_mb"], 1) if r.get("peak_rss_mb") else ""),
    ("pareto", lambda r: "★" if r["_pareto"] else ""),
)


# Shown when some variant has them: fidelity, and the tail of the damage (runtime.metrics.tail).
OPTIONAL = ("vs_control", "top1_agree", "snr_db", "flips", "recall_drop_max", "psnr_delta_p5", "psnr_delta_min")


def _rounded(value, digits: int):
    return "" if value is None else round(value, digits)


def machine_label(report: dict) -> str:
    m = report["machine"]
    where = f"{m['hostname']}: " if m.get("hostname") else ""
    return f"{where}{m.get('board') or m.get('cpu', '?')} ({m.get('arch', '?')}, {m.get('threads', '?')} thr)"


def pareto_front(rows: list[dict]) -> set:
    """Indices of rows that no other row beats on latency without losing metric (and vice versa)."""
    front = set()
    rows = [r if is_ok(r) and r["metric_delta"] is not None else None for r in rows]
    for i, a in enumerate(rows):
        if a is None:
            continue
        dominated = any(
            b["latency_ms"]["p50"] <= a["latency_ms"]["p50"] and b["metric_delta"] >= a["metric_delta"]
            and (b["latency_ms"]["p50"] < a["latency_ms"]["p50"] or b["metric_delta"] > a["metric_delta"])
            for j, b in enumerate(rows) if b is not None and j != i and b["_machine"] == a["_machine"]
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
    originals = [r for r in rows if r["format"] == "keras" and is_ok(r) and r["metrics"].get(r["_metric"]) is not None]
    for r in rows:  # a device's rows, measured away from the host's original: their delta against it
        metric = r["_metric"]
        if originals and is_ok(r) and r["metric_delta"] is None and r["metrics"].get(metric) is not None:
            r["metric_delta"] = metric_delta(r["metrics"][metric], originals[0]["metrics"][metric], metric)
    seen = {}
    for r in rows:  # the same variant measured twice on one machine: tell the rows apart
        key = (r["_machine"], r["name"])
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            r["name"] = f"{r['name']} (run {seen[key]})"
    front = pareto_front(rows)
    return [{**r, "_pareto": i in front} for i, r in enumerate(rows)]


def table(rows: list[dict]) -> tuple[list[str], list[list]]:
    multi = len({r["_machine"] for r in rows}) > 1
    metric = rows[0]["_metric"]
    cols = [c for c in COLUMNS if (multi or c[0] != "machine") and (metric or c[0] not in ("metric", "delta"))
            and (c[0] not in OPTIONAL or any(is_ok(r) and c[1](r) != "" for r in rows))]  # fmt: skip
    header = [metric if name == "metric" else name for name, _ in cols]
    body = []
    for r in rows:
        if is_ok(r):
            body.append([get(r) for _, get in cols])
        else:  # the identifying columns, then the reason in place of the figures
            ident = [get(r) for name, get in cols if name in ("machine", "variant", "format", "precision", "techniques")]
            body.append(ident + [f"failed: {r['error']}"] + [""] * (len(cols) - len(ident) - 1))
    return header, body


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
    rows = [r for r in rows if is_ok(r) and r["metrics"].get(metric) is not None]
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
    reports = [read_report(p) for p in report_paths]
    rows = merge(reports)
    models = ", ".join(dict.fromkeys(r["model"] for r in reports))
    title = f"edgedl: {models} ({reports[0]['task']})"
    header, body = table(rows)
    metric = rows[0]["_metric"]
    plots = {} if not metric else {
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
