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
from typing import Optional

from runtime.cli import OneLineParser, run_cli
from runtime.errors import UserError
from runtime.devices import device_views
from runtime.files import atomic_path
from runtime.report import is_ok, metric_delta, read_report, unit
from runtime.runfolder import resolve

from .plots import layer_plot, size_plot, tail_plot, tradeoff_plot

# (header, cell): the header carries the unit; a signed figure is a change against the original.
COLUMNS = (
    ("machine", lambda r: r["machine"]),
    ("variant", lambda r: r["name"]),
    ("format", lambda r: r["format"]),
    ("precision", lambda r: r["precision"]),
    ("techniques", lambda r: ",".join(r.get("techniques", [])) or "-"),
    ("size (KB)", lambda r: round(r["size_bytes"] / 1024, 1)),
    ("gzip (KB)", lambda r: round(r["gzip_bytes"] / 1024, 1)),
    ("params", lambda r: r.get("params", "")),
    ("MACs", lambda r: r.get("macs", "")),
    ("metric", lambda r: "" if r["metrics"].get(r["_metric"]) is None else round(r["metrics"][r["_metric"]], 4)),
    ("Δ", lambda r: "" if r["metric_delta"] is None else f"{r['metric_delta'] + 0.0:+.2f}"),  # + 0.0: no "-0.00"
    ("Δ control", lambda r: "" if r.get("control_delta") is None else f"{r['control_delta'] + 0.0:+.2f}"),
    ("top-1 agree", lambda r: _rounded(r["metrics"].get("top1_agreement"), 4)),
    ("SNR (dB)", lambda r: _rounded(r["metrics"].get("snr_db"), 1)),
    ("flips", lambda r: r["metrics"].get("flips", "")),
    ("recall drop max (points)", lambda r: _rounded(r["metrics"].get("recall_drop_max"), 2)),
    ("IoU drop max (points)", lambda r: _rounded(r["metrics"].get("iou_drop_max"), 2)),
    ("AP@0.5 drop max (points)", lambda r: _rounded(r["metrics"].get("ap50_drop_max"), 2)),
    ("PSNR Δ p5 (dB)", lambda r: _signed(r["metrics"].get("psnr_delta_p5"))),
    ("PSNR Δ min (dB)", lambda r: _signed(r["metrics"].get("psnr_delta_min"))),
    ("worst image", lambda r: r.get("worst_sample", "") if r["format"] != "keras" else ""),
    ("p50 (µs)", lambda r: round(r["latency_ms"]["p50"] * 1e3, 1)),
    ("× float32", lambda r: "" if r.get("speed_vs_float32") is None else
     f"{r['speed_vs_float32']:.2f}" + (" (slower than float32)" if r["speed_vs_float32"] < 1 else "")),
    ("p90 (µs)", lambda r: round(r["latency_ms"]["p90"] * 1e3, 1)),
    ("p99 (µs)", lambda r: round(r["latency_ms"]["p99"] * 1e3, 1)),
    ("init (ms)", lambda r: round(r["init_ms"], 1) if r.get("init_ms") is not None else ""),
    ("items/s", lambda r: round(r["throughput"]["items_per_s"]) if r.get("throughput") else ""),
    ("peak RSS (MB)", lambda r: round(r["peak_rss_mb"], 1) if r.get("peak_rss_mb") else ""),
    ("Pareto", lambda r: "★" if r["_pareto"] else ""),
)
TEXT_COLUMNS = ("machine", "variant", "format", "precision", "techniques", "worst image")


# Shown when some variant has them: fidelity, and the tail of the damage (runtime.metrics.tail).
OPTIONAL = ("× float32", "Δ control", "top-1 agree", "SNR (dB)", "flips", "recall drop max (points)",
            "IoU drop max (points)",
            "AP@0.5 drop max (points)", "PSNR Δ p5 (dB)", "PSNR Δ min (dB)", "worst image")  # fmt: skip


def _rounded(value, digits: int):
    return "" if value is None else round(value, digits)


def _signed(value):
    return "" if value is None else f"{value + 0.0:+.2f}"


