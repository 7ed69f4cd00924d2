import gzip
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from edgedl.data import datasets
from edgedl.data.datasets import Reading, load_data, mnist_default, read_idx, train_eval
from runtime.errors import UserError


def _write_idx(path, array: np.ndarray, compress=False):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def test_default_split_is_8000_then_2000_real_digits(mnist):
    train, ev = mnist
    assert train.x.shape == (8000, 28, 28, 1) and ev.x.shape == (2000, 28, 28, 1)
    assert train.x.dtype == np.float32 and 0.0 == train.x.min() and train.x.max() == 1.0
    # The published mean pixel of the MNIST test split is 33.79 (on 0-255).
    full = np.concatenate([train.x, ev.x])
    assert full.mean() * 255 == pytest.approx(33.79, abs=0.01)
    assert np.bincount(np.concatenate([train.y, ev.y])).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_damaged_embedded_data_is_detected(tmp_path, monkeypatch):
    copy = tmp_path / "mnist"
    shutil.copytree(datasets.MNIST_DIR, copy)
    raw = bytearray((copy / datasets.MNIST_FILES[1]).read_bytes())
    raw[-1] ^= 0xFF
    (copy / datasets.MNIST_FILES[1]).write_bytes(bytes(raw))
    monkeypatch.setattr(datasets, "MNIST_DIR", copy)
    with pytest.raises(UserError, match="sha256 mismatch"):
        mnist_default()


def test_idx_folder_picks_train_and_t10k(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 12), ("t10k", 5)):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)), compress=True)
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n), compress=True)
    train, ev = train_eval(tmp_path)
    assert (len(train), len(ev)) == (12, 5)
    assert train.x.shape == (12, 28, 28, 1) and train.x.max() <= 1.0


def test_truncated_idx_and_missing_labels_are_named(tmp_path):
    _write_idx(tmp_path / "x-images-idx3-ubyte", np.zeros((4, 28, 28)))
    raw = (tmp_path / "x-images-idx3-ubyte").read_bytes()
    (tmp_path / "x-images-idx3-ubyte").write_bytes(raw[:-10])
    with pytest.raises(UserError, match="truncated"):
        read_idx(tmp_path / "x-images-idx3-ubyte")
    with pytest.raises(UserError, match="labels file x-labels-idx1-ubyte is missing"):
        load_data(tmp_path / "x-images-idx3-ubyte")


def test_npz_with_train_and_test_parts(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "mnist.npz", x_train=rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
             y_train=np.arange(20) % 10, x_test=rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
             y_test=rng.integers(0, 10, 6))  # fmt: skip
    train, ev = train_eval(tmp_path / "mnist.npz")
    assert (len(train), len(ev)) == (20, 6)
    np.savez(tmp_path / "bad.npz", images=np.zeros(3))
    with pytest.raises(UserError, match=r"needs arrays x_train/y_train"):
        load_data(tmp_path / "bad.npz")


def test_image_folder_per_class_with_seeded_holdout(tmp_path):
    for cls, value in (("cat", 30), ("dog", 220)):
        (tmp_path / cls).mkdir()
        for i in range(5):
            Image.fromarray(np.full((40, 32, 3), value, np.uint8)).save(tmp_path / cls / f"{i}.png")
    plain = Reading(augment=False)
    train, ev = train_eval(tmp_path, image_shape=(28, 28, 1), reading=plain)
    assert train.labels == ("cat", "dog")
    assert (len(train), len(ev)) == (8, 2) and train.x.shape[1:] == (28, 28, 1)
    everything = np.concatenate([train.y, ev.y])
    assert sorted(everything.tolist()) == [0] * 5 + [1] * 5
    cats = np.concatenate([np.asarray(train.x), np.asarray(ev.x)])[np.concatenate([train.y, ev.y]) == 0]
    assert cats.mean() == pytest.approx(30 / 255, abs=1e-6)
    again, _ = train_eval(tmp_path, image_shape=(28, 28, 1), reading=plain)
    np.testing.assert_array_equal(again.y, train.y)  # the hold-out is seeded


def test_missing_or_unknown_data_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such data file or folder"):
        load_data(tmp_path / "nothing")
    (tmp_path / "data.txt").write_text("1,2")
    with pytest.raises(UserError, match="unknown data format"):
        load_data(tmp_path / "data.txt")
    (tmp_path / "data.csv").write_text("1,2")
    with pytest.raises(UserError, match="1 listed files do not exist"):
        load_data(tmp_path / "data.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no class sub-folders"):
        load_data(tmp_path / "empty")
    (tmp_path / "empty" / "cats").mkdir()
    with pytest.raises(UserError, match=r"empty/cats: a class folder without pictures"):
        load_data(tmp_path / "empty")


