"""report.md/csv/html, the Pareto front, merging runs, and the accuracy-budget selection, on hand-made reports."""
import csv
import json
import shutil
import subprocess

import pytest

from benchmarks.render import merge, pareto_front, render
from benchmarks.select import copy_selected, select
from runtime.errors import UserError
from tests.conftest import run_cli


def variant(name, fmt, acc_delta, p50_us, size, precision="float32"):
    return {
        "name": name, "format": fmt, "precision": precision, "techniques": [], "path": f"artifacts/{name}.{fmt}",
        "size_bytes": size, "gzip_bytes": size // 2, "metrics": {"accuracy": 0.98 + acc_delta / 100},
        "metric_delta": acc_delta, "latency_ms": {"p50": p50_us / 1e3, "p90": p50_us / 1e3, "p99": p50_us / 1e3},
        "params": 10, "macs": 100,
    }  # fmt: skip


def report(variants, cpu="Host CPU", arch="x86_64"):
    return {"schema_version": 1, "model": "cnn", "task": "classification", "metric": "accuracy",
            "machine": {"cpu": cpu, "arch": arch, "threads": 1}, "variants": variants}  # fmt: skip


HAND_MADE = report([
    variant("original", "keras", 0.0, 400, 390_000),
    variant("f32", "tflite", 0.0, 50, 370_000),
    variant("dyn", "tflite", -0.2, 17, 100_000, "dynamic"),
    variant("int8", "tflite", -0.6, 40, 101_000, "int8"),
    variant("tiny", "tflite", -1.5, 10, 12_000, "int8"),
])  # fmt: skip


def test_select_picks_the_fastest_or_smallest_within_the_budget():
    assert select(HAND_MADE, 0.5).variant["name"] == "dyn"
    assert select(HAND_MADE, 0.0).variant["name"] == "f32"
    assert select(HAND_MADE, 2.0).variant["name"] == "tiny"
    assert select(HAND_MADE, 0.7, by="size").variant["name"] == "dyn"
    assert "the fastest of 2 variants within 0.5 points" in select(HAND_MADE, 0.5).explanation


def test_select_says_when_nothing_fits():
    strict = report([variant("original", "keras", 0, 400, 1), variant("q", "tflite", -0.8, 40, 1)])
    chosen = select(strict, 0.5)
    assert chosen.variant is None and "no variant stays within 0.5 points" in chosen.explanation
    assert "the closest, q, loses 0.80 points" in chosen.explanation
    with pytest.raises(UserError, match="unknown criterion 'speed'"):
        select(strict, 0.5, by="speed")
    broken = {"name": "onnx_int8", "format": "onnx", "precision": "int8", "status": "failed",
              "error": "INVALID_GRAPH: ConvAddFusion_Add_B_quantized"}  # fmt: skip
    chosen = select(report([*strict["variants"], broken]), 0.5)  # the refusal names what failed, not the budget alone
    assert "1 failed to build or measure (onnx_int8: INVALID_GRAPH: ConvAddFusion_Add_B_quantized)" in chosen.explanation
    chosen = select(report([strict["variants"][0], broken]), 0.5)
    assert chosen.explanation.startswith("no variant was measured, so none can be chosen; 1 failed")


