"""int8 at the edges: a model that takes the camera's 8-bit pixels (no float conversion on the device), and
one that takes and gives floats with the conversions inside; both predict what the int8-in model does."""
import numpy as np
import pytest
from PIL import Image

import runtime
from exporters import ModelInfo, NotApplicable, export
from runtime.metadata import Normalization


def test_the_pixel_model_stores_pixels_and_predicts_as_the_float_input_models_do(artifacts, mnist, tmp_path):
    pixels_art, float_art = artifacts[("tflite", "int8_pixels")], artifacts[("tflite", "int8_float")]
    model = runtime.load(pixels_art.path)
    spec = model.metadata.input
    assert spec.dtype == "uint8" and spec.quantization.zero_point == 0
    assert spec.quantization.scale == pytest.approx(1 / 255, rel=1e-6)  # a stored value is the pixel
    assert runtime.load(float_art.path).metadata.input.dtype == "float32"

    x = mnist[1].x[:300]  # floats in [0, 1]
    frames = np.rint(x * 255).astype(np.uint8)  # what a camera gives
    from_frames = model.predict(frames)
    np.testing.assert_array_equal(from_frames, model.predict(frames.astype(np.float32) / 255))
    agree = np.mean(from_frames.argmax(-1) == runtime.load(float_art.path).predict(x).argmax(-1))
    assert agree > 0.98

    Image.fromarray(frames[0, :, :, 0]).save(tmp_path / "digit.png")  # a picture is fed as its pixels
    from runtime.images import load_image

    fed = load_image(tmp_path / "digit.png", model.metadata)
    assert fed.dtype == np.uint8 and np.array_equal(fed, frames[0])


@pytest.mark.parametrize("norm, message", [
    (Normalization(2 / 255, -1.0), "no whole zero point"),  # [-1, 1]: zero point 127.5
    (Normalization.from_mean_std((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)), "per-channel normalisation"),
])  # fmt: skip
def test_a_normalisation_that_pixels_cannot_carry_is_refused_as_not_applicable(trained_cnn, mnist, tmp_path, norm,
                                                                                message):  # fmt: skip
    with pytest.raises(NotApplicable, match=message):
        export(trained_cnn, tmp_path / "m.tflite", "tflite", ModelInfo("classification", normalization=norm),
               precision="int8_pixels", calibration=mnist[0].x[:50])  # fmt: skip
    assert list(tmp_path.iterdir()) == []