def _photos(folder, sizes=((60, 90), (90, 60))):
    """Two classes of non-square JPEGs, a broken file among them, and a BMP."""
    rng = np.random.default_rng(3)
    for cls in ("a", "b"):
        (folder / cls).mkdir(parents=True)
        for i, (h, w) in enumerate(sizes * 3):
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / cls / f"{i}.jpg")
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / "a" / "x.bmp")
    (folder / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg at all")
    return folder


def test_a_photo_folder_skips_a_broken_file_with_its_name_and_reads_bmp(tmp_path):
    said = []
    photos = _photos(tmp_path / "photos")
    data = load_data(photos, image_shape=(32, 32, 3), reading=Reading(augment=False, log=said.append))
    assert len(data) == 13 and data.labels == ("a", "b") and data.x.shape == (13, 32, 32, 3)
    assert said == [f"data: skipped 1 unreadable of 14 pictures in {photos}: {photos / 'b' / 'broken.jpg'}"]
    first = data.x[:2]
    assert first.dtype == np.float32 and first.shape == (2, 32, 32, 3) and 0 <= first.min() and first.max() <= 1


def test_a_csv_of_paths_and_labels_reads_like_a_folder(tmp_path):
    photos = _photos(tmp_path / "photos")
    rows = ["path,label"] + [f"photos/{c}/{i}.jpg,{c}" for c in ("a", "b") for i in range(6)]
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    data = load_data(tmp_path / "list.csv", image_shape=(32, 32, 3), reading=Reading(augment=False))
    assert data.labels == ("a", "b") and data.y.tolist() == [0] * 6 + [1] * 6
    folder = load_data(photos, image_shape=(32, 32, 3), reading=Reading(augment=False))
    np.testing.assert_array_equal(data.x[:6], folder.x[:6])  # the same files, read the same way


@pytest.mark.parametrize("policy", ["stretch", "crop", "pad"])
def test_a_non_square_photo_gives_the_device_the_input_the_host_trained_on(tmp_path, policy):
    from runtime.images import load_image
    from runtime.metadata import ModelMetadata, TensorSpec

    photos = _photos(tmp_path / "photos")
    data = load_data(photos, image_shape=(24, 24, 3), reading=Reading(resize=policy, augment=False))
    meta = ModelMetadata(task="classification", format="tflite", precision="float32",
                         inputs=(TensorSpec("image", (1, 24, 24, 3), "float32"),),
                         outputs=(TensorSpec("scores", (1, 2), "float32"),), resize=policy)  # fmt: skip
    for i in (0, 1):  # 60×90 and 90×60
        np.testing.assert_allclose(data.x[i], load_image(data.x.files[i], meta), atol=1e-6)
    if policy == "pad":  # black borders where the wide picture had none
        assert float(np.abs(data.x[0][0]).max()) == 0.0
    if policy != "stretch":
        stretched = load_data(photos, image_shape=(24, 24, 3), reading=Reading(augment=False)).x[0]
        assert np.abs(stretched - data.x[0]).max() > 0.05


def test_training_pictures_are_augmented_each_read_and_calibration_is_not(tmp_path):
    photos = _photos(tmp_path / "photos", sizes=((32, 32),))
    train, _ = train_eval(photos, image_shape=(32, 32, 3), reading=Reading())
    assert "augmented" in train.source
    assert np.abs(train.x[:4] - train.x[:4]).max() > 0  # another flip, shift and light at every read
    plain = train.x.augmented(None)
    np.testing.assert_array_equal(plain[:4], plain[:4])


@pytest.mark.parametrize("case, message", [
    ("negative", "label -1 is negative; classes are numbered from 0"),
    ("beyond_names", "label 12 is beyond the 10 classes named (0 to 9)"),
    ("gap", "the labels run 0 to 12 but class(es) 10, 11 have no example"),
    ("nan", "values are NaN or infinite (the first in image 3)"),
    ("overflow", "values are NaN or infinite (the first in image 0)"),
    ("count", "199 labels in y for 200 images in x"),
])  # fmt: skip
def test_bad_labels_and_values_are_refused_before_training(tmp_path, case, message):
    x = np.random.default_rng(0).random((200, 8, 8)).astype(np.float32)
    y = np.arange(10).repeat(20)
    arrays = {"x": x, "y": y}
    if case == "negative":
        arrays["y"] = np.r_[y[:-1], -1]
    elif case in ("beyond_names", "gap"):
        arrays["y"] = np.r_[y[:-1], 12]
        if case == "beyond_names":
            arrays["labels"] = np.array([str(i) for i in range(10)])
    elif case == "nan":
        arrays["x"] = x.copy()
        arrays["x"][3, 2, 2] = np.nan
    elif case == "overflow":
        arrays["x"] = np.full(x.shape, 1e300)
    elif case == "count":
        arrays["y"] = y[:-1]
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(UserError, match=re.escape(message)):
        load_data(tmp_path / "d.npz", image_shape=(8, 8, 1))
