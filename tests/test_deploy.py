"""``edgedl deploy`` against a real SSH server on a loopback port, whose "board" is this machine (``--target
linux``): the variants measured there land in the run's report as the device's rows, ``select --on`` and
``bundle --on`` choose by them, a second deploy measures nothing again; and every way of not getting there
(unreachable, login refused, host key unknown or changed, no Python, wrong architecture, a full disk on the
board) is one line, a non-zero exit, and the report as it was."""
import json
import os
import subprocess

import pytest

from tests.conftest import quick_cnn_run, require_package_index, run_cli
from tests.ssh_board import free_port, make_key, sshd_missing, start, stop

pytestmark = pytest.mark.skipif(bool(sshd_missing()), reason=sshd_missing() or "-")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return quick_cnn_run(tmp_path_factory.mktemp("deploy-run") / "cnn", "tflite_float32,tflite_int8,onnx_float32")


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    started = start(tmp_path_factory.mktemp("board"))
    yield started
    stop(started)


def _deploy(run_dir, board, *extra, name="loopback", remote=None, **where):
    return run_cli("edgedl", "deploy", str(run_dir), *board.args(**where), "--name", name, "--runs", "10",
                   "--warmup", "2", "--remote-dir", str(board.folder / (remote or name)), *extra)  # fmt: skip


def select_on(run_dir, device):
    return run_cli("edgedl", "select", str(run_dir), "--on", device)


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

    # A bench that fails on the board (its bundle damaged there): a failed row with the board's own line, exit 1.
    for damaged in (board.folder / "loopback").glob("bundle-*/data/eval.npz"):
        with open(damaged, "ab") as f:
            f.write(b"\0")
    broken = _deploy(run_dir, board, "--target", "linux", name="broken", remote="loopback")
    assert broken.returncode == 1 and "copying" not in broken.stdout, broken.stderr[-2000:]
    errors = broken.stderr.strip().splitlines()
    assert len(errors) == 3 and all("eval.npz: does not match the bundle's manifest" in e for e in errors), errors
    failed = json.loads((run_dir / "report.json").read_text())["devices"]["broken"]["variants"]
    assert [v["status"] for v in failed] == ["failed"] * 3

    # A board without a package index: every wheel fetched here for its platform, installed with --no-index.
    offline = _deploy(run_dir, board, "--target", "linux", "--variants", "tflite_int8", "--offline", name="airgapped")
    assert offline.returncode == 0 and "fetching every wheel" in offline.stdout, offline.stderr[-2000:]
    devices = json.loads((run_dir / "report.json").read_text())["devices"]
    assert [v["name"] for v in devices["airgapped"]["variants"]] == ["tflite_int8"] and "loopback" in devices

    quick_cnn_run(run_dir, "tflite_float32,tflite_int8,onnx_float32")  # re-run, same settings: the same artifacts
    kept = json.loads((run_dir / "report.json").read_text())["devices"]
    assert kept["loopback"]["variants"] == rows and "airgapped" in kept  # a board's figures outlive the re-run
    assert select_on(run_dir, "broken").returncode == 2  # nothing measured there that can be chosen


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


ARM64_ROOT = "/tmp/edgedl-arm64/rootfs"  # benchmarks/arm64_emulation.sh builds it there (and the slow test of it)


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="chroot, mounts and binfmt_misc need root (CI runs as root)")
def test_deploy_into_the_emulated_arm64_root_through_the_same_server(run_dir, tmp_path):
    """The same server, its logins chrooted into the arm64 Debian root (run by qemu-user through binfmt_misc):
    ``--target rpi-arm64`` finds an aarch64 board, installs its aarch64 wheels from PyPI and measures there."""
    from pathlib import Path

    from tests.conftest import ROOT

    root = Path(ARM64_ROOT)
    if not (root / "usr" / "bin" / "python3").exists():  # build the root (and run its own check) once
        packed = tmp_path / "seed.tar.gz"
        assert run_cli("edgedl", "bundle", str(run_dir), "--target", "rpi-arm64", "--out", str(packed)).returncode == 0
        built = subprocess.run(["bash", str(ROOT / "benchmarks" / "arm64_emulation.sh"), str(packed)],
                               capture_output=True, text=True)  # fmt: skip
        assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    # sshd's ChrootDirectory must be owned by root with no world-writable part (/tmp is): bind the root under /run.
    board_root = Path("/run/edgedl-arm64-board")
    board_root.mkdir(exist_ok=True)
    mounts = [["mount", "--bind", str(root), str(board_root)], ["mount", "-t", "proc", "proc", str(board_root / "proc")],
              ["mount", "--bind", "/dev", str(board_root / "dev")]]  # fmt: skip
    done = []
    try:
        for m in mounts:
            subprocess.run(m, check=True)
            done.append(m[-1])
        certs = Path(os.environ.get("PIP_CERT", "/etc/ssl/certs/ca-certificates.crt"))
        (board_root / "etc" / "ssl" / "certs" / "host-ca-bundle.crt").write_bytes(certs.read_bytes())
        (board_root / "etc" / "pip.conf").write_text("[global]\ncert = /etc/ssl/certs/host-ca-bundle.crt\n")
        (board_root / "etc" / "resolv.conf").write_bytes(Path("/etc/resolv.conf").read_bytes())
        board = start(tmp_path / "server", extra=(f"ChrootDirectory {board_root}",))
        try:
            proc = run_cli("edgedl", "deploy", str(run_dir), *board.args(), "--target", "rpi-arm64", "--name", "arm64",
                           "--variants", "tflite_int8", "--runs", "5", "--warmup", "1", "--remote-dir", "edgedl-test",
                           "--step-timeout", "2400", "--clean")  # fmt: skip
        finally:
            stop(board)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        report = json.loads((run_dir / "report.json").read_text())
        device = report["devices"]["arm64"]
        assert device["machine"]["arch"] == "aarch64" and device["variants"][0]["status"] == "ok"
        host = next(v for v in report["variants"] if v["name"] == "tflite_int8")
        # XNNPACK's arm64 kernels against its x86 ones: at most one picture in a thousand answered otherwise.
        assert device["variants"][0]["metrics"]["accuracy"] == pytest.approx(host["metrics"]["accuracy"], abs=1e-3)
        assert "ai-edge-litert" in device["machine"]["versions"]
    finally:
        for point in reversed(done):
            subprocess.run(["umount", "-l", point], check=False)
