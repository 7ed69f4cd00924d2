"""The rpi-arm64 bundle on an emulated arm64 Debian (qemu-user, debootstrap): the same top-1 as on x86-64.

Slow (about 15 minutes the first time, building the arm64 root in /tmp/edgedl-arm64) and needs root, Debian's packages
and PyPI: not in the default run. Run it with ``pytest -m slow tests/test_arm64_emulation.py``.
"""
import subprocess

import pytest

from tests.conftest import ROOT, run_cli


@pytest.mark.slow
def test_the_rpi_arm64_bundle_predicts_the_same_under_arm64_emulation(tmp_path):
    run = tmp_path / "cnn"
    proc = run_cli("edgedl", "pipeline", "--model", "cnn", "--epochs", "1", "--out", str(run), "--runs", "20",
                   "--variants", "tflite_int8")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    bundle = tmp_path / "cnn-rpi-arm64.tar.gz"
    proc = run_cli("edgedl", "bundle", str(run), "--target", "rpi-arm64", "--out", str(bundle))
    assert proc.returncode == 0, proc.stderr[-2000:]
    # The arm64 root is built once into the script's default folder and reused by later runs.
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "arm64_emulation.sh"), str(bundle)],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "arm64 side: aarch64" in proc.stdout
    assert "top-1 identical on 8 of 8 samples" in proc.stdout
    assert "top-1 identical on 2000 of 2000 evaluation images" in proc.stdout
