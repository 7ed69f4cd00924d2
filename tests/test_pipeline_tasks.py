"""The zoo's segmenter, detector and embedder through the same pipeline (the denoisers and the recurrent
classifier: ``test_pipeline_denoisers.py``)."""
import json

import numpy as np
import pytest

from tests.conftest import run_cli, zoo_pipeline as _pipeline


def test_unet_lite_segments_canvases_scores_miou_and_edgedl_run_writes_masks(tmp_path):
    from PIL import Image

    report = _pipeline(tmp_path, "--model", "unet_lite", "--epochs", "1", "--variants", "tflite_int8",
                       "--train-size", "4000")  # fmt: skip
    assert report["task"] == "segmentation" and report["metric"] == "miou"
    original, i8 = report["variants"]
    assert original["metrics"]["pixel_accuracy"] > 0.9  # the background alone is about 95 % of the pixels
    assert 0 < original["metrics"]["miou"] <= 1 and original["metrics"]["iou_0"] > 0.9
    assert "iou_drop_max" in i8["metrics"] and i8["metric_delta"] is not None
    # The int8 artifact runs on the builtin kernels, and edgedl-run gives a mask the size of the picture.
    artifact = tmp_path / "run" / "artifacts" / "tflite_int8.tflite"
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_path=str(artifact),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)  # fmt: skip
    ops = {op["op_name"] for op in interp._get_ops_details()}
    assert "RESIZE_NEAREST_NEIGHBOR" in ops and not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"]
    picture = np.zeros((48, 80), np.uint8)
    picture[8:40, 30:50] = 255
    Image.fromarray(picture).save(tmp_path / "scene.png")
    proc = run_cli("edgedl-run", str(artifact), str(tmp_path / "scene.png"), "--out", str(tmp_path / "masks"), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)["results"][0]
    assert result["shape"] == [48, 80] and "background" in result["classes"]
    with Image.open(tmp_path / "masks" / "scene.png") as mask:
        assert mask.mode == "P" and mask.size == (80, 48)
    # select's budget, when none is given, is the task's (1 point of mIoU).
    proc = run_cli("edgedl", "select", str(tmp_path / "run" / "report.json"))
    fits = -i8["metric_delta"] <= 1.0
    assert (proc.returncode == 0) == fits and ("within 1.0 points" in proc.stdout + proc.stderr), proc.stderr


def test_centernet_lite_detects_digits_on_canvases_scores_map_and_edgedl_run_gives_boxes(tmp_path):
    from PIL import Image

    report = _pipeline(tmp_path, "--model", "centernet_lite", "--epochs", "1", "--variants", "tflite_int8",
                       "--train-size", "3000")  # fmt: skip
    assert report["task"] == "detection" and report["metric"] == "map50"
    original, i8 = report["variants"]
    assert 0 <= original["metrics"]["map"] <= original["metrics"]["map50"] <= 1
    assert {f"ap50_{c}" for c in range(10)} <= set(original["metrics"])
    assert "ap50_drop_max" in i8["metrics"] and i8["metric_delta"] is not None
    artifact = tmp_path / "run" / "artifacts" / "tflite_int8.tflite"
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_path=str(artifact),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)  # fmt: skip
    ops = {op["op_name"] for op in interp._get_ops_details()}
    assert not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"], ops
    Image.fromarray((np.load(tmp_path / "run" / "eval.npz")["x"][0, :, :, 0] * 255).astype(np.uint8)).save(
        tmp_path / "canvas.png")  # fmt: skip
    proc = run_cli("edgedl-run", str(artifact), str(tmp_path / "canvas.png"), "--json", "--out",
                   str(tmp_path / "drawn"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)["results"][0]
    assert result["shape"] == [96, 96] and isinstance(result["detections"], list)
    assert (tmp_path / "drawn" / "canvas.png").exists()
    # The decoding parameters travel in the artifact: the device needs nothing else.
    import runtime
    from runtime.detect import decoding_parameters

    meta = runtime.load(artifact).metadata
    assert dict(meta.decoding) == decoding_parameters() and len(meta.labels) == 10
    # On the device: the bundle for a Pi, and bench scoring the artifact on the run's data.
    proc = run_cli("edgedl", "bundle", str(tmp_path / "run"), "--target", "rpi-arm64", "--variant", "tflite_int8",
                   "--out", str(tmp_path / "det.tar.gz"))  # fmt: skip
    assert proc.returncode == 0 and (tmp_path / "det.tar.gz").exists(), proc.stderr[-2000:]
    proc = run_cli("edgedl-run", "bench", str(artifact), "--runs", "5", "--json", str(tmp_path / "device.json"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    device = json.loads((tmp_path / "device.json").read_text())["variants"][0]
    assert device["metrics"]["map50"] == pytest.approx(i8["metrics"]["map50"], abs=1e-6)


def test_the_embedder_is_verified_on_unseen_digits_and_its_artifact_carries_the_threshold(tmp_path):
    from PIL import Image

    import runtime

    report = _pipeline(tmp_path, "--model", "embedder", "--epochs", "1", "--variants", "tflite_int8")
    assert report["task"] == "embedding" and report["metric"] == "roc_auc"
    original, i8 = report["variants"]
    assert 0.5 < original["metrics"]["roc_auc"] <= 1 and 0 <= original["metrics"]["tar_far1"] <= 1
    assert "digits 7–9" in report["data"]["eval"]
    artifact = tmp_path / "run" / "artifacts" / "tflite_int8.tflite"
    threshold = runtime.load(artifact).metadata.decoding_value("threshold")
    assert threshold is not None and -1 <= threshold <= 1
    x = np.load(tmp_path / "run" / "eval.npz")["x"]
    for i in (0, 1):
        Image.fromarray((x[i, :, :, 0] * 255).astype(np.uint8)).save(tmp_path / f"{i}.png")
    proc = run_cli("edgedl-run", str(artifact), str(tmp_path / "0.png"), str(tmp_path / "1.png"), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    assert doc["threshold"] == threshold and doc["same"] == (doc["similarity"] > threshold)
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_path=str(artifact),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)  # fmt: skip
    ops = {op["op_name"] for op in interp._get_ops_details()}
    assert not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"], ops
