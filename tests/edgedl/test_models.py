import pytest

from edgedl.models import create_model, list_models, model_entry
from runtime.errors import UserError


def test_cnn_is_the_seed_classifier_exactly():
    model = create_model("cnn")
    layers = [(type(l).__name__, getattr(l, "filters", None) or getattr(l, "units", None)) for l in model.layers]
    assert layers == [
        ("Conv2D", 32), ("MaxPooling2D", None), ("Conv2D", 64), ("MaxPooling2D", None), ("Conv2D", 64),
        ("Flatten", None), ("Dense", 64), ("Dense", 10),
    ]  # fmt: skip
    assert tuple(model.inputs[0].shape) == (None, 28, 28, 1)
    assert model.count_params() == 93_322
    assert model.layers[-1].activation.__name__ == "softmax"
    assert type(model).__module__.startswith("tf_keras")  # Keras 2: tfmot can prune it


def test_registry_lists_and_rejects_unknown_names():
    assert "cnn" in list_models()
    assert model_entry("cnn").task == "classification"
    with pytest.raises(UserError, match=r"unknown model 'resnet9000'; known models: .*cnn"):
        create_model("resnet9000")


def test_num_classes_changes_the_head():
    assert create_model("cnn", num_classes=3).outputs[0].shape[-1] == 3
