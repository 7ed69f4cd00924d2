"""Embeddings on the device side: verification metrics on hand-made cases, the stored threshold carried by
the metadata, and edgedl-run's similarity and decision for two pictures (numpy and Pillow only)."""
import json
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from runtime.answers import embed_files
from runtime.embed import pair_scores, roc_auc, threshold_at, verification_metrics
from runtime.metadata import ModelMetadata, TensorSpec


def test_roc_auc_is_the_share_of_genuine_impostor_pairs_in_the_right_order():
    assert roc_auc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0
    # Genuine 0.9 beats both impostors, 0.4 beats one of 0.5 and 0.1: 3 of 4 pairs in order.
    assert roc_auc(np.array([0.9, 0.4]), np.array([0.5, 0.1])) == pytest.approx(0.75)
    assert roc_auc(np.array([0.5]), np.array([0.5])) == pytest.approx(0.5)  # a tie counts half


def test_pairs_split_by_class_and_verification_of_separated_classes_is_perfect():
    embeddings = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], np.float32)
    labels = np.array([3, 3, 7, 7])
    genuine, impostor = pair_scores(embeddings, labels)
    assert len(genuine) == 2 and len(impostor) == 4
    metrics = verification_metrics(embeddings, labels)
    assert metrics == {"roc_auc": 1.0, "tar_far1": 1.0}


def test_the_threshold_accepts_at_most_one_impostor_in_a_hundred():
    impostor = np.linspace(-1, 1, 1000)
    threshold = threshold_at(impostor)
    assert np.mean(impostor > threshold) <= 0.01 and np.mean(impostor >= threshold) > 0.005


def _embedder(threshold=None):
    decoding = (("threshold", threshold),) if threshold is not None else ()
    meta = ModelMetadata(task="embedding", format="tflite", precision="int8",
                         inputs=(TensorSpec("image", (1, 28, 28, 1), "float32"),),
                         outputs=(TensorSpec("embedding", (1, 2), "float32"),), decoding=decoding)  # fmt: skip

    class Embedder:
        metadata = meta

        def predict(self, x):  # bright pictures point one way, dark ones the other
            return np.array([[1.0, 0.0]] if x.mean() > 0.5 else [[0.0, 1.0]], np.float32)

    return Embedder()


def test_the_decoding_parameters_survive_the_metadatas_json():
    meta = _embedder(0.42).metadata
    again = ModelMetadata.from_dict(json.loads(meta.to_json()))
    assert again.decoding_value("threshold") == 0.42 and again.decoding == meta.decoding


def test_edgedl_run_gives_the_similarity_and_the_decision_at_the_stored_threshold(tmp_path, capsys):
    for name, value in (("a", 255), ("b", 250), ("c", 0)):
        Image.fromarray(np.full((28, 28), value, np.uint8)).save(tmp_path / f"{name}.png")
    args = SimpleNamespace(model="emb.tflite", json=True)
    embed_files(_embedder(0.5), [tmp_path / "a.png", tmp_path / "b.png"], args)
    same = json.loads(capsys.readouterr().out)
    assert same["similarity"] == pytest.approx(1.0) and same["same"] is True and same["threshold"] == 0.5
    embed_files(_embedder(0.5), [tmp_path / "a.png", tmp_path / "c.png"], args)
    different = json.loads(capsys.readouterr().out)
    assert different["similarity"] == pytest.approx(0.0) and different["same"] is False
    embed_files(_embedder(), [tmp_path / "a.png", tmp_path / "c.png"], SimpleNamespace(model="e", json=False))
    assert "no threshold stored" in capsys.readouterr().out
    embed_files(_embedder(), [tmp_path / "a.png"], args)
    assert json.loads(capsys.readouterr().out)["results"][0]["embedding"] == [1.0, 0.0]