def test_select_command_copies_to_a_stable_path_or_exits_non_zero(tmp_path):
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts" / "dyn.tflite").write_bytes(b"model")
    (tmp_path / "artifacts" / "dyn.tflite.json").write_text("{}")
    (tmp_path / "artifacts" / "f32.tflite").write_bytes(b"float model")
    (tmp_path / "report.json").write_text(json.dumps(HAND_MADE))
    proc = run_cli("edgedl", "select", str(tmp_path / "report.json"), "--max-drop", "0.5")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "selected" / "model.tflite").read_bytes() == b"model"
    assert (tmp_path / "selected" / "model.tflite.json").exists()
    assert json.loads((tmp_path / "selected" / "selection.json").read_text())["variant"] == "dyn"
    proc = run_cli("edgedl", "select", str(tmp_path / "report.json"), "--max-drop", "0.1", "--by", "latency")
    assert proc.returncode == 0 and (tmp_path / "selected" / "model.tflite").read_bytes() == b"float model"
    assert not (tmp_path / "selected" / "model.tflite.json").exists()  # the old variant's sidecar went with it
    nothing = report([variant("original", "keras", 0, 400, 1), variant("q", "tflite", -0.8, 40, 1)])
    (tmp_path / "strict.json").write_text(json.dumps(nothing))
    proc = run_cli("edgedl", "select", str(tmp_path / "strict.json"), "--max-drop", "0.5")
    assert proc.returncode == 2 and "no variant stays within 0.5 points" in proc.stderr


def test_pareto_front_is_the_set_nobody_beats():
    rows = merge([HAND_MADE])
    front = {rows[i]["name"] for i in pareto_front(rows)}
    assert front == {"f32", "dyn", "tiny"}  # int8 is beaten by dyn (faster, better); original by f32
    assert {r["name"] for r in rows if r["_pareto"]} == front