def machine_label(report: dict) -> str:
    m = report["machine"]
    name = m.get("device") or m.get("hostname")  # a device reached by 'edgedl deploy': the name it was given
    where = f"{name}: " if name else ""
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
    units = unit(metric)
    cols = [c for c in COLUMNS if (multi or c[0] != "machine")
            and (metric or c[0] not in ("metric", "Δ", "Δ control"))
            and (c[0] not in OPTIONAL or any(is_ok(r) and c[1](r) != "" for r in rows))]  # fmt: skip
    names = {"metric": metric, "Δ": f"Δ {metric} ({units})" if units else f"Δ {metric}",
             "Δ control": f"Δ vs control ({units})" if units else "Δ vs control"}
    header = [names.get(name, name) for name, _ in cols]
    body = []
    for r in rows:
        if is_ok(r):
            body.append([get(r) for _, get in cols])
        else:  # the identifying columns, then the reason in place of the figures
            ident = [get(r) for name, get in cols if name in TEXT_COLUMNS]
            body.append(ident + [f"failed: {r['error']}"] + [""] * (len(cols) - len(ident) - 1))
    return header, body


LAYER_HEADER = ["variant", "layer", "op", "its own int8 dB", "dB after it", "kept in float"]


def layer_table(rows: list[dict]) -> list[list]:
    """The int8 variants' worst layers (``layers`` of their records), one row a layer."""
    return [[r["name"], layer["node"], layer["op"], f"{layer['own_db']:.1f}",
             "" if layer["psnr_db"] is None else f"{layer['psnr_db']:.1f}",
             "yes" if layer["kept_float"] else ""] for r in rows if is_ok(r) for layer in r.get("layers", ())]


def side_by_side(rows: list[dict]) -> Optional[tuple]:
    """With several machines (the host and the boards 'edgedl deploy' measured on): each variant's p50 and Δ on
    each, a column a machine; None with one machine."""
    machines = list(dict.fromkeys(r["_machine"] for r in rows))
    if len(machines) < 2:
        return None
    by = {(r["_machine"], r["name"]): r for r in rows}

    def cell(r) -> str:
        if r is None:
            return "-"
        if not is_ok(r):
            return "failed"
        delta = "" if r["metric_delta"] is None else f" ({r['metric_delta'] + 0.0:+.2f})"
        return f"{r['latency_ms']['p50'] * 1e3:,.1f}{delta}"

    names = list(dict.fromkeys(r["name"] for r in rows if r["format"] != "keras"))
    return (["variant", *(f"{m}: p50 µs (Δ)" for m in machines)],
            [[n, *(cell(by.get((m, n))) for m in machines)] for n in names])


