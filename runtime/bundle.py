"""A deployment bundle on the device: check it against its manifest, unpack it safely.

A bundle (``edgedl bundle`` on the host) is one folder::

    manifest.json        target, artifacts, evaluation data, and every other file's sha256
    requirements.txt     what ``pip install -r`` needs on that target (this runtime travels as a wheel)
    README.md            install, run on an image, benchmark
    models/              the artifacts and their metadata
    data/eval.npz        the evaluation set ``edgedl-run bench`` scores on
    samples/             a few images to try

``runtime.load`` calls ``verify_for`` on every model it opens: a model inside
a bundle whose files do not match the manifest is refused, naming the file.
"""
from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Optional

from .errors import UserError
from .files import sha256_file

MANIFEST = "manifest.json"
KIND = "edgedl-bundle"
_verified: dict[Path, dict] = {}  # bundle root -> manifest, checked once per process


def find_root(path: str | Path, levels: int = 3) -> Optional[Path]:
    """The bundle folder holding ``path`` (itself or up to ``levels`` parents up), or None."""
    here = Path(path).resolve()
    for folder in [here, *here.parents][: levels + 1]:
        candidate = folder / MANIFEST
        if candidate.is_file():
            try:
                if json.loads(candidate.read_text()).get("kind") == KIND:
                    return folder
            except (ValueError, OSError, AttributeError):
                continue  # some other program's manifest.json
    return None


def read_manifest(root: Path) -> dict:
    path = Path(root) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{root}: no {MANIFEST}; not an edgedl bundle") from None
    except (ValueError, OSError) as exc:
        raise UserError(f"{path}: not a readable bundle manifest ({exc}); re-extract the bundle") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != KIND or not isinstance(manifest.get("files"), dict):
        raise UserError(f"{path}: not an edgedl bundle manifest; re-extract the bundle")
    return manifest


def verify(root: str | Path) -> dict:
    """Check every file the manifest lists (present, same sha256); return the manifest.

    Files the manifest does not list (a benchmark's output, say) are left alone.
    """
    root = Path(root).resolve()
    if root in _verified:
        return _verified[root]
    manifest = read_manifest(root)
    for rel, entry in sorted(manifest["files"].items()):
        path = (root / rel).resolve()
        if root not in path.parents:
            raise UserError(f"{root / MANIFEST}: lists {rel!r}, outside the bundle; re-extract the bundle")
        if not path.is_file():
            raise UserError(f"{path}: listed in the bundle's manifest but missing; re-extract the bundle")
        if sha256_file(path) != entry["sha256"]:
            raise UserError(f"{path}: does not match the bundle's manifest (sha256 differs); re-extract the bundle")
    _verified[root] = manifest
    return manifest


def verify_for(model_path: str | Path) -> Optional[dict]:
    """If ``model_path`` lies inside a bundle, verify the bundle: ``{"root", "manifest"}``, or None."""
    root = find_root(Path(model_path).parent)
    if root is None:
        return None
    return {"root": root, "manifest": verify(root)}


def artifact_entry(model_path: str | Path) -> Optional[dict]:
    """The manifest's record of this artifact (variant name, format, host figures), when it is in a bundle."""
    found = verify_for(model_path)
    if found is None:
        return None
    rel = Path(model_path).resolve().relative_to(found["root"]).as_posix()
    return next((a for a in found["manifest"].get("artifacts", []) if a["path"] == rel), None)


def extract(archive: str | Path, dest: str | Path) -> Path:
    """Unpack a bundle into ``dest`` (never outside it: tarfile's ``data`` filter) and verify it.

    Returns the bundle folder. Refuses absolute paths, ``..``, links leaving
    ``dest`` and device files, naming the member.
    """
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise UserError(f"{archive}: no such bundle")
    if not hasattr(tarfile, "data_filter"):  # Python < 3.9.17 / 3.10.12 / 3.11.4
        raise UserError("this Python's tarfile has no safe extraction filter; unpack with 'tar xzf' instead")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            tops = {Path(m.name).parts[0] for m in tar.getmembers() if Path(m.name).parts}
            tar.extractall(dest, filter="data")
    except tarfile.FilterError as exc:
        raise UserError(f"{archive}: refused to unpack {exc.tarinfo.name!r} ({exc}); the bundle is unsafe") from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise UserError(f"{archive}: not a readable bundle ({exc}); copy it again") from None
    if len(tops) != 1:
        raise UserError(f"{archive}: a bundle holds one folder, this holds {len(tops)} top-level entries")
    root = dest / tops.pop()
    verify(root)
    return root