def test_render_writes_md_csv_html_and_plots_and_merges_machines(tmp_path):
    host, pi = tmp_path / "host.json", tmp_path / "pi.json"
    host.write_text(json.dumps(HAND_MADE))
    pi.write_text(json.dumps(report(HAND_MADE["variants"][:3], cpu="Cortex-A76", arch="aarch64")))
    written = render([host, pi], tmp_path / "out")
    md = written["md"].read_text()
    assert md.splitlines()[2].startswith("| machine | variant |") and "Cortex-A76" in md
    rows = list(csv.reader(written["csv"].open()))
    assert len(rows) == 1 + 5 + 3 and rows[0][0] == "machine"
    html = written["html"].read_text()
    assert html.count("data:image/png;base64,") == 2 and "http" not in html.replace("http-equiv", "")
    for name in ("tradeoff.png", "size.png"):
        assert written[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_render_refuses_mixed_metrics(tmp_path):
    other = dict(HAND_MADE, metric="psnr")
    (tmp_path / "a.json").write_text(json.dumps(HAND_MADE))
    (tmp_path / "b.json").write_text(json.dumps(other))
    with pytest.raises(UserError, match="different metrics"):
        render([tmp_path / "a.json", tmp_path / "b.json"], tmp_path / "out")


def full_report() -> dict:
    """The demo's 29 variants with every column a run fills, as wide as a real report gets."""
    names = ["tflite_float32", "tflite_float16", "tflite_int8_pixels", "onnx_dynamic", "prune_cluster_qat_tflite_int8",
             "filter_prune_75_labels_tflite_float32", "distill_onnx_float32"] * 4  # fmt: skip
    rows = [variant("original", "keras", 0.0, 415.0, 399_700)]
    for i, name in enumerate(names[:28]):
        v = variant(f"{name}_{i}" if i >= 7 else name, "tflite", -0.05 * i, 9.0 + i, 100_000 + 997 * i, "int8_pixels")
        v.update(techniques=["prune", "cluster", "qat"], control_delta=0.05, init_ms=7.1, peak_rss_mb=117.6,
                 params=93_322, macs=2_794_240, throughput={"items_per_s": 244_125})  # fmt: skip
        v["latency_ms"]["mean"] = v["latency_ms"]["p50"]
        v["metrics"].update(top1_agreement=0.9995, snr_db=136.7, flips=51, recall_drop_max=3.38)
        rows.append(v)
    return report(rows)


@pytest.mark.browser
def test_report_html_fits_1280_pixels_and_marks_the_selected_variant_in_headless_chromium(tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        pytest.skip("Chromium is not installed: 'make test' installs Debian's chromium package (apt-get install chromium)")
    doc = full_report()
    (tmp_path / "r.json").write_text(json.dumps(doc))
    written = render([tmp_path / "r.json"], tmp_path / "out")
    expected = select(doc, 0.5).variant["name"]
    probe = tmp_path / "out" / "probe.html"
    # Ask the page itself what it rendered: its width, the rows, the marked row, each image's decoded size.
    probe.write_text(written["html"].read_text().replace(
        "</body>",
        "<script>document.title=[document.documentElement.scrollWidth, "
        "document.querySelectorAll('#variants tbody tr').length, "
        "document.querySelector('tr.selected td').textContent, "
        "getComputedStyle(document.querySelector('#variants th')).position]"
        ".concat([...document.images].map(i=>i.naturalWidth+'x'+i.naturalHeight)).join(',')</script></body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,900"]  # fmt: skip
    dom = subprocess.run([browser, *flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    title = dom.stdout.split("<title>")[1].split("</title>")[0]
    width, rows, marked, header, *images = title.split(",")
    assert int(width) <= 1280, f"the page is {width} px wide: it scrolls sideways in a 1,280-pixel window"
    assert rows == "29" and marked == f"{expected}selected" and header == "sticky"
    assert len(images) == 3 and all(int(w) > 500 and int(h) > 250 for w, h in (i.split("x") for i in images))
    shot = tmp_path / "out" / "screenshot.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", written["html"].as_uri()],
                   capture_output=True, timeout=120)  # fmt: skip
    assert shot.stat().st_size > 20_000  # a blank page is a few KB


def test_a_worst_case_budget_passes_over_a_variant_fine_on_average_that_ruins_one_class():
    tails = {"f32": 0.0, "dyn": 12.5, "int8": 0.8, "tiny": 0.0}
    hand = report([{**v, "metrics": {**v["metrics"], "recall_drop_max": tails[v["name"]]}} if v["name"] in tails
                   else v for v in HAND_MADE["variants"]])  # fmt: skip
    assert select(hand, 1.0).variant["name"] == "dyn"  # 0.2 points on the mean...
    assert select(hand, 1.0, max_tail_drop=1.0).variant["name"] == "int8"  # ...but 12.5 on one class
    assert select(hand, 0.1, max_tail_drop=0.0).variant["name"] == "f32"
    with pytest.raises(UserError, match="--max-tail-drop must be zero or more"):
        select(hand, 0.5, max_tail_drop=-1)
    assert select(report([*hand["variants"][:1], hand["variants"][2]]), 1.0, max_tail_drop=5).variant is None
    table = render_table_text(report([{**v, "latency_ms": {**v["latency_ms"], "mean": 0.01}} for v in hand["variants"]]))
    assert "recall↓ pts" in table and "12.50" in table


def render_table_text(hand) -> str:
    from io import StringIO

    from rich.console import Console

    from benchmarks.report import render_table

    buffer = StringIO()
    Console(file=buffer, width=250).print(render_table(hand))
    return buffer.getvalue()


def test_a_distilled_width_meets_its_target_only_against_the_same_width_without_teacher():
    from benchmarks.targets import checks

    def with_macs(v, macs, accuracy):
        return {**v, "macs": macs, "metrics": {"accuracy": accuracy}, "metric_delta": (accuracy - 0.98) * 100}

    original = with_macs(variant("original", "keras", 0.0, 400, 390_000), 1000, 0.98)
    taught = with_macs(variant("filter_prune_62_tflite_float32", "tflite", 0, 10, 50_000), 200, 0.978)
    alone = with_macs(variant("filter_prune_62_labels_tflite_float32", "tflite", 0, 10, 50_000), 200, 0.975)

    def verdict(*variants):
        (found,) = [c for c in checks(report([original, *variants])) if c.variant == taught["name"]]
        return found

    assert verdict(taught, alone).passed and "without teacher 0.9750" in verdict(taught, alone).measured
    assert not verdict(taught).passed  # nothing to beat: not shown to beat it
    assert not verdict(taught, {**alone, "metrics": {"accuracy": 0.979}}).passed