def to_markdown(title: str, header: list, body: list, layers: Optional[list] = None, side: Optional[tuple] = None) -> str:
    lines = [f"# {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in body]
    lines += ["", "★: Pareto-optimal (no other variant on the same machine is faster and at least as good)."]
    if side:
        lines += ["", "## Side by side: each machine's latency (Δ against the original)", "",
                  "| " + " | ".join(side[0]) + " |", "|" + "---|" * len(side[0])]
        lines += ["| " + " | ".join(row) + " |" for row in side[1]]
    if layers:
        lines += ["", "## int8's worst layers", "", "| " + " | ".join(LAYER_HEADER) + " |", "|" + "---|" * 6]
        lines += ["| " + " | ".join(row) + " |" for row in layers]
    return "\n".join(lines) + "\n"


def _layers_html(layers: list) -> str:
    if not layers:
        return ""
    head = "".join(f"<th class=t>{html.escape(h)}</th>" for h in LAYER_HEADER)
    body = "".join("<tr>" + "".join(f"<td class=t>{html.escape(c)}</td>" for c in row) + "</tr>" for row in layers)
    return (f"<h2>int8's worst layers</h2><p>The PSNR of each layer's output after its own quantization (lower "
            f"is worse), and against float after every layer up to it; the mean over the output's channels, on "
            f"calibration inputs. The mixed variants keep the worst in float.</p><table><thead><tr>{head}</tr>"
            f"</thead><tbody>{body}</tbody></table>")


HTML_STYLE = """
body{font-family:system-ui,sans-serif;margin:1em;max-width:1240px;color:#222}
h1{font-size:1.4em;margin:0 0 .3em}p{margin:.3em 0;font-size:14px}
table{border-collapse:collapse;font-size:12px;width:100%;table-layout:auto}
td,th{border:1px solid #ddd;padding:2px 3px;text-align:right;font-variant-numeric:tabular-nums}
th{background:#eee;position:sticky;top:0;cursor:pointer;font-weight:600;vertical-align:bottom}
th:hover{background:#ddd}td.t,th.t{text-align:left}td.v{min-width:10em}
tr.selected td{background:#e6f4e6;font-weight:600}tr.failed td{color:#a00}
.badge{background:#2a7;color:#fff;border-radius:3px;padding:0 3px;font-size:10px;margin-left:3px;
white-space:nowrap;display:inline-block}
figure{margin:1em 0}img{max-width:100%;height:auto}
"""

SORT_SCRIPT = """
document.querySelectorAll('#variants th').forEach((th, col) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0], rows = [...body.rows];
  const down = th.dataset.order !== 'down'; th.dataset.order = down ? 'down' : 'up';
  const key = r => { const t = r.cells[col].dataset.v ?? r.cells[col].textContent; const n = parseFloat(t);
                     return isNaN(n) ? t : n; };
  rows.sort((a, b) => { const x = key(a), y = key(b);
    const c = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === 'number' ? -1 : 1);
    return down ? c : -c; });
  rows.forEach(r => body.appendChild(r));
}));
"""


def _compact(value) -> str:
    """A large count as 93.3 k or 2.79 M (the page's columns stay narrow; the exact figure sorts and shows on hover)."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= 10 * scale if suffix == "k" else abs(value) >= scale:
            return f"{value / scale:.3g}\u00a0{suffix}"  # never broken across lines
    return str(value)


def _cell_html(header: str, value, link: Optional[str], selected: bool) -> str:
    if isinstance(value, float) and value != value:  # NaN: not measured
        value = ""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f'<td data-v="{value}" title="{value:,}">{_compact(value)}</td>'
    text = html.escape(str(value))
    if header in TEXT_COLUMNS:  # long names break at their parts, not off the page
        text = text.replace("_", "_<wbr>").replace(",", ",<wbr>")
    if header == "variant":
        if link:
            text = f'<a href="{html.escape(link)}">{text}</a>'
        if selected:
            text += '<span class="badge">selected</span>'
    kind = ' class="t v"' if header == "variant" else ' class="t"' if header in TEXT_COLUMNS else ""
    return f"<td{kind}>{text}</td>"


def _side_html(side: Optional[tuple]) -> str:
    if not side:
        return ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in side[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in side[1])
    return (f"<h2>Side by side: each machine's latency (Δ against the original)</h2><table id='machines'>"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def to_html(title: str, header: list, body: list, plots: dict, about: list[str], links: list, chosen: list,
            layers: Optional[list] = None, side: Optional[tuple] = None) -> str:  # fmt: skip
    """The page: what was measured and where, the table (sortable, sticky header), the plots; no network."""
    cells = "".join(f'<th{" class=t" if h in TEXT_COLUMNS else ""} title="click to sort">{html.escape(str(h))}</th>'
                    for h in header)  # fmt: skip
    rows = []
    for row, link, selected in zip(body, links, chosen):
        failed = any(isinstance(c, str) and c.startswith("failed: ") for c in row)
        kind = ' class="selected"' if selected else ' class="failed"' if failed else ""
        rows.append(f"<tr{kind}>" + "".join(_cell_html(h, c, link, selected) for h, c in zip(header, row)) + "</tr>")
    images = "".join(
        f'<figure><img id="{name}" alt="{html.escape(name)}" src="data:image/png;base64,'
        f'{base64.b64encode(png).decode()}"><figcaption>{html.escape(name)}</figcaption></figure>'
        for name, png in plots.items()
    )
    facts = "".join(f"<p>{line}</p>" for line in about)
    return (f"<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
            f"<title>{html.escape(title)}</title><style>{HTML_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f"{facts}<table id='variants'><thead><tr>{cells}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<p>★ Pareto: no other variant on the same machine is both faster and at least as good. "
            f"Δ: change against the original (Keras) model; click a column's name to sort.</p>"
            f"{_side_html(side)}{_layers_html(layers or [])}{images}"
            f"<script>{SORT_SCRIPT}</script></body></html>\n")  # fmt: skip


def _write(path: Path, data) -> None:
    with atomic_path(path) as tmp:
        (tmp.write_bytes if isinstance(data, bytes) else tmp.write_text)(data)


def _about(reports: list[dict], rows: list[dict], selection, budget: float) -> list[str]:
    """The page's opening lines: where and how it was measured, on what data, and what select picks."""
    lines = []
    for report in reports:
        m, data = report["machine"], report.get("data") or {}
        cores = f", {m['cores']} cores" if m.get("cores") else ""
        where = html.escape(f"{m.get('board') or m.get('cpu', '?')} ({m.get('arch', '?')}{cores})")
        lines.append(f"<b>Measured on</b> {where}, {m.get('threads', '?')} interpreter thread(s), batch 1; latency "
                     f"in µs, sizes in KB (1,024 bytes).")  # fmt: skip
        if data.get("eval"):
            size = f" ({data['eval_size']:,} inputs)" if data.get("eval_size") else ""
            trained = f"; trained on {html.escape(data['train'])}" if data.get("train") else ""
            lines.append(f"<b>Evaluation data</b>: {html.escape(data['eval'])}{size}{trained}.")
    metric = rows[0]["_metric"]
    if metric:
        units = unit(metric)
        in_db = f" in {units}" if units == "dB" else ""
        lines.append(f"<b>{html.escape(metric)}</b>{in_db}; Δ in {units or 'its units'} against the original model.")
        if selection is not None:
            picked = html.escape(selection.explanation)
            lines.append(f"<b>Selected</b> (<code>edgedl select --max-drop {budget:g}</code>): {picked}"
                         if selection.variant is not None else f"<b>Selected</b>: none: {picked}")  # fmt: skip
    return lines


def render(report_paths: list[Path], out: Path) -> dict:
    """Write report.md, report.csv, report.html and the PNG plots into ``out`` from ``report.json`` files;
    return their paths."""
    return render_reports([read_report(p) for p in report_paths], [Path(p).parent for p in report_paths], out)


def render_reports(reports: list[dict], run_dirs: list[Path], out: Path) -> dict:
    """``render`` for reports in memory (``run_dirs``: each one's run folder, where its artifacts are).
    The page and the plots mark the variant ``edgedl select`` picks, within the run's budget
    (``budget`` in the report, from ``edgedl pipeline --max-drop``) or the task's (``select.default_budget``)."""
    from .select import default_budget, select

    # A run's rows measured on devices ('edgedl deploy') are shown beside the host's, a machine each.
    pairs = [(view, folder) for report, folder in zip(reports, run_dirs) for view in (report, *device_views(report))]
    reports, run_dirs = [p[0] for p in pairs], [p[1] for p in pairs]
    rows = merge(reports)
    models = ", ".join(dict.fromkeys(r["model"] for r in reports))
    title = f"edgedl: {models} ({reports[0]['task']})"
    header, body = table(rows)
    metric = rows[0]["_metric"]
    asked = reports[0].get("budget") or {}
    budget, by = asked.get("max_drop", default_budget(reports[0])), asked.get("by", "latency")
    selection = select(reports[0], budget, by) if metric else None
    selected = selection.variant["name"] if selection is not None and selection.variant is not None else None
    plots = {} if not metric else {
        "tradeoff.png": tradeoff_plot(rows, selected, budget),
        "size.png": size_plot(rows, budget),
    }  # fmt: skip
    tail = tail_plot(rows) if metric else None
    if tail is not None:
        plots["tail.png"] = tail
    layers, worst = layer_table(rows), layer_plot(rows)
    if worst is not None:
        plots["layers.png"] = worst
    out.mkdir(parents=True, exist_ok=True)
    folders = {machine_label(rep): folder for rep, folder in zip(reports, run_dirs)}
    links = [_link(r, folders.get(r["_machine"]), out) for r in rows]
    chosen = [r["name"] == selected and r["_machine"] == rows[0]["_machine"] for r in rows]
    written = {"md": out / "report.md", "csv": out / "report.csv", "html": out / "report.html"}
    side = side_by_side(rows)
    _write(written["md"], to_markdown(title, header, body, layers, side))
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *body])
    _write(written["csv"], buffer.getvalue())
    about = _about(reports, rows, selection, budget)
    _write(written["html"], to_html(title, header, body, plots, about, links, chosen, layers, side))
    for name, png in plots.items():
        _write(out / name, png)
        written[name] = out / name
    return written


def _link(row: dict, run_dir: Optional[Path], out: Path) -> Optional[str]:
    """The artifact's address relative to the page (None when it is not on this machine)."""
    import os

    if not row.get("path") or run_dir is None:
        return None
    target = resolve(row["path"], run_dir)
    if not target.exists():
        return None
    return Path(os.path.relpath(target.resolve(), out.resolve())).as_posix()


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
