"""File helpers shared by every floor: atomic writes, checksums, and reading user files safely."""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Optional

from .errors import UserError


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it onto ``path`` on success.

    On an exception the temporary file (or folder) is removed and ``path`` is
    left as it was, so a failed export never leaves a half-written artifact.
    The temporary name keeps the final suffix, for tools that check it.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    if is_dir:
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".tmp{final.suffix}", dir=final.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        if not is_dir:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual mode
        if is_dir and final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


# What ``atomic_path`` (and the exporters' staging) names a file or folder while it is written: ``.NAME.XXXXXXXX.tmp``
# or ``.STEM.XXXXXXXX.tmpSUFFIX``. One left behind was a killed writer's: the next writer of the folder removes it.
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)*$")


def clean_leftovers(folder: str | os.PathLike, names: Optional[tuple] = None, depth: int = 0) -> list:
    """Remove what killed writers left in ``folder`` (and ``depth`` levels of sub-folders): temporary files
    and folders named as ``atomic_path`` names them; with ``names``, only those of files so named (a file's
    name or its stem). Returns what went. Only the one writer of a folder may call this (a run holding its
    lock; a bundle of one target)."""
    folder, gone = Path(folder), []
    if not folder.is_dir():
        return gone
    for entry in list(folder.iterdir()):
        found = _LEFTOVER.match(entry.name)
        if found and (names is None or found["name"] in names):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            gone.append(entry)
        elif depth and entry.is_dir() and not entry.is_symlink() and not entry.name.startswith("."):
            gone += clean_leftovers(entry, names, depth - 1)
    return gone


def write_json(path: str | os.PathLike, document: object) -> Path:
    """Write ``document`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    return Path(path)


def check_writable(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` if a file can be written there (checked before the work that produces it): not a folder, in
    a folder that exists and that this user may write to."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder; give the {what}'s file name")
    parent = path.parent
    if not parent.is_dir():
        raise UserError(f"{parent}: no such folder for the {what}; create it or give another path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{parent}: this user cannot write there; give another path for the {what}")
    return path


def file_sizes(path: Path) -> tuple[int, int]:
    """(bytes, gzip bytes at level 9) of a file, or of all files in a folder (a SavedModel)."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    raw = b"".join(p.read_bytes() for p in files)
    return len(raw), len(gzip.compress(raw, compresslevel=9))


# -- reading what a user gives: regular files only, with a size cap --------------------------------

MAX_MODEL_BYTES = 2 << 30  # the flatbuffer and protobuf formats cap a model at 2 GiB anyway


def check_regular(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` if it is a regular file; a folder, FIFO, device or socket is refused (reading one could block)."""
    import stat

    p = Path(path)
    try:
        mode = os.stat(p).st_mode
    except FileNotFoundError:
        raise UserError(f"{p}: no such {what}") from None
    except OSError as exc:
        raise UserError(f"{p}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise UserError(f"{p}: is a folder, not a {what}")
    if not stat.S_ISREG(mode):
        raise UserError(f"{p}: is not a regular file (a FIFO, device or socket); give a {what}")
    return p


def read_limited(path: str | os.PathLike, limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes."""
    p = check_regular(path, what)
    size = p.stat().st_size
    if size > limit:
        raise UserError(f"{p}: {size:,} bytes is more than the {limit:,} a {what} may have")
    try:
        return p.read_bytes()
    except OSError as exc:
        raise UserError(f"{p}: cannot be read ({exc.strerror or exc})") from None


# -- artifacts that carry their own checksum ---------------------------------------------------------
#
# edgedl's metadata, embedded in the model file, holds ``"artifact_sha256": "<hex>"``: the sha256 of the
# whole file with those 64 hex digits written as zeros. Writing: embed zeros, hash, put the hash in
# place (same length: no offset moves). Reading: zero them again, hash, compare.

_CHECKSUM = re.compile(rb'"artifact_sha256": "([0-9a-f]{64})"')
UNSEALED = "0" * 64


def seal(data: bytes) -> bytes:
    """``data`` (holding exactly one zeroed checksum field) with its checksum written in."""
    found = list(_CHECKSUM.finditer(data))
    if len(found) != 1 or found[0].group(1) != UNSEALED.encode():
        raise ValueError(f"expected one zeroed artifact_sha256 field, found {len(found)}")
    digest = hashlib.sha256(data).hexdigest().encode()
    start, end = found[0].span(1)
    return data[:start] + digest + data[end:]


def sealed_matches(data: bytes) -> Optional[bool]:
    """Whether ``data`` matches the checksum it carries; None when it carries none (or several)."""
    found = list(_CHECKSUM.finditer(data))
    if len(found) != 1:
        return None
    start, end = found[0].span(1)
    recorded = found[0].group(1)
    if recorded == UNSEALED.encode():
        return None
    digest = hashlib.sha256()
    digest.update(data[:start])
    digest.update(UNSEALED.encode())
    digest.update(data[end:])
    return digest.hexdigest().encode() == recorded
