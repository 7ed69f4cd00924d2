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
import os
import tarfile
from pathlib import Path
from typing import Optional

from .errors import UserError, one_line
from .files import sha256_file

MANIFEST = "manifest.json"
KIND = "edgedl-bundle"
MANIFEST_VERSION = 1
# Every manifest field, with the types a reader accepts (None: the field may be null).
MANIFEST_FIELDS = {"target": (str,), "target_description": (str,), "edgedl_version": (str,), "created": (str,),
                   "model": (str,), "task": (str,), "why": (str,), "artifacts": (list,), "reference": (dict, None),
                   "eval": (str, None), "samples": (list,), "requirements": (list,), "files": (dict,)}  # fmt: skip
ARTIFACT_FIELDS = ("variant", "path", "format", "precision", "task", "techniques")
_verified: dict[Path, dict] = {}  # bundle root -> manifest, checked once per process


def find_root(path: str | Path, levels: int = 3) -> Optional[Path]:
    """The bundle folder holding ``path`` (itself or up to ``levels`` parents up), or None."""
    here = Path(path).resolve()
    for folder in [here, *here.parents][: levels + 1]:
        candidate = folder / MANIFEST
        if candidate.is_file() and candidate.stat().st_size < (64 << 20):
            try:
                if json.loads(candidate.read_text()).get("kind") == KIND:
                    return folder
            except (ValueError, OSError, AttributeError):
                continue  # some other program's manifest.json
    return None


def make_manifest(**fields) -> dict:
    """A bundle's manifest, versioned, with every field ``MANIFEST_FIELDS`` names (checked as a reader would)."""
    manifest = {"kind": KIND, "schema_version": MANIFEST_VERSION, **fields}
    validate_manifest(manifest, "the bundle being made")
    return manifest


def validate_manifest(manifest, source) -> dict:
    """The manifest, when it is one this runtime reads: its kind, its version, every field of the right type,
    every artifact described; otherwise one line naming what is wrong."""
    if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
        raise UserError(f"{source}: not an edgedl bundle manifest; re-extract the bundle")
    version = manifest.get("schema_version")
    if not isinstance(version, int) or not 1 <= version <= MANIFEST_VERSION:
        raise UserError(f"{source}: bundle manifest version {version!r}; this runtime reads 1 to {MANIFEST_VERSION} "
                        "(pip install -U the bundle's runtime wheel)")  # fmt: skip
    for name, kinds in MANIFEST_FIELDS.items():
        value = manifest.get(name)
        if not (value is None and None in kinds) and not isinstance(value, tuple(k for k in kinds if k)):
            raise UserError(f"{source}: the manifest's {name!r} is missing or not a {kinds[0].__name__}; "
                            "re-extract the bundle")  # fmt: skip
    for artifact in manifest["artifacts"]:
        if not isinstance(artifact, dict) or not all(isinstance(artifact.get(k), (str, list)) for k in ARTIFACT_FIELDS):
            raise UserError(f"{source}: an artifact entry lacks one of {', '.join(ARTIFACT_FIELDS)}; re-extract the "
                            "bundle")  # fmt: skip
    return manifest


def read_manifest(root: Path) -> dict:
    from .files import read_limited

    path = Path(root) / MANIFEST
    if not path.exists():
        raise UserError(f"{root}: no {MANIFEST}; not an edgedl bundle")
    try:
        manifest = json.loads(read_limited(path, 64 << 20, "bundle manifest"))
    except (ValueError, RecursionError) as exc:
        raise UserError(f"{path}: not a readable bundle manifest ({one_line(exc, 120)}); re-extract the bundle") from None
    return validate_manifest(manifest, path)


def verify(root: str | Path) -> dict:
    """Check every file the manifest lists (present, same sha256); return the manifest.

    Files the manifest does not list (a benchmark's output, say) are left alone.
    """
    root = Path(root).resolve()
    if root in _verified:
        return _verified[root]
    manifest = read_manifest(root)
    for rel, entry in sorted(manifest["files"].items()):
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) or len(entry["sha256"]) != 64:
            raise UserError(f"{root / MANIFEST}: the entry for {rel!r} has no sha256; re-extract the bundle")
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


MAX_UNPACKED_BYTES = 4 << 30  # a bundle holds a few models and an evaluation set: far less than this
MAX_MEMBERS = 10_000


def _check_members(archive: Path, members: list) -> str:
    """The bundle's one top folder, after refusing any member that is absolute, climbs out, or is too much."""
    total = 0
    tops = set()
    if len(members) > MAX_MEMBERS:
        raise UserError(f"{archive}: holds {len(members):,} entries, more than a bundle's {MAX_MEMBERS:,}; refused")
    for m in members:
        parts = Path(m.name).parts
        if m.name.startswith(("/", "\\")) or ".." in parts or not parts:
            raise UserError(f"{archive}: refused to unpack {m.name!r} (an absolute or climbing path); the bundle is "
                            "unsafe")  # fmt: skip
        if not (m.isfile() or m.isdir()):
            raise UserError(f"{archive}: refused to unpack {m.name!r} (a link or device, not a file); the bundle is "
                            "unsafe")  # fmt: skip
        total += m.size
        if total > MAX_UNPACKED_BYTES:
            raise UserError(f"{archive}: unpacks to more than {MAX_UNPACKED_BYTES:,} bytes; refused")
        tops.add(parts[0])
    if len(tops) != 1:
        raise UserError(f"{archive}: a bundle holds one folder, this holds {len(tops)} top-level entries")
    return tops.pop()


def extract(archive: str | Path, dest: str | Path, trust: Optional[dict] = None) -> Path:
    """Unpack a bundle into ``dest`` and verify it; on any refusal nothing is left behind.

    Returns the bundle folder. Refuses absolute paths, ``..``, links and
    device files (naming the member), archives that unpack to more than
    ``MAX_UNPACKED_BYTES``, and a folder that already exists. With ``trust``
    (``runtime.signing.trusted_keys``), also one whose manifest no trusted key signed.
    """
    import gzip
    import shutil
    import zlib

    archive, dest = Path(archive), Path(dest)
    from .files import check_regular

    check_regular(archive, "bundle")
    if dest.exists() and not dest.is_dir():
        raise UserError(f"--to {dest}: exists and is not a folder")
    if not hasattr(tarfile, "data_filter"):  # Python < 3.9.17 / 3.10.12 / 3.11.4
        raise UserError("this Python's tarfile has no safe extraction filter; unpack with 'tar xzf' instead")
    try:
        dest.mkdir(parents=True, exist_ok=True)
        stage = dest / f".edgedl-unpack-{archive.name}"  # one name per bundle: a killed unpack's is cleared here
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir()
    except OSError as exc:
        raise UserError(f"--to {dest}: cannot write there ({exc.strerror or exc})") from None
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = tar.getmembers()
                top = _check_members(archive, members)
                if (dest / top).exists():
                    raise UserError(f"{dest / top}: already exists; remove it, or unpack with --to elsewhere")
                tar.extractall(stage, members=members, filter="data")
        except tarfile.FilterError as exc:
            raise UserError(f"{archive}: refused to unpack {exc.tarinfo.name!r} ({exc}); the bundle is unsafe") from None
        except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise UserError(f"{archive}: corrupt archive ({one_line(exc, 100)}); copy it again") from None
        except OSError as exc:
            raise UserError(f"{archive}: could not be unpacked ({exc.strerror or exc})") from None
        verify(stage / top)
        if trust:
            from .signing import check_signed

            check_signed(stage / top / MANIFEST, trust)
        _verified.pop((stage / top).resolve(), None)
        os.replace(stage / top, dest / top)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return dest / top
