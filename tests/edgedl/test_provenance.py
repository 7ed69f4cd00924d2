"""Build keys: change anything that shapes an artifact and the pipeline rebuilds it."""
from dataclasses import replace

import pytest

from edgedl.pipeline import recipes
from edgedl.compress import PruneConfig
from edgedl.pipeline.provenance import build_key, library_versions

BASE = dict(source_sha256="a" * 64, recipe="prune", fmt="tflite", precision="int8", calibration_sha256="c",
            data_sha256="d", seed=0, versions={"tensorflow": "2.21.0", "onnx": "1.23.2"})  # fmt: skip


@pytest.mark.parametrize("change", [
    {"source_sha256": "b" * 64},                              # the source model's weights or architecture
    {"recipe": "cluster"},                                     # another recipe
    {"fmt": "onnx"}, {"precision": "float32"},                 # format and precision
    {"calibration_sha256": "c2"},                              # calibration or check inputs
    {"data_sha256": "d2"},                                     # the training data's content
    {"seed": 1},                                               # the fine-tuning seed
    {"versions": {"tensorflow": "2.22.0", "onnx": "1.23.2"}},  # a converter's version
])  # fmt: skip
def test_each_ingredient_changes_the_key(change):
    assert build_key(**{**BASE, **change}) != build_key(**BASE)


def test_a_recipe_setting_changes_the_key(monkeypatch):
    before = build_key(**BASE)
    prune = recipes.RECIPES["prune"]
    monkeypatch.setitem(recipes.RECIPES, "prune", replace(prune, configs=(PruneConfig(0.5),)))
    assert build_key(**BASE) != before


def test_post_training_keys_ignore_what_does_not_touch_them():
    post = {**BASE, "recipe": None}
    assert build_key(**post) == build_key(**{**post, "data_sha256": "other", "seed": 7})
    assert "tensorflow" in library_versions() and "onnxruntime" in library_versions()


def test_an_artifact_is_reused_only_for_its_own_key(trained_cnn, model_info, tmp_path):
    from exporters import export
    from edgedl.pipeline.provenance import built_with

    key = build_key(**BASE)
    path = tmp_path / "a.tflite"
    export(trained_cnn, path, "tflite", replace(model_info, build_key=key))
    assert built_with(path, key)
    assert not built_with(path, build_key(**{**BASE, "calibration_sha256": "new"}))
    path.write_bytes(path.read_bytes()[:-10])  # a damaged artifact is rebuilt, not reused
    assert not built_with(path, key)
