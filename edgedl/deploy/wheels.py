"""Wheels for a board without internet: everything its ``requirements.txt`` needs, fetched here by pip for the
board's architecture, Python and C library, packed into the bundle's ``wheels/``; the board installs with
``pip install --no-index --find-links wheels -r requirements.txt``.
"""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import InvalidMarker, Marker

from runtime.errors import UserError, one_line

PIWHEELS = "https://www.piwheels.org/simple"  # numpy and friends for 32-bit Raspberry Pi OS


@dataclass(frozen=True)
class Platform:
    machine: str  # what platform.machine() says there: aarch64, armv7l, x86_64
    python: str  # major.minor
    glibc: str  # major.minor: the newest manylinux wheel it loads

    def tags(self) -> list:
        """pip's --platform tags the board loads: manylinux up to its glibc, and plain linux for armv7l."""
        major, minor = (int(p) for p in self.glibc.split(".")[:2])
        tags = [f"manylinux_{major}_{m}_{self.machine}" for m in range(minor, 16, -1)]
        tags += [f"manylinux2014_{self.machine}"] if minor >= 17 else []
        return tags + ([f"linux_{self.machine}"] if self.machine.startswith("arm") else [])


def parse_platform(text: str) -> Platform:
    """``MACHINE/PYTHON/GLIBC``, e.g. ``aarch64/3.11/2.36`` (what Raspberry Pi OS bookworm 64-bit is)."""
    parts = text.split("/")
    try:
        found = Platform(parts[0], parts[1], parts[2])
        found.tags()
        tuple(int(p) for p in found.python.split(".")[:2])
    except (IndexError, ValueError):
        raise UserError(f"--wheels-for {text!r}: give MACHINE/PYTHON/GLIBC, e.g. aarch64/3.11/2.36") from None
    return found


def this_machine() -> Platform:
    import platform

    glibc = platform.libc_ver()[1] or "2.17"
    return Platform(platform.machine(), ".".join(platform.python_version_tuple()[:2]), glibc)


def applicable(requirements, where: Platform) -> list:
    """The requirement lines that apply on the board (their markers judged for it, then dropped); the runtime
    wheel's own path left out (it is in the bundle already)."""
    env = {"python_version": where.python, "python_full_version": f"{where.python}.0", "platform_machine": where.machine,
           "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix", "implementation_name": "cpython"}
    lines = []
    for line in requirements:
        spec, _, marker = line.partition(";")
        if spec.startswith("./") or not spec.strip():
            continue
        try:
            if marker.strip() and not Marker(marker.strip()).evaluate(env):
                continue
        except InvalidMarker:
            raise UserError(f"requirement {line!r}: its marker cannot be read") from None
        lines.append(spec.strip())
    return lines


def download(requirements, dest: Path, where: Platform, timeout: float = 1800) -> list:
    """Fetch the wheels ``requirements`` need on ``where`` (dependencies included) into ``dest``."""
    wanted = applicable(requirements, where)
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--only-binary=:all:",
            "--dest", str(dest), "--python-version", where.python, "--implementation", "cp"]  # fmt: skip
    for tag in where.tags():
        argv += ["--platform", tag]
    if where.machine.startswith("arm"):
        argv += ["--extra-index-url", PIWHEELS]
    dest.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run(argv + wanted, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise UserError(f"--wheels: pip took more than {timeout:.0f} s fetching wheels for {where.machine}; try "
                        "again, or install on the board from its package index") from None  # fmt: skip
    if proc.returncode != 0:
        raise UserError(f"--wheels: pip could not fetch {', '.join(wanted)} for {where.machine}, Python "
                        f"{where.python}, glibc {where.glibc} ({one_line(proc.stderr, 200)}); check this machine's "
                        "package index, or install on the board from its own")  # fmt: skip
    return sorted(dest.glob("*.whl"))
