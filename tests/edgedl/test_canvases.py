"""The canvases detection and segmentation learn from: made from a seed, boxes and masks that agree."""
import numpy as np

from edgedl.data.canvases import STROKE, digit_canvases


def _digits():
    rng = np.random.default_rng(0)
    digits = np.zeros((10, 28, 28, 1), np.float32)
    for i in range(10):  # a bright block of its own size in each "digit"
        side = 8 + i
        digits[i, 4 : 4 + side, 6 : 6 + side] = rng.uniform(0.6, 1.0)
    return digits, np.arange(10)


def test_canvases_are_made_from_the_seed_alone():
    digits, labels = _digits()
    a = digit_canvases(digits, labels, 20, 64, np.random.default_rng(3))
    b = digit_canvases(digits, labels, 20, 64, np.random.default_rng(3))
    c = digit_canvases(digits, labels, 20, 64, np.random.default_rng(4))
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert not np.array_equal(a.masks, c.masks)
    assert a.images.shape == (20, 64, 64, 1) and a.masks.shape == (20, 64, 64) and a.masks.dtype == np.uint8


def test_every_box_holds_its_digit_and_the_mask_names_its_class():
    digits, labels = _digits()
    scenes = digit_canvases(digits, labels, 50, 64, np.random.default_rng(1), per_canvas=(1, 3))
    counts = [len(c) for c in scenes.classes]
    assert min(counts) >= 1 and max(counts) <= 3
    for image, mask, boxes, classes in zip(scenes.images, scenes.masks, scenes.boxes, scenes.classes):
        assert set(np.unique(mask)) <= {0} | {1 + int(c) for c in classes}
        for (x0, y0, x1, y1), c in zip(boxes.astype(int), classes):
            assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64
            mine = mask == 1 + c
            ys, xs = np.nonzero(mine)
            if len(ys):  # drawn over in full by a later digit of the same class is possible, never outside
                assert x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1 or \
                    list(classes).count(c) > 1  # fmt: skip
        assert np.all(image[mask > 0, 0] >= STROKE)  # a labelled pixel is a stroke pixel
        assert np.all(mask[image[..., 0] < STROKE] == 0)
