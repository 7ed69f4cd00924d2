"""The way to a board: the system's OpenSSH client, with the user's own settings, and its failures in one line.

``ssh`` reads the user's ``~/.ssh/config``, agent and keys as it always does;
edgedl adds only what a program must: no prompts (``BatchMode``), host keys
checked against ``known_hosts`` (``StrictHostKeyChecking=yes``: an unknown
host is refused, never accepted silently), a connect timeout and keep-alives.
Every command is bounded on both ends: the board's ``timeout`` ends it there,
the local timeout ends ``ssh`` here.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from runtime.errors import UserError, one_line


class Deadline:
    """The whole run's cap: each step gets its own limit or what is left, whichever is less."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.clock, self.end = clock, clock() + seconds

    def left(self, step: float) -> float:
        remaining = self.end - self.clock()
        if remaining <= 0:
            raise UserError("deploy: the whole run's time cap (--timeout) is spent; run deploy again to go on "
                            "(what was measured is kept)")  # fmt: skip
        return min(step, remaining)


@dataclass
class Ssh:
    """``[user@]host`` reached with ``ssh``; ``options`` are ``-o`` settings passed as given."""

    host: str
    port: Optional[int] = None
    identity: Optional[Path] = None
    options: tuple = ()
    connect_timeout: int = 15
    deadline: Deadline = field(default_factory=lambda: Deadline(3600))

    def argv(self, command: str) -> list:
        client = shutil.which("ssh")
        if client is None:
            raise UserError("deploy: no ssh client on this machine; install OpenSSH's (apt-get install openssh-client)")
        argv = [client, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", f"ConnectTimeout={self.connect_timeout}", "-o", "ServerAliveInterval=15",
                "-o", "ServerAliveCountMax=4", "-o", "LogLevel=ERROR"]  # fmt: skip
        if self.port:
            argv += ["-p", str(self.port)]
        if self.identity:
            argv += ["-i", str(self.identity), "-o", "IdentitiesOnly=yes"]
        for option in self.options:
            argv += ["-o", option]
        return argv + ["--", self.host, command]

    def run(self, step: str, command: str, seconds: float, stdin=None, check: bool = True) -> subprocess.CompletedProcess:
        """``command`` run on the board within ``seconds`` (and the run's cap); a failure of ssh itself (exit 255)
        is one line naming the step; with ``check``, so is the command's own failure."""
        limit = self.deadline.left(seconds)
        bounded = f"timeout -k 10 {int(limit)} sh -c {shlex.quote(command)}"
        try:
            proc = subprocess.run(self.argv(bounded), stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                  capture_output=True, timeout=limit + 15)  # fmt: skip
        except subprocess.TimeoutExpired:
            raise UserError(f"deploy: {step}: no answer from {self.host} within {limit:.0f} s; check the board and "
                            "the network, or give more time (--step-timeout, --timeout)") from None  # fmt: skip
        err = proc.stderr.decode("utf-8", "replace")
        if proc.returncode == 255:
            raise UserError(f"deploy: {step}: {self.failure(err)}")
        if proc.returncode == 124 and check:
            raise UserError(f"deploy: {step}: took more than {limit:.0f} s on {self.host}; give more time "
                            "(--step-timeout, --timeout)")  # fmt: skip
        if check and proc.returncode != 0:
            raise UserError(f"deploy: {step} on {self.host} failed (exit {proc.returncode}): {last_line(err)}")
        return proc

    @property
    def hostname(self) -> str:
        """The host without its user: what the report calls the board unless told otherwise."""
        return self.host.rsplit("@", 1)[-1]

    def failure(self, stderr: str) -> str:
        """What ssh's own failure means, and the one thing to do about it."""
        host, port = self.hostname, f" -p {self.port}" if self.port else ""
        known = f"[{host}]:{self.port}" if self.port and self.port != 22 else host
        if "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr:
            return (f"the host key of {known} has CHANGED since it was recorded (a reinstalled board, or someone in "
                    f"between); if you expected it, forget the old one with: ssh-keygen -R '{known}'")  # fmt: skip
        if "Host key verification failed" in stderr or "host key is known" in stderr:
            return (f"the host key of {known} is not known here, so the board cannot be told from an impostor; "
                    f"compare its fingerprint and record it with: ssh{port} {self.host} true")  # fmt: skip
        if "Permission denied" in stderr or "Too many authentication failures" in stderr:
            return (f"{self.host} refused the login ({last_line(stderr)}); give --identity KEY, or add your public "
                    f"key to the board's ~/.ssh/authorized_keys (ssh-copy-id{port} {self.host})")  # fmt: skip
        unreachable = ("Connection refused", "Could not resolve", "No route to host", "timed out",
                       "Network is unreachable", "Connection closed", "Connection reset")  # fmt: skip
        if any(u in stderr for u in unreachable):
            return (f"{host}{':' + str(self.port) if self.port else ''} unreachable ({last_line(stderr)}); check the "
                    "address and that the board is on and runs an SSH server")  # fmt: skip
        return f"ssh to {self.host} failed ({last_line(stderr) or 'exit 255'})"


def last_line(text: str) -> str:
    """The last line that says something, cut to one line; ssh's own prefixes dropped."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith(("Warning: Permanently",))]
    line = re.sub(r"^(ssh: )?(connect to host \S+ port \d+: )?", "", lines[-1]) if lines else ""
    return one_line(line, 200)
