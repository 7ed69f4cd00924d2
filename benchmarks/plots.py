"""The report's plots (matplotlib, PNG bytes): accuracy against latency, against gzip size, and the tail of
the damage. One marker shape per format, one colour per precision; only the Pareto front and the selected
variant are named (adjustText places the names)."""
from __future__ import annotations

import io
from typing import Optional

from runtime.report import is_ok, unit


MARKERS = {"keras": "*", "tflite": "o", "onnx": "s"}  # one shape per format
PRECISION_COLOURS = {"float32": "tab:blue", "float16": "tab:cyan", "dynamic": "tab:orange", "int8": "tab:green",
                     "int8_mixed": "tab:red", "int8_float": "tab:olive", "int8_pixels": "tab:purple"}  # fmt: skip


def _colour(precision: str) -> str:
    return PRECISION_COLOURS.get(precision, "tab:gray")


def _figure(width: float = 10, height: float = 6):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Constrained layout: room for long variant names without tight_layout's "not applied" warnings.
    return plt, *plt.subplots(figsize=(width, height), dpi=100, layout="constrained")


def _png(plt, fig) -> bytes:
    import warnings

    buffer = io.BytesIO()
    with warnings.catch_warnings():  # labels longer than the figure: drawn without the layout, said nowhere
        warnings.filterwarnings("ignore", message="constrained_layout not applied")
        fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _label(ax, points: list[tuple[float, float, str]]) -> None:
    """Name the points given, moved apart (adjustText) so that no two labels overlap."""
    from adjustText import adjust_text

    texts = [ax.text(x, y, name, fontsize=9) for x, y, name in points]
    if texts:
        xs, ys = [x for x, _, _ in points], [y for _, y, _ in points]
        adjust_text(texts, x=xs, y=ys, ax=ax, expand=(1.1, 1.3), max_move=(60, 30),
                    arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.6})  # fmt: skip


def _legends(ax, rows: list[dict], machines: list[str]) -> None:
    """Two keys: the marker's shape is the format, its colour the precision (hollow: another machine)."""
    from matplotlib.lines import Line2D

    formats = list(dict.fromkeys(r["format"] for r in rows))
    precisions = list(dict.fromkeys(r["precision"] for r in rows))
    shapes = [Line2D([], [], ls="", marker=MARKERS.get(f, "D"), color="0.3", label=f) for f in formats]
    if len(machines) > 1:  # filled: the first report's machine; hollow: the others'
        shapes += [Line2D([], [], ls="", marker="o", mfc="0.3" if i == 0 else "none", color="0.3", label=m)
                   for i, m in enumerate(machines)]  # fmt: skip
    first = ax.legend(handles=shapes, title="format", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
                      title_fontsize=8, alignment="left")  # outside the axes: no point hidden behind a key
    ax.add_artist(first)
    colours = [Line2D([], [], ls="", marker="o", color=_colour(p), label=p) for p in precisions]
    ax.legend(handles=colours, title="precision", loc="lower left", bbox_to_anchor=(1.01, 0.0), fontsize=8,
              title_fontsize=8, alignment="left")  # fmt: skip


def _scatter(ax, rows: list[dict], x_of, y_of, machines: list[str]) -> None:
    for r in rows:
        hollow = r["_machine"] != machines[0]
        colour = _colour(r["precision"])
        ax.scatter([x_of(r)], [y_of(r)], marker=MARKERS.get(r["format"], "D"), s=110 if r["format"] == "keras" else 55,
                   facecolors="none" if hollow else colour, edgecolors=colour, alpha=0.85, zorder=3)  # fmt: skip


def _budget_band(ax, original: Optional[dict], metric: str, budget: Optional[float]) -> None:
    """The original as a reference line, and the band of what stays within the budget."""
    if original is None:
        return
    value = original["metrics"][metric]
    ax.axhline(value, color="0.35", lw=1, ls=":", zorder=1)
    ax.annotate("original", (1.0, value), xycoords=("axes fraction", "data"), xytext=(-4, 3),
                textcoords="offset points", ha="right", fontsize=8, color="0.35")  # fmt: skip
    if budget is not None:
        scale = 100 if unit(metric) == "points" else 1
        ax.axhspan(value - budget / scale, value, color="tab:green", alpha=0.08, zorder=0)
        ax.annotate(f"within {budget:g} {unit(metric)}", (1.0, value - budget / scale),
                    xycoords=("axes fraction", "data"), xytext=(-4, 3), textcoords="offset points", ha="right",
                    fontsize=8, color="tab:green")  # fmt: skip


def _usable(rows: list[dict]) -> list[dict]:
    metric = rows[0]["_metric"]
    return [r for r in rows if is_ok(r) and r["metrics"].get(metric) is not None]


def _original(rows: list[dict]) -> Optional[dict]:
    return next((r for r in rows if r["format"] == "keras" or r["name"] == "original"), None)


