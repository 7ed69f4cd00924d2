"""Detection on the device side: decoding, NMS and COCO's metrics in numpy, checked against hand-made cases and
against pycocotools (COCO's own evaluation) on random ones."""
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from runtime.detect import Detections, box_iou, decode, detection_metrics, nms


def test_a_shifted_box_has_the_expected_iou():
    a = np.array([[0, 0, 10, 10]])
    assert box_iou(a, a)[0, 0] == 1.0
    assert box_iou(a, [[5, 0, 15, 10]])[0, 0] == pytest.approx(50 / 150)  # half overlaps: 50 / (100 + 100 - 50)
    assert box_iou(a, [[20, 20, 30, 30]])[0, 0] == 0.0


def test_nms_keeps_the_best_of_overlapping_boxes_of_one_class_only():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [30, 30, 40, 40]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    classes = np.array([0, 0, 1, 0])
    assert nms(boxes, scores, classes).tolist() == [0, 2, 3]  # box 1 overlaps box 0 (same class); 2 is class 1


def _output(objects, cells=24, classes=3, image=96):
    """A perfect CenterNet output for boxes (x0, y0, x1, y1, class)."""
    out = np.zeros((cells, cells, classes + 4), np.float32)
    stride = image / cells
    for x0, y0, x1, y1, c in objects:
        cx, cy = (x0 + x1) / 2 / stride, (y0 + y1) / 2 / stride
        out[int(cy), int(cx), c] = 0.9
        out[int(cy), int(cx), classes:] = [(x1 - x0) / image, (y1 - y0) / image, cx - int(cx), cy - int(cy)]
    return out


def test_decoding_gives_back_the_boxes_in_input_pixels():
    objects = [(10, 12, 34, 40, 0), (50, 50, 80, 90, 2)]
    found = decode(_output(objects), (96, 96), 3)
    assert sorted(found.classes.tolist()) == [0, 2]
    for x0, y0, x1, y1, c in objects:
        mine = found.boxes[found.classes == c][0]
        np.testing.assert_allclose(mine, [x0, y0, x1, y1], atol=1e-4)
    assert np.all(found.scores == pytest.approx(0.9))


def test_a_perfect_detector_scores_one_and_a_missed_class_lowers_the_mean():
    truths = [(np.array([[10, 12, 34, 40], [50, 50, 80, 90]], np.float32), np.array([0, 2]))]
    perfect = [decode(_output([(10, 12, 34, 40, 0), (50, 50, 80, 90, 2)]), (96, 96), 3)]
    metrics = detection_metrics(perfect, truths, 3)
    assert metrics["map50"] == pytest.approx(1.0) and metrics["map"] == pytest.approx(1.0)
    half = [decode(_output([(10, 12, 34, 40, 0)]), (96, 96), 3)]
    metrics = detection_metrics(half, truths, 3)
    assert metrics["ap50_0"] == pytest.approx(1.0) and metrics["ap50_2"] == 0.0 and metrics["map50"] == 0.5
    assert "ap50_1" not in metrics  # no ground truth of class 1: left out of the mean, as COCO does


def test_the_numpy_map_agrees_with_pycocotools():
    from pycocotools.coco import COCO  # in the test extra
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(0)
    truths, found, images, annotations, results = [], [], [], [], []
    for image in range(30):
        k = int(rng.integers(1, 5))
        xy = rng.uniform(0, 60, (k, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(12, 36, (k, 2))], axis=1).astype(np.float32)
        classes = rng.integers(0, 3, k)
        truths.append((boxes, classes))
        # Detections: the truths moved a little, some missed, some false, scores random.
        keep = rng.random(k) > 0.2
        noisy = boxes[keep] + rng.normal(0, 3, (int(keep.sum()), 4)).astype(np.float32)
        false = np.concatenate([xy[:1] + 40, xy[:1] + 60], axis=1).astype(np.float32)
        det_boxes = np.concatenate([noisy, false])
        det_classes = np.concatenate([classes[keep], rng.integers(0, 3, 1)])
        scores = rng.random(len(det_boxes)).astype(np.float32)
        order = np.argsort(-scores)
        found.append(Detections(det_boxes[order], det_classes[order], scores[order]))
        images.append({"id": image, "width": 96, "height": 96})
        for b, c in zip(boxes, classes):
            w, h = float(b[2] - b[0]), float(b[3] - b[1])
            annotations.append({"id": len(annotations) + 1, "image_id": image, "category_id": int(c),
                                "bbox": [float(b[0]), float(b[1]), w, h], "area": w * h, "iscrowd": 0})  # fmt: skip
        for b, c, s in zip(det_boxes, det_classes, scores):
            results.append({"image_id": image, "category_id": int(c), "score": float(s),
                            "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]})  # fmt: skip
    coco = COCO()
    coco.dataset = {"images": images, "annotations": annotations, "categories": [{"id": c} for c in range(3)]}
    coco.createIndex()
    evaluation = COCOeval(coco, coco.loadRes(results), "bbox")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    ours = detection_metrics(found, truths, 3)
    assert ours["map"] == pytest.approx(evaluation.stats[0], abs=2e-3)
    assert ours["map50"] == pytest.approx(evaluation.stats[1], abs=2e-3)


def test_edgedl_run_gives_boxes_in_the_pictures_pixels_and_draws_them(tmp_path, capsys):
    from runtime.answers import detect_files
    from runtime.metadata import ModelMetadata, TensorSpec

    class Detector:
        metadata = ModelMetadata(task="detection", format="tflite", precision="float32",
                                 inputs=(TensorSpec("image", (1, 96, 96, 1), "float32"),),
                                 outputs=(TensorSpec("detections", (1, 24, 24, 7), "float32"),),
                                 labels=("a", "b", "c"))  # fmt: skip

        def predict(self, x):
            return _output([(24, 24, 48, 72, 1)])[None]

    Image.fromarray(np.zeros((192, 288), np.uint8)).save(tmp_path / "scene.png")  # twice the height, 3× the width
    args = SimpleNamespace(model="det.tflite", out=str(tmp_path / "drawn"), json=True)
    assert detect_files(Detector(), [tmp_path / "scene.png"], args) == 0
    import json

    doc = json.loads(capsys.readouterr().out)["results"][0]
    assert [d["label"] for d in doc["detections"]] == ["b"]
    assert doc["detections"][0]["box"] == pytest.approx([72.0, 48.0, 144.0, 144.0], abs=0.2)
    with Image.open(tmp_path / "drawn" / "scene.png") as drawn:
        assert drawn.size == (288, 192) and np.asarray(drawn).max() > 0  # the box is drawn
