"""Object detection on the device: a CenterNet-style output decoded into boxes, non-maximum suppression, the
COCO metrics (``answers`` prints and draws the boxes).

edgedl's detectors (Zhou et al., 2019, "Objects as Points") give one tensor of (H/s, W/s, classes + 4) for
an input of H×W: per cell, a heat-map score for each class, the box's width and height as fractions of the
input's, and the centre's offset within the cell (x, y), all in [0, 1] (sigmoids: one int8 scale suits
them all). ``s``, the stride, is the input's size over the output's; the class count is the labels'. The
device needs nothing but the metadata.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import UserError

TOP_K = 100  # COCO's maxDets
SCORE_THRESHOLD = 0.05  # low, as for COCO evaluation: the curve needs the weak detections too
NMS_IOU = 0.5
SHOW_THRESHOLD = 0.3  # what edgedl-run prints and draws


@dataclass(frozen=True)
class Detections:
    boxes: np.ndarray  # (k, 4) float32 [x0, y0, x1, y1] in input pixels
    classes: np.ndarray  # (k,) int64
    scores: np.ndarray  # (k,) float32, highest first


def _peaks(heat: np.ndarray) -> np.ndarray:
    """Where a class's score is the largest of its 3×3 neighbourhood: CenterNet's max-pool NMS."""
    padded = np.pad(heat, ((1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    h, w = heat.shape[:2]
    best = np.max([padded[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)], axis=0)
    return heat >= best


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection over union of [x0, y0, x1, y1] boxes."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=-1)
    area = lambda x: np.prod(np.clip(x[:, 2:] - x[:, :2], 0, None), axis=-1)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float = NMS_IOU) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression within each class, highest score first."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    suppressed = np.zeros(len(order), bool)
    overlaps = box_iou(boxes[order], boxes[order])
    same = classes[order][:, None] == classes[order][None, :]
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(order[i])
        suppressed |= (overlaps[i] > iou) & same[i]
    return np.array(keep, np.int64)


def decoding_parameters() -> dict:
    """What an edgedl detector's artifacts carry in their metadata, and ``decode`` reads back."""
    return {"top_k": TOP_K, "score_threshold": SCORE_THRESHOLD, "nms_iou": NMS_IOU, "show_threshold": SHOW_THRESHOLD}


def decode(output: np.ndarray, input_size: tuple, classes: int, top_k: int = TOP_K,
           threshold: float = SCORE_THRESHOLD, nms_iou: float = NMS_IOU) -> Detections:  # fmt: skip
    """One input's output (H/s, W/s, classes + 4) as boxes in the input's pixels."""
    output = np.asarray(output, np.float32)
    if output.ndim != 3 or output.shape[-1] != classes + 4:
        raise UserError(f"a detector's output is (rows, columns, classes + 4) = (…, {classes + 4}); "
                        f"got {output.shape}")  # fmt: skip
    heat, size, offset = output[..., :classes], output[..., classes : classes + 2], output[..., classes + 2 :]
    stride_y, stride_x = input_size[0] / output.shape[0], input_size[1] / output.shape[1]
    ys, xs, cs = np.nonzero(_peaks(heat) & (heat >= threshold))
    scores = heat[ys, xs, cs]
    best = np.argsort(-scores, kind="stable")[:top_k]
    ys, xs, cs, scores = ys[best], xs[best], cs[best], scores[best]
    cx, cy = (xs + offset[ys, xs, 0]) * stride_x, (ys + offset[ys, xs, 1]) * stride_y
    w, h = size[ys, xs, 0] * input_size[1], size[ys, xs, 1] * input_size[0]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1).astype(np.float32).reshape(-1, 4)
    keep = nms(boxes, scores, cs, nms_iou)
    return Detections(boxes[keep], cs[keep].astype(np.int64), scores[keep].astype(np.float32))


def _average_precision(detections: list, truths: list, cls: int, threshold: float) -> float:
    """COCO's AP of one class at one IoU threshold: detections matched greedily by score to the unmatched
    ground truth of best IoU, precision made monotone and read at 101 recall points; NaN without ground truth."""
    scored, positives = [], 0
    for image, (det, (gt_boxes, gt_classes)) in enumerate(zip(detections, truths)):
        gt = np.asarray(gt_boxes).reshape(-1, 4)[np.asarray(gt_classes) == cls]
        positives += len(gt)
        mine = np.flatnonzero(det.classes == cls)
        mine = mine[np.argsort(-det.scores[mine], kind="stable")]
        taken = np.zeros(len(gt), bool)
        overlaps = box_iou(det.boxes[mine], gt)
        for row, d in enumerate(mine):
            candidates = np.where(taken, -1.0, overlaps[row]) if len(gt) else np.array([])
            hit = len(gt) > 0 and candidates.max() >= threshold
            if hit:
                taken[int(np.argmax(candidates))] = True
            scored.append((float(det.scores[d]), image, hit))
    if positives == 0:
        return float("nan")
    scored.sort(key=lambda s: -s[0])  # COCO sorts every image's detections together, by score
    hits = np.array([s[2] for s in scored], bool)
    tp, fp = np.cumsum(hits), np.cumsum(~hits)
    recall = tp / positives
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    points = np.linspace(0, 1, 101)
    where = np.searchsorted(recall, points, side="left")
    return float(np.mean([precision[i] if i < len(precision) else 0.0 for i in where]))


def detection_metrics(detections: list, truths: list, classes: int) -> dict:
    """mAP@0.5 and COCO's mAP@[0.5:0.95] (mean over the classes with ground truth, then over ten IoU
    thresholds), and each class's AP@0.5 as ``ap50_<class>``."""
    thresholds = np.linspace(0.5, 0.95, 10)
    table = np.array([[_average_precision(detections, truths, c, t) for t in thresholds] for c in range(classes)])
    present = ~np.isnan(table[:, 0])
    if not present.any():
        raise UserError("the evaluation set holds no boxes: nothing to measure a detector on")
    per_class = {f"ap50_{c}": float(table[c, 0]) for c in np.flatnonzero(present)}
    return {"map50": float(table[present, 0].mean()), "map": float(table[present].mean()), **per_class}