def tradeoff_plot(rows: list[dict], selected: Optional[str], budget: Optional[float]) -> bytes:
    """Metric against latency: the Pareto front joined and named, the selected variant named."""
    plt, fig, ax = _figure()
    metric = rows[0]["_metric"]
    rows = _usable(rows)
    machines = list(dict.fromkeys(r["_machine"] for r in rows))
    x_of, y_of = (lambda r: r["latency_ms"]["p50"] * 1e3), (lambda r: r["metrics"][metric])
    _budget_band(ax, _original(rows), metric, budget)
    _scatter(ax, rows, x_of, y_of, machines)
    for machine in machines:
        front = sorted((r for r in rows if r["_pareto"] and r["_machine"] == machine), key=x_of)
        ax.plot([x_of(r) for r in front], [y_of(r) for r in front], "--", color="tab:red", lw=1, zorder=2)
    chosen = [r for r in rows if r["name"] == selected and r["_machine"] == machines[0]]
    for r in chosen:
        ax.scatter([x_of(r)], [y_of(r)], s=260, facecolors="none", edgecolors="black", linewidths=1.5, zorder=4)
    named = {id(r): r for r in rows if r["_pareto"]} | {id(r): r for r in chosen}
    _label(ax, [(x_of(r), y_of(r), r["name"] + ("  ◀ selected" if r in chosen else "")) for r in named.values()])
    ax.set_xscale("log")
    ax.set_xlabel("latency p50 at batch 1 (µs, log scale)")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} vs latency (dashed: Pareto front, circled: selected)")
    ax.grid(True, alpha=0.3)
    _legends(ax, rows, machines)
    return _png(plt, fig)


def size_plot(rows: list[dict], budget: Optional[float]) -> bytes:
    """Metric against gzip size (what pruning and clustering save when shipped), raw size as a grey tick."""
    plt, fig, ax = _figure()
    metric = rows[0]["_metric"]
    rows = _usable(rows)
    machines = list(dict.fromkeys(r["_machine"] for r in rows))
    rows = [r for r in rows if r["_machine"] == machines[0]]  # one machine: sizes do not change with it
    def gz(r):
        return r["gzip_bytes"] / 1024

    def raw(r):
        return r["size_bytes"] / 1024

    def y_of(r):
        return r["metrics"][metric]

    _budget_band(ax, _original(rows), metric, budget)
    for r in rows:
        ax.plot([gz(r), raw(r)], [y_of(r), y_of(r)], color="0.75", lw=0.8, zorder=1)
    ax.scatter([raw(r) for r in rows], [y_of(r) for r in rows], marker="|", s=80, color="0.45", zorder=2)
    _scatter(ax, rows, gz, y_of, machines[:1])
    front = [r for r in rows if not any(gz(o) <= gz(r) and y_of(o) >= y_of(r) and (gz(o), y_of(o)) != (gz(r), y_of(r))
                                        for o in rows)]  # fmt: skip
    _label(ax, [(gz(r), y_of(r), r["name"]) for r in front])
    ax.set_xscale("log")
    ax.set_xlabel("gzip size (KB, log scale); grey tick: the file as it is")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} vs size (named: none smaller and at least as good)")
    ax.grid(True, alpha=0.3)
    _legends(ax, rows, machines[:1])
    return _png(plt, fig)


def tail_plot(rows: list[dict]) -> Optional[bytes]:
    """The worst per-sample damage of each variant: predictions flipped, or the worst image's PSNR change."""
    rows = [r for r in rows if is_ok(r) and r["format"] != "keras"]
    for key, label in (("flips", "evaluation inputs whose prediction flips vs the original"),
                       ("psnr_delta_min", "worst single image's PSNR change vs the original (dB)"),
                       ("iou_drop_max", "largest fall of one class's IoU vs the original (points)"),
                       ("ap50_drop_max", "largest fall of one class's AP@0.5 vs the original (points)")):  # fmt: skip
        mine = [r for r in rows if key in r["metrics"]]
        if mine:
            break
    else:
        return None
    names = [r["name"] if len({r["_machine"] for r in mine}) == 1 else f"{r['name']} ({r['_machine']})" for r in mine]
    plt, fig, ax = _figure(10, max(3.0, 0.24 * len(mine) + 1.2))
    ax.barh(names, [r["metrics"][key] for r in mine], color=[_colour(r["precision"]) for r in mine])
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=8)
    ax.set_xlabel(label)
    ax.set_title("the tail of the damage (colour: precision)")
    ax.grid(True, axis="x", alpha=0.3)
    return _png(plt, fig)


def layer_plot(rows: list[dict]) -> Optional[bytes]:
    """Each int8 variant's worst layers: the PSNR of each one's own quantization (red: kept in float)."""
    mine = [r for r in rows if is_ok(r) and r.get("layers")]
    if not mine:
        return None
    bars = [(f"{r['name']}: {layer['node'][:40]}", layer) for r in mine for layer in r["layers"]]
    plt, fig, ax = _figure(10, max(3.0, 0.22 * len(bars) + 1.2))
    ax.barh([b[0] for b in bars], [b[1]["own_db"] for b in bars],
            color=["tab:red" if b[1]["kept_float"] else "tab:green" for b in bars])  # fmt: skip
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel("PSNR of the layer's output after its own quantization (dB, mean over its channels; lower is worse)")
    ax.set_title("int8's worst layers (red: kept in float by the mixed variant)")
    ax.grid(True, axis="x", alpha=0.3)
    return _png(plt, fig)
