"""Shared fixtures: a small trained CNN, its artifacts, and a helper that runs code without TensorFlow."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

# Run at the start of a child process: any import of these packages raises, as
# on a device where they are not installed.
BLOCK_HOST_IMPORTS = textwrap.dedent(
    """
    import sys
    BLOCKED = ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization", "tf2onnx", "edgedl", "exporters")

    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked: the device side must not import it")
            return None

    sys.meta_path.insert(0, _Block())
    """
)


def run_python(code: str, *args: str, block_host: bool = False, cwd=None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (optionally with the host packages blocked)."""
    prelude = BLOCK_HOST_IMPORTS if block_host else ""
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
    )


def run_cli(*argv: str, cwd=None) -> subprocess.CompletedProcess:
    """Run an installed console script (``edgedl`` or ``edgedl-run``) from this venv."""
    exe = Path(sys.executable).with_name(argv[0])
    return subprocess.run([str(exe), *argv[1:]], capture_output=True, text=True, cwd=cwd or ROOT)


@pytest.fixture(scope="session")
def mnist():
    from edgedl.datasets import mnist_default

    return mnist_default()


@pytest.fixture(scope="session")
def trained_cnn(mnist):
    """The seed CNN after one quick epoch on 4,000 images: accurate enough for top-1 checks."""
    from edgedl.models import create_model
    from edgedl.train import compile_for_task, set_seeds

    train, _ = mnist
    set_seeds(0)
    model = create_model("cnn")
    compile_for_task(model, "classification", 1e-3)
    model.fit(train.x[:4000], train.y[:4000], epochs=1, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="session")
def model_info(trained_cnn):
    from edgedl._tf import weights_sha256
    from exporters import ModelInfo

    return ModelInfo(task="classification", labels=tuple(str(i) for i in range(10)),
                     source_sha256=weights_sha256(trained_cnn))  # fmt: skip


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory, trained_cnn, model_info, mnist):
    """Every (format, precision) the exporters support, exported once for the session."""
    from exporters import export, get_exporter, list_formats

    train, ev = mnist
    out = tmp_path_factory.mktemp("artifacts")
    arts = {}
    for fmt in list_formats():
        exporter = get_exporter(fmt)
        for precision in exporter.config_cls.PRECISIONS:
            arts[(fmt, precision)] = export(
                trained_cnn, out / f"cnn_{precision}{exporter.suffix}", fmt, model_info,
                precision=precision, calibration=train.x[:200], check_inputs=ev.x[:32],
            )  # fmt: skip
    return arts


@pytest.fixture()
def eval_npz(tmp_path, mnist):
    """The first 300 evaluation images as the pipeline's eval.npz."""
    _, ev = mnist
    path = tmp_path / "eval.npz"
    ev.take(slice(0, 300)).save_npz(path, "classification")
    return path


@pytest.fixture()
def digit_pngs(tmp_path, mnist):
    """Ten evaluation digits written as 8-bit PNGs, with their labels."""
    from PIL import Image

    _, ev = mnist
    folder = tmp_path / "digits"
    folder.mkdir()
    for i in range(10):
        Image.fromarray((ev.x[i, :, :, 0] * 255).round().astype(np.uint8)).save(folder / f"d{i:02d}.png")
    return folder, ev.y[:10]
