"""File helpers shared by every floor: atomic writes and checksums."""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


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


def write_json(path: str | os.PathLike, document: object) -> Path:
    """Write ``document`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    return Path(path)


def file_sizes(path: Path) -> tuple[int, int]:
    """(bytes, gzip bytes at level 9) of a file, or of all files in a folder (a SavedModel)."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    raw = b"".join(p.read_bytes() for p in files)
    return len(raw), len(gzip.compress(raw, compresslevel=9))
