"""One report schema, validated on read by every command that reads a report; failed variants travel in it."""
import copy
import json

import pytest

from runtime.errors import UserError
from runtime.report import failed_record, make_report, read_report, validate_report
from tests.benchmarks.test_report_and_select import HAND_MADE, report, variant
from tests.conftest import run_cli


def test_a_report_validates_and_schema_1_reads_as_2():
    doc = validate_report(copy.deepcopy(HAND_MADE))
    assert doc["schema_version"] == 2 and all(v["status"] == "ok" for v in doc["variants"])


@pytest.mark.parametrize("damage, message", [
    (lambda d: d.pop("variants"), "no variants"),
    (lambda d: d.update(schema_version="1"), "no schema_version"),
    (lambda d: d.update(schema_version=9), "newer than this edgedl"),
    (lambda d: d["variants"].append(copy.deepcopy(d["variants"][1])), "appears twice"),
    (lambda d: d["variants"][1].update(latency_ms={"p50": -1}), "'f32' has no latency"),
    (lambda d: d["variants"][1]["metrics"].update(accuracy="high"), "unreadable metrics"),
    (lambda d: d["variants"][1].update(status="failed"), "failed without a reason"),
    (lambda d: d["variants"][2].pop("size_bytes"), "'dyn' has no size_bytes"),
])  # fmt: skip
def test_a_damaged_report_is_refused_naming_the_problem(damage, message):
    doc = copy.deepcopy(HAND_MADE)
    damage(doc)
    with pytest.raises(UserError, match=message):
        validate_report(doc, "r.json")


def test_failed_variants_have_no_delta_and_the_original_is_the_reference():
    variants = [variant("original", "keras", 0, 400, 1), variant("a", "tflite", -0.5, 40, 1),
                failed_record("b", "tflite", "int8", ("prune",), "ConverterError: op X")]  # fmt: skip
    doc = make_report("m", "classification", variants, {"cpu": "x", "threads": 1})
    assert [v["metric_delta"] for v in doc["variants"]] == [0.0, pytest.approx(-0.5), None]
    assert validate_report(doc)["variants"][2]["error"] == "ConverterError: op X"
    assert make_report("m", "generic", variants[:1], {"cpu": "x"})["metric"] is None


@pytest.mark.tf  # the edgedl command needs the host side installed, though these paths never import TensorFlow
@pytest.mark.parametrize("command", [["select", "--max-drop", "1"], ["report", "--out", "OUT"], ["bundle", "--target",
                                     "rpi-arm64", "--out", "OUT/x.tar.gz"]])  # fmt: skip
def test_commands_refuse_a_file_that_is_not_a_report_in_one_line(tmp_path, command):
    bad = tmp_path / "run"
    bad.mkdir()
    (bad / "report.json").write_text(json.dumps({"hello": "world"}))
    (tmp_path / "out").mkdir()  # a bundle goes into a folder that exists
    argv = [a.replace("OUT", str(tmp_path / "out")) for a in command]
    target = str(bad) if command[0] == "bundle" else str(bad / "report.json")
    proc = run_cli("edgedl", argv[0], target, *argv[1:])
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "not an edgedl report (no schema_version)" in lines[0]
    (bad / "report.json").write_text("{not json")
    with pytest.raises(UserError, match="not an edgedl report \\(not JSON\\)"):
        read_report(bad / "report.json")


def test_a_failed_variant_shows_in_every_format_and_is_never_selected(tmp_path):
    from benchmarks.render import render
    from benchmarks.select import select

    doc = copy.deepcopy(report([variant("original", "keras", 0, 400, 1), variant("ok", "tflite", -0.1, 40, 1)]))
    doc["variants"].append(failed_record("broken", "tflite", "int8", (), "ConverterError: 'tf.X' op failed"))
    path = tmp_path / "report.json"
    path.write_text(json.dumps(doc))
    written = render([path], tmp_path / "out")
    for kind in ("md", "csv", "html"):
        assert "failed: ConverterError: &#x27;tf.X&#x27; op failed" in written[kind].read_text() if kind == "html" \
            else "failed: ConverterError: 'tf.X' op failed" in written[kind].read_text()  # fmt: skip
    assert select(validate_report(doc), 5.0).variant["name"] == "ok"
