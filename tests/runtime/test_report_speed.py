"""A variant slower than the float32 model of its own format is said to be, next to it."""
from runtime.report import make_report


def _variant(name, fmt, precision, p50, techniques=(), status="ok"):
    record = {"name": name, "format": fmt, "precision": precision, "techniques": list(techniques), "status": status,
              "metrics": {"accuracy": 0.9}, "latency_ms": {"p50": p50, "p90": p50, "p99": p50, "mean": p50},
              "size_bytes": 1, "gzip_bytes": 1}  # fmt: skip
    return record if status == "ok" else {**record, "error": "x", "metrics": {}}


def test_each_variant_is_timed_against_its_formats_float32():
    from benchmarks.render import table
    from benchmarks.report import render_table

    report = make_report("m", "classification", [
        _variant("original", "keras", "float32", 9.0),
        _variant("tflite_float32", "tflite", "float32", 6.9),
        _variant("tflite_int8", "tflite", "int8", 4.6),
        _variant("tflite_dynamic", "tflite", "dynamic", 11.5),
        _variant("prune_tflite_float32", "tflite", "float32", 6.9, ("prune",)),
        _variant("onnx_float32", "onnx", "float32", 8.0),
        _variant("onnx_int8", "onnx", "int8", 4.0),
        _variant("onnx_dynamic", "onnx", "dynamic", 1.0, status="failed"),
    ], {"cpu": "x", "threads": 1})  # fmt: skip
    speed = {v["name"]: v.get("speed_vs_float32") for v in report["variants"]}
    assert speed == {"original": None, "tflite_float32": None, "tflite_int8": 1.5, "tflite_dynamic": 0.6,
                     "prune_tflite_float32": 1.0, "onnx_float32": None, "onnx_int8": 2.0, "onnx_dynamic": None}
    rows = [{**v, "_machine": "x", "_metric": "accuracy", "_pareto": False} for v in report["variants"]]
    header, body = table(rows)
    column = header.index("× float32")
    assert body[3][column] == "0.60 (slower than float32)" and body[2][column] == "1.50"
    from rich.console import Console

    console = Console(width=160, record=True)
    console.print(render_table(report))
    assert "0.60 slower" in console.export_text()
