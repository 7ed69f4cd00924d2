"""A model file's labelled data in the forms users keep it: a flat folder with a CSV of labels, a CSV alone,
an ``.npy`` of inputs with an ``.npy`` of labels, an ``.npz`` whose labels use only some classes."""
import numpy as np
import pytest
from PIL import Image

from edgedl.data.model_data import model_inputs
from runtime.errors import UserError
from runtime.metadata import ModelMetadata, TensorSpec

CLASSES = 7


def _meta(labels=None) -> ModelMetadata:
    return ModelMetadata(task="classification", format="tflite", precision="float32",
                         inputs=(TensorSpec("image", (1, 8, 8, 1), "float32"),),
                         outputs=(TensorSpec("scores", (1, CLASSES), "float32"),), labels=labels)  # fmt: skip


def _flat_folder(folder, labels: list) -> list:
    """Pictures side by side, each a different shade, and their names."""
    folder.mkdir()
    names = []
    for i, _ in enumerate(labels):
        names.append(f"p{i}.png")
        Image.fromarray(np.full((8, 8), 30 * i, np.uint8)).save(folder / names[-1])
    return names


def test_a_flat_folder_with_a_labels_csv_is_labelled_by_the_models_own_class_names(tmp_path):
    names = ("cat", "dog", "eel", "fox", "gnu", "hen", "ant")  # the file's order, not alphabetical
    given = ["dog", "ant", "hen", "dog"]
    files = _flat_folder(tmp_path / "photos", given)
    (tmp_path / "photos" / "labels.csv").write_text("path,label\n" + "".join(f"{f},{c}\n" for f, c in zip(files, given)))
    x, y, labels = model_inputs(_meta(names), "m.tflite", tmp_path / "photos")
    assert labels == names and y.tolist() == [1, 6, 5, 1]
    assert x.shape == (4, 8, 8, 1) and x[1].mean() > x[0].mean()  # in the CSV's order

    (tmp_path / "photos" / "labels.csv").write_text(f"{files[0]},zebra\n")
    with pytest.raises(UserError, match="'zebra' is none of the model's classes"):
        model_inputs(_meta(names), "m.tflite", tmp_path / "photos")


def test_class_indices_in_a_csv_count_the_classes_the_model_scores_not_those_present(tmp_path):
    files = _flat_folder(tmp_path / "photos", [0, 2, 3, 5])
    listing = tmp_path / "labels.csv"
    listing.write_text("".join(f"photos/{f},{c}\n" for f, c in zip(files, [0, 2, 3, 5])))
    _, y, labels = model_inputs(_meta(), "m.tflite", listing)
    assert y.tolist() == [0, 2, 3, 5] and labels == tuple(str(i) for i in range(CLASSES))

    listing.write_text(f"photos/{files[0]},9\n")
    with pytest.raises(UserError, match="label 9 is outside the model's 7 classes"):
        model_inputs(_meta(), "m.tflite", listing)


def test_an_npy_of_inputs_takes_an_npy_of_labels_as_indices_or_one_hot(tmp_path):
    x = np.random.default_rng(0).random((5, 8, 8, 1), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    indices = np.array([6, 0, 1, 1, 4])
    np.save(tmp_path / "y.npy", indices.reshape(-1, 1))
    got, y, labels = model_inputs(_meta(), "m.tflite", tmp_path / "x.npy", tmp_path / "y.npy")
    np.testing.assert_array_equal(got, x)
    assert y.tolist() == indices.tolist() and len(labels) == CLASSES
    np.save(tmp_path / "onehot.npy", np.eye(CLASSES, dtype=np.float32)[indices])
    assert model_inputs(_meta(), "m.tflite", tmp_path / "x.npy", tmp_path / "onehot.npy")[1].tolist() == indices.tolist()

    np.save(tmp_path / "short.npy", indices[:3])
    with pytest.raises(UserError, match="3 labels for 5 inputs"):
        model_inputs(_meta(), "m.tflite", tmp_path / "x.npy", tmp_path / "short.npy")


def test_an_npz_whose_labels_use_four_of_seven_classes_is_a_seven_class_set(tmp_path):
    np.savez(tmp_path / "d.npz", image=np.zeros((4, 8, 8, 1), np.float32), y=np.array([0, 2, 3, 2]))
    _, y, labels = model_inputs(_meta(), "m.tflite", tmp_path / "d.npz")
    assert y.tolist() == [0, 2, 3, 2] and len(labels) == CLASSES


def test_token_ids_from_an_npy_stay_integers(tmp_path):
    meta = ModelMetadata(task="generic", format="onnx", precision="float32",
                         inputs=(TensorSpec("ids", (None, 16), "int64"),),
                         outputs=(TensorSpec("probs", (None, CLASSES), "float32"),))  # fmt: skip
    ids = np.random.default_rng(0).integers(0, 30_000, (4, 16))
    np.save(tmp_path / "ids.npy", ids)
    x, y, _ = model_inputs(meta, "tok.onnx", tmp_path / "ids.npy")
    assert x.dtype == np.int64 and np.array_equal(x, ids) and y is None


def test_an_evaluation_set_too_small_to_measure_is_said_with_its_count():
    from edgedl.tasks import too_few

    assert "only 3 evaluation input(s): one of them is 33 points; give 30 or more" in too_few(3)
    assert too_few(30) == ""
