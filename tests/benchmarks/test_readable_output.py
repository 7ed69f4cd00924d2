"""What a user reads: the terminal (captured chatter, a table that fits 80 columns) and the plots' labels."""
import io
import json
import os
import sys

import pytest

from benchmarks.render import merge, render
from benchmarks.report import print_table
from tests.benchmarks.test_report_and_select import report, variant

LONG_NAMES = ("filter_prune_75_labels_tflite_float32", "prune_cluster_qat_tflite_int8", "tflite_int8_pixels")


def wide_report() -> dict:
    """A report with every optional column and the longest variant names the pipeline makes."""
    rows = [variant("original", "keras", 0.0, 415.0, 399_700)]
    for i, name in enumerate(LONG_NAMES):
        v = variant(name, "tflite", -0.45 + i * 0.1, 7.7 + i, 9_000 + 1000 * i, "int8")
        v["metrics"].update({"top1_agreement": 0.99, "snr_db": 25.9, "flips": 12 + i, "recall_drop_max": 0.52})
        v["control_delta"] = 0.05
        v["latency_ms"]["mean"] = v["latency_ms"]["p50"]
        rows.append(v)
    rows[0]["latency_ms"]["mean"] = 0.415
    rows[0]["metrics"].update({"top1_agreement": 1.0, "flips": 0, "recall_drop_max": 0.0})
    return report(rows)


def printed(doc: dict, columns: int) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    print_table(doc, Console(file=buffer, width=columns, force_terminal=True, color_system=None))
    return buffer.getvalue()


def test_the_table_fits_80_columns_without_cutting_a_key_cell():
    text = printed(wide_report(), 80)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in text
    for i, name in enumerate(LONG_NAMES):  # variant, accuracy, Δ, p50 and sizes whole on the variant's own line
        (line,) = [ln for ln in lines if f" {name} " in f" {ln} "]
        delta = -0.45 + i * 0.1
        assert line.split()[0] == name and f"{delta:+.2f}" in line.split()
        assert f"{0.98 + delta / 100:.4f}" in line.split() and f"{7.7 + i:.1f}" in line.split()
    header = next(ln for ln in lines if ln.lstrip().startswith("variant"))
    for column in ("accuracy", "Δ pts", "p50 µs", "gzip KB", "size KB"):
        assert column in header
    assert "left out to fit" in text  # and says what it left out, and where the rest is
    wide = printed(wide_report(), 200)
    assert "left out" not in wide and "recall↓ pts" in wide and "p99 µs" in wide


def test_a_table_written_to_a_file_is_whole():
    from rich.console import Console

    buffer = io.StringIO()
    print_table(wide_report(), Console(file=buffer, width=80))  # not a terminal: nothing left out, no wrapping
    text = buffer.getvalue()
    assert "left out" not in text and "p99 µs" in text and "mean µs" in text


def test_chatter_goes_to_the_log_and_edgedl_lines_to_the_terminal(tmp_path, capfd):
    from edgedl.terminal import Terminal

    out = tmp_path / "run"
    terminal = Terminal()
    with terminal.capture(out, "edgedl pipeline --model cnn"):
        out.mkdir(exist_ok=True)  # capture made it: the log is there from the first line
        os.write(2, b"E0000 00:00:1.0  1 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)\n")
        os.write(1, b"fully_quantize: 0, inference_type: 6, input_inference_type: INT8\n")
        print("Epoch 1/8")
        print("WARNING:tensorflow:Gradients do not exist for variables ['mask:0'] when minimizing the loss.",
              file=sys.stderr)  # fmt: skip
        print("W0000 00:00:1.0  1 op.cc:1] Something a user should know about layer 'conv2d_1'", file=sys.stderr)
        terminal.say("export: tflite_int8")
        terminal.out.print("the results table")
    seen = capfd.readouterr()
    log = (out / "log.txt").read_text()
    for noise in ("cuInit", "fully_quantize", "Epoch 1/8", "Gradients do not exist", "Something a user"):
        assert noise not in seen.out + seen.err.split("warning(s)")[0] and noise in log
    assert "the results table" in seen.out and "export: tflite_int8" in seen.err and "edgedl export" in log
    # the one warning that is not known noise is summarised once, naming the log
    assert "1 warning(s)" in seen.err and "Something a user should know about layer" in seen.err
    assert str(out / "log.txt") in " ".join(seen.err.split())


def test_quiet_shows_only_results_and_verbose_captures_nothing(tmp_path, capfd):
    from edgedl.terminal import Terminal

    quiet = Terminal(quiet=True)
    with quiet.capture(tmp_path / "q", "x"):
        (tmp_path / "q").mkdir(exist_ok=True)
        quiet.say("benchmark: original")
        quiet.note("[red]failed[/]: onnx_int8: it broke")
    seen = capfd.readouterr()
    assert "benchmark: original" not in seen.err and "failed: onnx_int8: it broke" in seen.err
    assert "benchmark: original" in (tmp_path / "q" / "log.txt").read_text()
    verbose = Terminal(verbose=True)
    with pytest.raises(RuntimeError):
        with verbose.capture(tmp_path / "v", "x"):
            (tmp_path / "v").mkdir()
            os.write(2, b"failed call to cuInit\n")
            raise RuntimeError("no such model")
    assert "cuInit" in capfd.readouterr().err and not (tmp_path / "v").exists()


def test_a_failed_run_leaves_no_empty_folder_and_keeps_a_folder_with_work_in_it(tmp_path, capfd):
    from edgedl.terminal import Terminal

    with pytest.raises(RuntimeError):
        with Terminal().capture(tmp_path / "new", "x"):
            (tmp_path / "new").mkdir(exist_ok=True)
            raise RuntimeError("bad model")
    assert not (tmp_path / "new").exists()
    with pytest.raises(RuntimeError):
        with Terminal().capture(tmp_path / "trained", "x"):
            (tmp_path / "trained").mkdir(exist_ok=True)
            (tmp_path / "trained" / "model.keras").write_text("weights")
            os.write(2, b"the converter's own account of what went wrong\n")
            raise RuntimeError("export failed")
    assert "what went wrong" in (tmp_path / "trained" / "log.txt").read_text()


def test_the_tradeoff_plot_names_only_the_pareto_front_and_the_selected_variant(tmp_path, monkeypatch):
    import benchmarks.plots as plots

    named = []
    real = plots._label
    def label(ax, points):
        named.append([p[2] for p in points])
        real(ax, points)

    monkeypatch.setattr(plots, "_label", label)
    doc = wide_report()
    doc["variants"].append(variant("slow_and_worse", "onnx", -2.0, 90.0, 300_000))
    (tmp_path / "r.json").write_text(json.dumps(doc))
    written = render([tmp_path / "r.json"], tmp_path / "out")
    rows = merge([doc])
    front = {r["name"] for r in rows if r["_pareto"]}
    tradeoff = {n.replace("  ◀ selected", "") for n in named[0]}
    selected = [n for n in named[0] if n.endswith("◀ selected")]
    assert tradeoff == front | {"filter_prune_75_labels_tflite_float32"} and len(selected) == 1
    assert "slow_and_worse" not in tradeoff
    assert {"tradeoff.png", "size.png", "tail.png"} <= set(written)  # flips measured: the tail chart too
    page = written["html"].read_text()
    # No budget in the run: the task's (a classifier's: 1 point of accuracy).
    assert '<tr class="selected">' in page and "--max-drop 1 " in page.replace("</code>", " ")
    assert 'href="../artifacts/' not in page  # no artifact on disk here: nothing links to nowhere
