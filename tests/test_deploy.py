"""``edgedl deploy`` against a real SSH server on a loopback port, whose "board" is this machine (``--target
linux``): the variants measured there land in the run's report as the device's rows, ``select --on`` and
``bundle --on`` choose by them, a second deploy measures nothing again; and every way of not getting there
(unreachable, login refused, host key unknown or changed, no Python, wrong architecture, a full disk on the
board) is one line, a non-zero exit, and the report as it was."""
import json
import os
import subprocess

import pytest

from tests.conftest import require_package_index, run_cli
from tests.ssh_board import free_port, make_key, sshd_missing, start, stop

pytestmark = pytest.mark.skipif(bool(sshd_missing()), reason=sshd_missing() or "-")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("deploy-run") / "cnn"
    proc = run_cli("edgedl", "pipeline", "--model", "cnn", "--epochs", "1", "--out", str(out), "--runs", "20",
                   "--warmup", "2", "--variants", "tflite_float32,tflite_int8,onnx_float32")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    started = start(tmp_path_factory.mktemp("board"))
    yield started
    stop(started)


def _deploy(run_dir, board, *extra, **where):
    return run_cli("edgedl", "deploy", str(run_dir), *board.args(**where), "--name", "loopback", "--runs", "10",
                   "--warmup", "2", "--remote-dir", str(board.folder / "home"), *extra)  # fmt: skip


def _one_line(proc, *words) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert len(lines) == 1 and all(w in lines[0] for w in words), lines
    return lines[0]


@pytest.mark.network
def test_deploy_measures_every_candidate_on_the_board_and_choices_follow_its_figures(run_dir, board, tmp_path):
    require_package_index()  # the board's environment is installed from its package index
    first = _deploy(run_dir, board, "--target", "linux")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    report = json.loads((run_dir / "report.json").read_text())
    rows = report["devices"]["loopback"]["variants"]
    host = {v["name"]: v for v in report["variants"]}
    assert {r["name"] for r in rows} == {"tflite_float32", "tflite_int8", "onnx_float32"}
    for row in rows:  # the board's own measurement: its accuracy, latency, memory, interpreter
        assert row["status"] == "ok" and row["latency_ms"]["p50"] > 0 and row["peak_rss_mb"] > 0
        assert row["metrics"]["accuracy"] == pytest.approx(host[row["name"]]["metrics"]["accuracy"], abs=1e-9)
        assert row["metric_delta"] is not None and len(row["artifact_sha256"]) == 64
    machine = report["devices"]["loopback"]["machine"]
    assert machine["arch"] and ("ai-edge-litert" in machine["versions"] or "onnxruntime" in machine["versions"])
    assert "would ship" in first.stdout and "measured on loopback" in first.stdout
    page = (run_dir / "report" / "report.md").read_text()
    assert "loopback:" in page  # the device's rows beside the host's

    picked = run_cli("edgedl", "select", str(run_dir), "--on", "loopback")
    assert picked.returncode == 0 and "measured on loopback" in picked.stdout, picked.stderr
    chosen = json.loads((run_dir / "selected" / "selection.json").read_text())["variant"]
    assert chosen in {r["name"] for r in rows}
    packed = run_cli("edgedl", "bundle", str(run_dir), "--target", "linux", "--on", "loopback", "--out",
                     str(tmp_path / "b.tar.gz"))  # fmt: skip
    assert packed.returncode == 0 and "measured on loopback" in packed.stdout, packed.stderr
    host_only = run_cli("edgedl", "bundle", str(run_dir), "--target", "rpi-arm64", "--out", str(tmp_path / "c.tar.gz"))
    assert host_only.returncode == 0 and "timed on this host" in host_only.stdout, host_only.stderr

    again = _deploy(run_dir, board, "--target", "linux")  # the same artifacts: nothing is measured again
    assert again.returncode == 0, again.stderr[-2000:]
    assert "nothing new" in again.stdout and "copying" not in again.stdout and "installing" not in again.stdout
    assert json.loads((run_dir / "report.json").read_text())["devices"]["loopback"]["variants"] == rows


def test_every_way_of_not_reaching_the_board_is_one_line_and_leaves_the_report(run_dir, board, tmp_path):
    before = (run_dir / "report.json").read_bytes()
    _one_line(_deploy(run_dir, board, "--target", "linux", port=free_port()), "deploy: probe:", "unreachable")
    stranger = make_key(tmp_path / "stranger")
    _one_line(_deploy(run_dir, board, "--target", "linux", key=stranger), "refused the login", "--identity")
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    line = _one_line(_deploy(run_dir, board, "--target", "linux", known_hosts=empty), "is not known here")
    assert f"ssh -p {board.port} {board.host} true" in line  # the one command that records it
    other = make_key(tmp_path / "other_host")
    changed = tmp_path / "changed_hosts"
    changed.write_text(f"[127.0.0.1]:{board.port} {(tmp_path / 'other_host.pub').read_text()}")
    _one_line(_deploy(run_dir, board, "--target", "linux", known_hosts=changed), "CHANGED", "ssh-keygen -R")
    _one_line(_deploy(run_dir, board, "--target", "linux", "--python", "python2.2"), "no python2.2 on")
    _one_line(_deploy(run_dir, board, "--target", "rpi-arm64"), "not what rpi-arm64 runs on", "--target linux")
    _one_line(_deploy(run_dir, board, "--target", "linux", "--variants", "nope"), "nope: not a variant")
    assert (run_dir / "report.json").read_bytes() == before
    assert other.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting the board's small tmpfs needs root (CI runs as root)")
def test_a_full_disk_on_the_board_is_one_line_before_anything_is_copied(run_dir, board, tmp_path):
    before = (run_dir / "report.json").read_bytes()
    small = board.folder / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], check=True)
    try:
        proc = run_cli("edgedl", "deploy", str(run_dir), *board.args(), "--target", "linux", "--remote-dir",
                       str(small / "edgedl"))  # fmt: skip
        _one_line(proc, "MiB free", "--remote-dir")
        assert os.listdir(small / "edgedl") == []  # nothing copied
    finally:
        subprocess.run(["umount", str(small)], check=True)
    assert (run_dir / "report.json").read_bytes() == before
