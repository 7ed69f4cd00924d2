"""Shared fixtures (a small trained CNN, its artifacts), the test tiers, and helpers that run code without
TensorFlow.

Tiers, by marker (``pytest -m ...``):

- fast (``not tf and not network and not browser and not slow``): the device side, metadata, reports, CLI
  parsing; runs in seconds with no TensorFlow installed (``test_tiers.py`` proves it);
- ``tf``: training, export, the pipeline: what needs the host side;
- ``network``: what needs PyPI (fresh venvs); skipped with the reason when it cannot be reached;
- ``browser``: what needs a headless Chromium (the report page); skipped with the reason when it is missing;
- ``slow``: left out of the default run (``pytest -m slow``).
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
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


def run_cli(*argv: str, cwd=None, env=None) -> subprocess.CompletedProcess:
    """Run an installed console script (``edgedl`` or ``edgedl-run``) from this venv; ``env`` adds variables."""
    import os

    exe = Path(sys.executable).with_name(argv[0])
    return subprocess.run([str(exe), *argv[1:]], capture_output=True, text=True, cwd=cwd or ROOT,
                          env={**os.environ, **env} if env else None)  # fmt: skip


def zoo_pipeline(tmp_path, *argv) -> dict:
    """``edgedl pipeline *argv`` into ``tmp_path/run``, which must succeed; its report."""
    import json

    proc = run_cli("edgedl", "pipeline", "--out", str(tmp_path / "run"), "--runs", "200", *argv)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp_path / "run" / "report.json").read_text())


def quick_cnn_run(out: Path, variants: str) -> Path:
    """A one-epoch ``cnn`` pipeline run of ``variants`` into ``out``, measured briefly; it must succeed."""
    proc = run_cli("edgedl", "pipeline", "--model", "cnn", "--epochs", "1", "--out", str(out), "--runs", "20",
                   "--warmup", "2", "--variants", variants)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def run_in_terminal(*argv: str, columns: int = 80, cwd=None) -> tuple[int, str]:
    """Run a console script in a pseudo-terminal ``columns`` wide, as a user's shell would; return its exit
    code and everything it showed (stdout and stderr, as the user sees them), colour codes removed."""
    import fcntl
    import os
    import pty
    import re
    import struct
    import termios

    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    exe = Path(sys.executable).with_name(argv[0])
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen([str(exe), *argv[1:]], stdin=secondary, stdout=secondary, stderr=secondary,
                            cwd=cwd or ROOT, env=env, close_fds=True)  # fmt: skip
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal closed: the command ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    code = proc.wait()
    text = b"".join(chunks).decode("utf-8", "replace")
    return code, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r\n", "\n")


# Fixtures that train or export with TensorFlow, and modules that are host-side through and through.
TF_FIXTURES = {"mnist", "trained_cnn", "model_info", "artifacts", "eval_npz", "digit_pngs", "fuzz_seeds"}
TF_PATHS = ("tests/edgedl/", "tests/exporters/", "tests/test_pipeline", "tests/test_bundles.py", "tests/test_deploy.py",
            "tests/benchmarks/test_harness.py", "tests/benchmarks/test_speed_and_figures.py")  # fmt: skip


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(str(item.fspath)).relative_to(ROOT).as_posix()
        if TF_FIXTURES & set(item.fixturenames) or path.startswith(TF_PATHS):
            item.add_marker(pytest.mark.tf)


_REACHABLE: dict = {}


def require_package_index() -> None:
    """Skip (with the reason) when pip cannot reach its package index from here."""
    if "pip" not in _REACHABLE:
        try:
            proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest",
                                   str(Path(tempfile.mkdtemp())), "six==1.16.0"], capture_output=True, timeout=60)  # fmt: skip
            _REACHABLE["pip"] = proc.returncode == 0
        except subprocess.TimeoutExpired:
            _REACHABLE["pip"] = False
    if not _REACHABLE["pip"]:
        pytest.skip("pip cannot reach its package index from this machine (offline): this test installs from it")


@pytest.fixture(scope="session")
def mnist():
    from edgedl.data.datasets import mnist_default

    return mnist_default()


@pytest.fixture(scope="session")
def trained_cnn(mnist):
    """The seed CNN after one quick epoch on 4,000 images: accurate enough for top-1 checks."""
    from edgedl.models import create_model
    from edgedl.training.train import compile_for_task, set_seeds

    train, _ = mnist
    set_seeds(0)
    model = create_model("cnn")
    compile_for_task(model, "classification", 1e-3)
    model.fit(train.x[:4000], train.y[:4000], epochs=1, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="session")
def model_info(trained_cnn):
    from exporters.tfkeras import weights_sha256
    from exporters import ModelInfo

    return ModelInfo(task="classification", labels=tuple(str(i) for i in range(10)),
                     source_sha256=weights_sha256(trained_cnn))  # fmt: skip


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory, trained_cnn, model_info, mnist):
    """Every (format, precision) the exporters support, exported once for the session."""
    from exporters import NotApplicable, export, get_exporter, list_formats

    train, ev = mnist
    out = tmp_path_factory.mktemp("artifacts")
    arts = {}
    for fmt in list_formats():
        exporter = get_exporter(fmt)
        for precision in exporter.config_cls.PRECISIONS:
            try:
                arts[(fmt, precision)] = export(
                    trained_cnn, out / f"cnn_{precision}{exporter.suffix}", fmt, model_info,
                    precision=precision, calibration=train.x[:200], check_inputs=ev.x[:32],
                )  # fmt: skip
            except NotApplicable:  # int8_mixed where int8 alone already meets its target
                continue
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
