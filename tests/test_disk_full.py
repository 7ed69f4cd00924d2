"""A full disk is one line naming where, not a traceback: each command run with its output on a tmpfs of a
few kilobytes to a megabyte, mounted in a mount namespace of its own (``unshare``), so nothing on this
machine is touched."""
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt && true"],
                           capture_output=True)  # fmt: skip
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(not _namespaces_work(), reason="unshare cannot mount a tmpfs here (no user namespaces)")


def _on_full_disk(folder, size: str, *argv: str) -> tuple:
    """``python -m argv`` with ``folder`` a tmpfs of ``size`` for this command alone: (its process, with its
    exit code, and what it left in ``folder``)."""
    folder.mkdir(exist_ok=True)
    command = " ".join(f"'{a}'" for a in argv)
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size={size} tmpfs '{folder}' && "
                           f"'{sys.executable}' -m {command}; code=$?; echo; echo LEFT; ls -A '{folder}'; exit $code"],
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    return proc, proc.stdout.rsplit("LEFT\n", 1)[-1].split()


def _one_line(proc, where) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert lines[-1].startswith("error: ") and str(where) in lines[-1], lines[-1]
    return lines[-1]


def test_a_pipeline_run_on_a_full_disk_says_where(tmp_path):
    full = tmp_path / "full"
    proc, left = _on_full_disk(full, "1m", "edgedl.cli", "pipeline", "--model", "cnn", "--epochs", "1",
                               "--train-size", "300", "--variants", "tflite_float32", "--out", str(full / "run"))  # fmt: skip
    assert "No space left on device" in _one_line(proc, full)
    assert left == ["run"]


def test_an_export_and_a_bundle_on_a_full_disk_say_where_and_leave_nothing(tmp_path, trained_cnn, artifacts):
    full = tmp_path / "full"
    model = tmp_path / "cnn.keras"
    trained_cnn.save(model)
    proc, left = _on_full_disk(full, "100k", "edgedl.cli", "export", str(model), "--format", "tflite",
                               "--precision", "float32", "--out", str(full / "cnn.tflite"))  # fmt: skip
    line = _one_line(proc, full)
    assert "No space left on device" in line and "free some space there" in line
    assert left == []  # nothing half-written
    proc, left = _on_full_disk(full, "256k", "edgedl.cli", "bundle", str(artifacts[("tflite", "float32")].path),
                               "--target", "rpi-arm64", "--out", str(full / "cnn.tar.gz"))  # fmt: skip
    assert "the bundle needs about" in _one_line(proc, full)  # checked before anything is gathered
    assert left == []
