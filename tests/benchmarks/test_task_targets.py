"""The detection / segmentation / embedding target table, on hand-made reports."""
import pytest

from benchmarks.tasks import rows
from runtime.errors import UserError


def report(task, metric, original, int8):
    def record(name, value):
        return {"name": name, "metrics": {metric: value}, "status": "ok", "latency_ms": {"p50": 0.5}}

    return {"model": "m", "task": task, "metric": metric, "variants": [record("original", original),
                                                                       record("tflite_int8", int8)]}  # fmt: skip


def test_targets_are_met_or_not_by_the_originals_metric_and_what_int8_loses():
    (float_row, int8_row) = rows(report("detection", "map50", 0.93, 0.915))
    assert float_row[1:] == ("0.9300", "≥ 0.90", True)
    assert int8_row[1] == "-0.0150 (p50 500 µs)" and int8_row[3] is False  # 1.5 points lost: over the budget
    (float_row, int8_row) = rows(report("embedding", "roc_auc", 0.86, 0.855))
    assert float_row[3] is False and int8_row[3] is True
    with pytest.raises(UserError, match="a denoising run"):
        rows(report("denoising", "psnr", 30.0, 29.9))
