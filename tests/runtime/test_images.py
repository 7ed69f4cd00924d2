import numpy as np
import pytest
from PIL import Image

from runtime.errors import UserError
from runtime.images import expand_inputs, load_inputs
from runtime.metadata import ModelMetadata, TensorSpec

META = ModelMetadata(
    task="classification", format="tflite", precision="float32",
    inputs=(TensorSpec("x", (None, 28, 28, 1), "float32"),), outputs=(TensorSpec("y", (None, 10), "float32"),),
)  # fmt: skip


def test_rgb_image_of_another_size_becomes_grey_28x28_normalised(tmp_path):
    rgb = np.zeros((56, 40, 3), np.uint8)
    rgb[..., 0] = 255  # pure red: grey 76 in Pillow's ITU-R 601-2 luma
    Image.fromarray(rgb).save(tmp_path / "red.jpg", quality=100)
    names, x = load_inputs(expand_inputs([tmp_path / "red.jpg"]), META)
    assert x.shape == (1, 28, 28, 1) and x.dtype == np.float32
    assert abs(float(x.mean()) - 76 / 255) < 0.01


def test_npy_stack_uint8_is_normalised_and_float_kept(tmp_path):
    np.save(tmp_path / "u8.npy", np.full((3, 28, 28), 255, np.uint8))
    np.save(tmp_path / "f.npy", np.full((28, 28, 1), 0.25, np.float32))
    names, x = load_inputs(expand_inputs([tmp_path / "u8.npy", tmp_path / "f.npy"]), META)
    assert len(names) == 4 and names[0].endswith("u8.npy[0]")
    assert x.shape == (4, 28, 28, 1)
    assert x[:3].max() == pytest.approx(1.0) and x[3].max() == pytest.approx(0.25)


def test_unconvertible_inputs_are_user_errors(tmp_path):
    np.save(tmp_path / "wrong.npy", np.zeros((32, 32), np.uint8))
    with pytest.raises(UserError, match=r"array of shape \(1, 32, 32, 1\) cannot be converted to images of 28×28×1"):
        load_inputs(expand_inputs([tmp_path / "wrong.npy"]), META)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(UserError, match="broken.png: not a readable image"):
        load_inputs(expand_inputs([tmp_path / "broken.png"]), META)
    with pytest.raises(UserError, match="no such file or folder"):
        expand_inputs([tmp_path / "missing.png"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="folder holds no"):
        expand_inputs([tmp_path / "empty"])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UserError, match="unsupported input type '.txt'"):
        expand_inputs([tmp_path / "notes.txt"])
