"""Inputs read faithfully and within limits, thread counts bounded, bundles unpacked safely: no TensorFlow."""
import io
import json
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from PIL import Image

from runtime.errors import UserError
from runtime.images import ImageOptions, load_image, read_npy, read_npz
from runtime.metadata import ModelMetadata, TensorSpec

META = ModelMetadata(task="classification", format="tflite", precision="float32",
                     inputs=(TensorSpec("x", (None, 28, 28, 1), "float32"),),
                     outputs=(TensorSpec("y", (None, 10), "float32"),))  # fmt: skip


def test_a_16_bit_grey_png_keeps_its_levels_instead_of_turning_white(tmp_path):
    ramp = np.linspace(0, 65535, 28 * 28).reshape(28, 28).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    x = load_image(tmp_path / "deep.png", META)
    np.testing.assert_allclose(x[..., 0], ramp / 65535.0, atol=1e-5)  # not clipped at 255/65535


def test_a_transparent_background_shows_the_chosen_colour(tmp_path):
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., :3] = 255  # white everywhere, opaque only where the digit is
    rgba[10:18, 12:16, 3] = 255
    Image.fromarray(rgba).save(tmp_path / "digit.png")
    on_black = load_image(tmp_path / "digit.png", META)[..., 0]
    assert on_black[14, 14] == pytest.approx(1.0) and on_black[0, 0] == pytest.approx(0.0)
    on_white = load_image(tmp_path / "digit.png", META, options=ImageOptions(background="white"))[..., 0]
    assert on_white.min() == pytest.approx(1.0)


def test_a_decompression_bomb_is_refused_before_it_is_decoded(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = (60000).to_bytes(4, "big") * 2  # the header claims 60000 × 60000 pixels
    (tmp_path / "bomb.png").write_bytes(bytes(data))
    with pytest.raises(UserError, match="bomb.png"):
        load_image(tmp_path / "bomb.png", META)


def test_arrays_are_numeric_finite_bounded_and_never_unpickled(tmp_path):
    np.save(tmp_path / "nan.npy", np.full((1, 28, 28, 1), np.nan, np.float32))
    with pytest.raises(UserError, match="NaN or infinite"):
        read_npy(tmp_path / "nan.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UserError, match="not numeric"):
        read_npy(tmp_path / "obj.npy")
    np.save(tmp_path / "big.npy", np.zeros((1, 2), np.float32))
    header = (tmp_path / "big.npy").read_bytes().replace(b"(1, 2)", b"(10**9,)".ljust(6)[:6])
    (tmp_path / "big.npy").write_bytes(header)
    with pytest.raises(UserError, match="big.npy"):
        read_npy(tmp_path / "big.npy")
    np.savez(tmp_path / "inf.npz", x=np.array([np.inf], np.float32))
    with pytest.raises(UserError, match=r"inf.npz\[x\]: holds NaN or infinite"):
        read_npz(tmp_path / "inf.npz")
    np.save(tmp_path / "huge.npy", np.full((1, 4), 1e300))  # finite in float64, infinite as a model input
    with pytest.raises(UserError, match=r"huge.npy: holds values beyond float32's range \(\|x\| up to 1e\+300\)"):
        read_npy(tmp_path / "huge.npy")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_fifos_and_folders_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "model.tflite"
    os.mkfifo(fifo)
    os.mkfifo(tmp_path / "in.png")
    os.mkdir(tmp_path / "dir.onnx")
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "x.png")
    for argv, message in [([str(fifo), "x.png"], "is not a regular file"),
                          ([str(tmp_path / "dir.onnx"), "x.png"], "is a folder"),
                          ([str(tmp_path / "dir.onnx"), str(tmp_path / "in.png")], "in.png: is not a regular file")]:
        proc = subprocess.run([sys.executable, "-m", "runtime.cli", *argv], capture_output=True, text=True, timeout=30,
                              cwd=tmp_path, env={**os.environ, "PYTHONPATH": os.getcwd()})  # fmt: skip
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_thread_counts_are_bounded_by_the_machine():
    from runtime.model import check_threads

    check_threads(None)
    check_threads(1)
    cores = os.cpu_count()
    with pytest.raises(UserError, match=f"give 1 to {cores}"):
        check_threads(cores + 1)
    with pytest.raises(UserError, match="--threads 0"):
        check_threads(0)


def _tar(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _manifest(**fields) -> dict:
    """A manifest as ``edgedl bundle`` writes one (no files), with ``fields`` replaced."""
    from runtime.bundle import make_manifest

    base = {"target": "linux", "target_description": "", "edgedl_version": "0", "created": "", "model": "m",
            "task": "generic", "why": "", "artifacts": [], "reference": None, "eval": None, "samples": [],
            "requirements": [], "files": {}}  # fmt: skip
    return make_manifest(**{**base, **fields})


def test_unpack_refuses_hostile_and_corrupt_archives_and_leaves_nothing_behind(tmp_path, monkeypatch):
    from runtime import bundle

    dest = tmp_path / "dest"
    cases = {
        "abs.tar.gz": ([("/etc/evil", b"x")], "absolute or climbing path"),
        "climb.tar.gz": ([("b/../../x", b"x")], "absolute or climbing path"),
        "two.tar.gz": ([("a/x", b"x"), ("b/y", b"y")], "2 top-level entries"),
        "nosha.tar.gz": ([("b/manifest.json", json.dumps(_manifest(files={"x": {}})).encode()), ("b/x", b"x")],
                         "has no sha256"),
        "fields.tar.gz": ([("b/manifest.json", json.dumps({"kind": "edgedl-bundle", "schema_version": 1,
                                                          "files": {}}).encode())], "'target' is missing"),
        "future.tar.gz": ([("b/manifest.json", json.dumps({**_manifest(), "schema_version": 99}).encode())],
                          "manifest version 99; this runtime reads 1 to 1"),
        "big.tar.gz": ([("b/manifest.json", b"{}"), ("b/blob", b"\0" * 5000)], "unpacks to more than"),
    }
    monkeypatch.setattr(bundle, "MAX_UNPACKED_BYTES", 4096)
    for name, (members, message) in cases.items():
        _tar(tmp_path / name, members)
        with pytest.raises(UserError, match=message):
            bundle.extract(tmp_path / name, dest)
        assert not dest.exists() or list(dest.iterdir()) == [], name  # nothing left behind
    good = tmp_path / "good.tar.gz"
    _tar(good, [("b/manifest.json", b"{}")])
    corrupt = tmp_path / "corrupt.tar.gz"
    corrupt.write_bytes(good.read_bytes()[:40])
    with pytest.raises(UserError, match="corrupt archive"):
        bundle.extract(corrupt, dest)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(UserError, match="exists and is not a folder"):
        bundle.extract(good, tmp_path / "file.txt")
