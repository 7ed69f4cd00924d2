"""Segmentation on the device side: mIoU and per-class IoU on hand-made cases, the worst class a mean hides,
and masks decoded and written the size of the input picture (numpy and Pillow only)."""
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from runtime.metadata import ModelMetadata, TensorSpec
from runtime.metrics import class_iou, confusion, segmentation_metrics
from runtime.tasks import score, tail


def _scores(mask: np.ndarray, classes: int) -> np.ndarray:
    """One-hot scores whose top class at every pixel is ``mask``'s."""
    return np.eye(classes, dtype=np.float32)[mask]


def test_a_perfect_segmenter_scores_one_and_a_known_confusion_its_iou():
    truth = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2], [0, 0, 0, 0]])
    assert score("segmentation", [_scores(truth, 3)], [truth])["miou"] == 1.0
    guess = truth.copy()
    guess[0, 2] = 0  # one pixel of class 1 called background
    guess[3, 0] = 2  # one background pixel called class 2
    counts = confusion([truth], [guess], 3)
    assert counts.tolist() == [[7, 0, 1], [1, 3, 0], [0, 0, 4]]
    # IoU = TP / (TP + FP + FN): background 7/(7+1+1), class 1 3/(3+0+1), class 2 4/(4+1+0).
    expected = [7 / 9, 3 / 4, 4 / 5]
    np.testing.assert_allclose(class_iou(counts), expected)
    metrics = segmentation_metrics([truth], [_scores(guess, 3)])
    assert metrics["miou"] == pytest.approx(np.mean(expected))
    assert metrics["pixel_accuracy"] == pytest.approx(14 / 16)
    assert [metrics[f"iou_{c}"] for c in range(3)] == pytest.approx(expected)


def test_a_class_absent_from_masks_and_predictions_is_left_out_of_the_mean():
    truth = np.array([[0, 1], [1, 0]])
    metrics = segmentation_metrics([truth], [_scores(truth, 4)])  # classes 2 and 3 never appear
    assert metrics["miou"] == 1.0 and "iou_2" not in metrics and "iou_3" not in metrics


def test_the_tail_names_the_class_a_variant_ruins_while_the_mean_barely_moves():
    rng = np.random.default_rng(0)
    truth = [rng.integers(0, 2, (32, 32)) for _ in range(4)]
    truth[0][:2, :2] = 2  # a small class: 4 pixels in all
    original = [_scores(t, 3) for t in truth]
    ruined = [s.copy() for s in original]
    ruined[0][:2, :2] = _scores(np.zeros((2, 2), int), 3)  # the small class called background
    drop = tail("segmentation", original, ruined, truth)["iou_drop_max"]
    assert drop == pytest.approx(100.0)  # class 2's IoU: 1.0 -> 0.0
    assert tail("segmentation", original, original, truth)["iou_drop_max"] == 0.0


class _Segmenter:
    """A model of 64×64 inputs whose class at a pixel is 1 where the input is bright, else 0."""

    def __init__(self):
        spec_in = TensorSpec("image", (1, 64, 64, 1), "float32")
        spec_out = TensorSpec("class_scores", (1, 64, 64, 2), "float32")
        self.metadata = ModelMetadata(task="segmentation", format="tflite", precision="float32", inputs=(spec_in,),
                                      outputs=(spec_out,), labels=("background", "stroke"))  # fmt: skip
        self.seen = []

    def predict(self, x):
        self.seen.append(x.shape)
        bright = (x[..., 0] > 0.5).astype(np.int64)
        return _scores(bright, 2)


def test_edgedl_run_writes_palette_masks_the_size_of_each_input(tmp_path, capsys):
    from runtime.answers import segment_files

    picture = np.zeros((50, 70), np.uint8)
    picture[10:30, 20:50] = 255  # a bright block: class 1
    Image.fromarray(picture).save(tmp_path / "scene.png")
    model = _Segmenter()
    args = SimpleNamespace(model="seg.tflite", out=str(tmp_path / "masks"), json=False)
    assert segment_files(model, [tmp_path / "scene.png"], args) == 0
    assert model.seen == [(1, 64, 64, 1)]  # resized to the model's input
    with Image.open(tmp_path / "masks" / "scene.png") as mask:
        assert mask.mode == "P" and mask.size == (70, 50)  # the picture's own size
        values = np.asarray(mask)
    assert set(np.unique(values)) == {0, 1}
    assert values[20, 35] == 1 and values[45, 5] == 0  # inside and outside the block
    assert abs(int(values.sum()) - 20 * 30) <= 2 * (20 + 30)  # the block's area, give or take its edge
    assert "stroke" in capsys.readouterr().out  # the coverage, by class name
