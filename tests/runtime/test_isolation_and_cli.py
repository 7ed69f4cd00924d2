"""The device side runs with TensorFlow and the host packages absent."""
import json

import numpy as np
import pytest

from tests.conftest import run_cli, run_python


def test_runtime_classifies_in_a_process_where_tensorflow_cannot_be_imported(artifacts, digit_pngs):
    folder, labels = digit_pngs
    tflite = artifacts[("tflite", "int8")].path
    onnx_path = artifacts[("onnx", "int8")].path
    proc = run_python(
        """
        import json, sys
        try:
            import tensorflow
            raise SystemExit("tensorflow was importable: the block is broken")
        except ImportError:
            pass
        from runtime.cli import main
        for model in sys.argv[1:3]:
            main([model, sys.argv[3], "--json", "--threads", "1"])
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "edgedl", "exporters", "tf_keras"))
        print(json.dumps({"host_modules": loaded}))
        """,
        str(tflite), str(onnx_path), str(folder),
        block_host=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    docs = [json.loads(d) for d in proc.stdout.replace("}\n{", "}\n\x00{").split("\x00")]
    assert docs[-1] == {"host_modules": []}
    for doc in docs[:2]:
        assert [r["input"].rsplit("/", 1)[-1] for r in doc["results"]] == [f"d{i:02d}.png" for i in range(10)]
        predicted = np.array([int(r["label"]) for r in doc["results"]])
        assert np.mean(predicted == labels) >= 0.8
        assert np.mean([r["score"] for r in doc["results"]]) > 0.5  # confident, as a trained CNN is on clean digits


def test_edgedl_run_prints_a_table_and_rejects_bad_input(artifacts, digit_pngs, tmp_path):
    folder, _ = digit_pngs
    model = str(artifacts[("tflite", "float32")].path)
    proc = run_cli("edgedl-run", model, str(folder / "d00.png"), "--top", "3")
    assert proc.returncode == 0, proc.stderr
    header, row = proc.stdout.strip().splitlines()
    assert header.split() == ["input", "label", "score", "next"] and row.split()[0].endswith("d00.png")
    assert len(row.split(",")) == 2  # the two runner-up classes of --top 3

    for argv, message in [
        ([model, str(tmp_path / "missing.png")], "missing.png: no such file or folder"),
        ([str(tmp_path / "none.tflite"), str(folder)], "none.tflite: no such model file"),
        ([model, str(folder), "--threads", "0"], "--threads 0: give 1 to"),
        ([model, str(folder), "--frobnicate"], "unrecognized arguments: --frobnicate"),
    ]:
        proc = run_cli("edgedl-run", *argv)
        assert proc.returncode == 2
        # The interpreter itself may log an "INFO: ..." line; ours is the one error line.
        lines = [line for line in proc.stderr.strip().splitlines() if not line.startswith("INFO: ")]
        assert len(lines) == 1 and message in lines[0], proc.stderr
        assert "Traceback" not in proc.stderr


def test_bench_of_a_runs_artifact_uses_the_runs_evaluation_data_and_original(artifacts, eval_npz, tmp_path):
    import shutil

    run = tmp_path / "run"
    (run / "artifacts").mkdir(parents=True)
    shutil.copy(artifacts[("tflite", "int8")].path, run / "artifacts" / "tflite_int8.tflite")
    shutil.copy(eval_npz, run / "eval.npz")
    timing = {"p50": 0.4, "p90": 0.4, "p99": 0.4}
    (run / "report.json").write_text(json.dumps({
        "schema_version": 2, "model": "cnn", "task": "classification", "metric": "accuracy",
        "machine": {"cpu": "host"}, "variants": [
            {"name": "original", "format": "keras", "precision": "float32", "path": "model.keras",
             "metrics": {"accuracy": 0.5}, "latency_ms": timing, "size_bytes": 1},
            {"name": "tflite_int8", "format": "tflite", "precision": "int8", "path": "artifacts/tflite_int8.tflite",
             "metrics": {"accuracy": 0.9}, "latency_ms": timing, "size_bytes": 1, "macs": 123}]}))  # fmt: skip
    proc = run_cli("edgedl-run", "bench", "artifacts/tflite_int8.tflite", "--runs", "20", "--json", "pi.json", cwd=run)
    assert proc.returncode == 0, proc.stderr
    assert str(run / "eval.npz") in proc.stdout and "vs the host's original" in proc.stdout
    doc = json.loads((run / "pi.json").read_text())
    measured = doc["variants"][0]
    assert measured["name"] == "tflite_int8" and measured["macs"] == 123
    assert measured["metric_delta"] == pytest.approx((measured["metrics"]["accuracy"] - 0.5) * 100)
    # The same artifact on its own, away from its run: synthetic inputs, said so.
    shutil.copy(run / "artifacts" / "tflite_int8.tflite", tmp_path / "loose.tflite")
    proc = run_cli("edgedl-run", "bench", str(tmp_path / "loose.tflite"), "--runs", "20")
    assert proc.returncode == 0 and "synthetic inputs" in proc.stdout
