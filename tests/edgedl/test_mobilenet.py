"""The zoo's real-scale classifier: MobileNetV2 at a chosen width and input size, from a checkpoint, on a folder
of photos (made here, as the real-scale benchmark makes its: coloured shapes on noise, three classes,
non-square JPEGs)."""
import json

import numpy as np
import pytest

from benchmarks.realscale import make_photos
from runtime.errors import UserError
from tests.conftest import run_cli


def _operators(path) -> dict:
    from collections import Counter

    from ai_edge_litert.interpreter import Interpreter

    return dict(Counter(op["op_name"] for op in Interpreter(model_path=str(path))._get_ops_details()))


def test_its_width_and_input_size_are_the_users_and_its_costs_the_papers():
    from edgedl.compress import model_stats
    from edgedl.models import build_for_task, model_entry

    entry = model_entry("mobilenet_v2")
    model = build_for_task(entry, tuple("abcde"), {"width": 0.35, "input_size": 96})
    assert model.input_shape == (None, 96, 96, 3) and model.output_shape == (None, 5)
    assert entry.input_shape_for({"input_size": 96}) == (96, 96, 3) and entry.raw_pixels
    full = build_for_task(entry, tuple(str(i) for i in range(1000)), {})
    assert model_stats(full)["params"] == 3_538_984  # keras-applications' MobileNetV2 1.0
    assert model_stats(full)["macs"] == pytest.approx(300e6, rel=0.01)  # Sandler et al. (2018): 300 M
    with pytest.raises(UserError, match="--width: cnn takes no width; mobilenet_v2 does"):
        build_for_task(model_entry("cnn"), tuple("ab"), {"width": 0.5})


def test_a_checkpoint_of_the_same_architecture_loads_but_its_head(tmp_path):
    from edgedl.models import build_for_task, create_model, model_entry
    from edgedl.training.model_io import load_matching_weights

    entry = model_entry("mobilenet_v2")
    pretrained = build_for_task(entry, tuple("abc"), {"width": 0.35, "input_size": 96})
    pretrained.save_weights(tmp_path / "no_top.h5")  # HDF5 by layer name, as keras-applications ships them
    mine = build_for_task(entry, tuple("abcde"), {"width": 0.35, "input_size": 96})
    loaded, total = load_matching_weights(mine, tmp_path / "no_top.h5")
    assert loaded == total - 1  # every layer but the head for five classes
    np.testing.assert_array_equal(mine.get_layer("Conv1").get_weights()[0],
                                  pretrained.get_layer("Conv1").get_weights()[0])  # fmt: skip
    assert mine.get_layer("predictions").get_weights()[0].shape == (1280, 5)
    create_model("cnn").save_weights(tmp_path / "cnn.h5")
    with pytest.raises(UserError, match="no layer of .* has its name and shapes there"):
        load_matching_weights(mine, tmp_path / "cnn.h5")


def test_a_photo_folder_trains_it_and_every_technique_compresses_it(tmp_path):
    photos = make_photos(tmp_path / "photos", 60, size=(120, 90))  # not square: --resize matters
    out = tmp_path / "run"
    proc = run_cli("edgedl", "pipeline", "--model", "mobilenet_v2", "--width", "0.35", "--input-size", "96",
                   "--data", str(photos), "--epochs", "1", "--out", str(out), "--runs", "20", "--warmup", "2",
                   "--variants", "tflite_int8,prune_tflite_int8,filter_prune_tflite_float32,qat_tflite_int8")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    by_name = {v["name"]: v for v in report["variants"]}
    assert [v["name"] for v in report["variants"] if v["status"] != "ok"] == []
    assert by_name["original"]["params"] == 414_051  # 0.35 wide, three classes
    assert set(by_name) == {"original", "tflite_int8", "prune_tflite_int8", "filter_prune_tflite_float32",
                            "qat_tflite_int8"}  # fmt: skip
    assert by_name["filter_prune_tflite_float32"]["macs"] < 0.6 * by_name["original"]["macs"]
    sparsity = by_name["prune_tflite_int8"]["layer_sparsity"]  # tfmot leaves depthwise kernels whole
    assert sorted(sparsity.values())[len(sparsity) // 2] == pytest.approx(0.8, abs=0.01)
    assert sparsity["Conv1"] == pytest.approx(0.8, abs=0.01)
    # QAT's batch norms are folded into their convolutions: the same operators as post-training int8's graph.
    assert _operators(out / "artifacts" / "qat_tflite_int8.tflite") == _operators(out / "artifacts" / "tflite_int8.tflite")
    meta = json.loads((out / "train_config.json").read_text())
    assert meta["options"] == {"input_size": 96, "width": 0.35}
    assert meta["run"]["input_examples_per_s"] > 0 and meta["run"]["train_examples_per_s"] > 0
