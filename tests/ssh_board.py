"""A board for the tests: OpenSSH's own server on a loopback port, started with keys made here, logging in as
this user. ``edgedl deploy`` reaches it as it reaches a Raspberry Pi: through the system's ssh client, host key
checked against a known_hosts file, key authentication only."""
from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def sshd_missing() -> str:
    """Why no server can be started here ('' when one can)."""
    if not os.path.exists(SSHD):
        return "OpenSSH's server is not installed ('make test' installs it: apt-get install openssh-server)"
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        return "OpenSSH's client is not installed (apt-get install openssh-client)"
    return ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_key(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


@dataclass
class Board:
    port: int
    user: str
    key: Path  # the client's private key, in authorized_keys
    known_hosts: Path  # holds the server's host key
    folder: Path
    process: subprocess.Popen

    @property
    def host(self) -> str:
        return f"{self.user}@127.0.0.1"

    def args(self, known_hosts=None, key=None, port=None) -> list:
        """``edgedl deploy``'s options to reach this board (as given, or with another known_hosts, key, port)."""
        return ["--host", self.host, "--port", str(port or self.port), "--identity", str(key or self.key),
                "--ssh-option", f"UserKnownHostsFile={known_hosts or self.known_hosts}",
                "--ssh-option", "GlobalKnownHostsFile=/dev/null"]  # fmt: skip


def start(folder: Path, extra: tuple = ()) -> Board:
    """Start the server (it runs in the foreground of its own process) and return once it listens: the
    server's own "Server listening" line is the event waited on. ``extra``: more sshd_config lines."""
    folder.mkdir(parents=True, exist_ok=True)
    host_key, client_key = make_key(folder / "host_key"), make_key(folder / "client_key")
    (folder / "authorized_keys").write_text(Path(f"{client_key}.pub").read_text())
    port = free_port()
    config = folder / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}", f"PidFile {folder / 'sshd.pid'}",
        f"AuthorizedKeysFile {folder / 'authorized_keys'}", "StrictModes no", "PubkeyAuthentication yes",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
        "PermitRootLogin prohibit-password", "LogLevel INFO", "MaxStartups 50", *extra,
    ]) + "\n")  # fmt: skip
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # the privilege-separation folder Debian's server expects
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE, text=True)
    seen = []
    for line in process.stderr:  # blocks until the server says something, or ends
        seen.append(line)
        if "Server listening on 127.0.0.1" in line:
            break
    else:
        process.wait()
        raise RuntimeError(f"sshd did not start: {''.join(seen)[-2000:]}")
    # Keep reading its log, so that the server never blocks on a full pipe.
    import threading

    threading.Thread(target=lambda: [None for _ in process.stderr], daemon=True).start()
    known = folder / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {Path(f'{host_key}.pub').read_text()}")
    return Board(port, getpass.getuser(), client_key, known, folder, process)


def stop(board: Board) -> None:
    board.process.terminate()
    board.process.wait(timeout=30)
