"""Who made a model: signatures on artifacts and bundles, and the device's refusal of anyone else's.

A checksum (``runtime.files.seal``, the bundle manifest's sha256s) proves a
copy is whole; it does not prove who made it, since whoever edits a file can
seal it again. A signature does: the host signs with a private key
(``edgedl export --sign KEY``, ``edgedl bundle --sign KEY``), the device holds
the public half and, given it (``edgedl-run --trust PUBKEY``, or a folder of
trusted keys), refuses what is unsigned or signed by another key.

What is signed:

* an artifact: ``model.tflite.sig`` beside ``model.tflite`` signs the file's sha256;
* a bundle: ``manifest.json.sig`` signs the manifest, which lists every other
  file's sha256, so one signature covers the models, the runtime wheel and the data.

A signature file is JSON: ``{"kind": "edgedl-signature", "version": 1, "sha256": ...,
"key_id": ..., "algorithm": ..., "signature": base64}``. The signed message is
``b"edgedl-signature-v1\\n" + sha256 hex``. Keys are PEM: ECDSA P-256 (as
``openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`` writes it)
or Ed25519; the cryptography is the ``cryptography`` package's, imported only
when a key is used.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Optional, Sequence

from .errors import UserError, one_line
from .files import atomic_path, read_limited, sha256_file

SUFFIX = ".sig"
KIND = "edgedl-signature"
VERSION = 1
MESSAGE_PREFIX = b"edgedl-signature-v1\n"
TRUST_ENV = "EDGEDL_TRUSTED_KEYS"  # a PEM file or a folder of them: the device's default for --trust
PASSWORD_ENV = "EDGEDL_KEY_PASSWORD"  # the passphrase of an encrypted private key
MAX_KEY_BYTES = 64 << 10
INSTALL = "pip install cryptography==46.0.3"


def _crypto():
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    except ImportError:
        raise UserError(f"signatures need the 'cryptography' package: {INSTALL}") from None
    return InvalidSignature, hashes, serialization, ec, ed25519


def signature_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name + SUFFIX)


def key_id(public_key) -> str:
    """The sha256 of the key's DER SubjectPublicKeyInfo: the same for a key and its public half."""
    _, _, serialization, _, _ = _crypto()
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _algorithm(key, ec, ed25519) -> str:
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)) and key.curve.name == "secp256r1":
        return "ecdsa-p256-sha256"
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "ed25519"
    return ""


def load_private_key(path: str | os.PathLike):
    """A PEM private key (ECDSA P-256 or Ed25519); an encrypted one takes its passphrase from $EDGEDL_KEY_PASSWORD."""
    _, _, serialization, ec, ed25519 = _crypto()
    data = read_limited(path, MAX_KEY_BYTES, "signing key")
    password = os.environ.get(PASSWORD_ENV)
    try:
        key = serialization.load_pem_private_key(data, password=password.encode() if password else None)
    except TypeError as exc:  # encrypted without a password, or a password for a plain key
        raise UserError(f"--sign {path}: {one_line(exc, 120)}; set {PASSWORD_ENV} to the key's passphrase") from None
    except ValueError as exc:
        raise UserError(f"--sign {path}: not a PEM private key ({one_line(exc, 100)}); make one with 'openssl genpkey "
                        "-algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem'") from None  # fmt: skip
    if not _algorithm(key, ec, ed25519):
        raise UserError(f"--sign {path}: a {type(key).__name__.lstrip('_')}; sign with an ECDSA P-256 or Ed25519 key")
    return key


def load_public_keys(spec: str | os.PathLike) -> dict:
    """The trusted keys of ``spec`` (a PEM public key, or a folder of ``*.pem``/``*.pub``), by key id."""
    _, _, serialization, ec, ed25519 = _crypto()
    spec = Path(spec)
    if spec.is_dir():
        files = sorted(p for p in spec.iterdir() if p.suffix in (".pem", ".pub") and p.is_file())
        if not files:
            raise UserError(f"--trust {spec}: the folder holds no .pem or .pub public key")
    elif spec.is_file():
        files = [spec]
    else:
        raise UserError(f"--trust {spec}: no such key file or folder (the PEM 'openssl pkey -pubout' writes)")
    keys = {}
    for file in files:
        try:
            key = serialization.load_pem_public_key(read_limited(file, MAX_KEY_BYTES, "public key"))
        except ValueError:
            raise UserError(f"--trust {file}: not a PEM public key; write one with 'openssl pkey -in key.pem -pubout "
                            "-out key.pub'") from None  # fmt: skip
        if not _algorithm(key, ec, ed25519):
            raise UserError(f"--trust {file}: not an ECDSA P-256 or Ed25519 public key")
        keys[key_id(key)] = key
    return keys


def trusted_keys(spec: Optional[str]) -> Optional[dict]:
    """The keys ``--trust`` names, or those of $EDGEDL_TRUSTED_KEYS, or None (unsigned use, the default)."""
    spec = spec or os.environ.get(TRUST_ENV)
    return load_public_keys(spec) if spec else None


def sign_file(path: str | os.PathLike, key) -> Path:
    """Write ``path``'s signature beside it (atomically) and return its path."""
    _, hashes, _, ec, ed25519 = _crypto()
    digest = sha256_file(path)
    message = MESSAGE_PREFIX + digest.encode()
    algorithm = _algorithm(key, ec, ed25519)
    raw = key.sign(message, ec.ECDSA(hashes.SHA256())) if algorithm.startswith("ecdsa") else key.sign(message)
    document = {"kind": KIND, "version": VERSION, "file": Path(path).name, "sha256": digest,
                "key_id": key_id(key.public_key()), "algorithm": algorithm,
                "signature": base64.b64encode(raw).decode()}  # fmt: skip
    out = signature_path(path)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(document, indent=2) + "\n")
    return out


def _refused(path: Path, why: str) -> UserError:
    return UserError(f"{path}: {why}; refused under --trust (get it again from its maker, or run without --trust)")


def check_signed(path: str | os.PathLike, keys: dict, data: Optional[bytes] = None) -> str:
    """``path``'s signature is valid and by one of ``keys``: the signer's key id; otherwise one line.
    ``data``: the file's bytes as already read (what is checked is then what is used)."""
    InvalidSignature, hashes, _, ec, _ = _crypto()
    path = Path(path)
    sig_path = signature_path(path)
    if not sig_path.is_file():
        raise _refused(path, f"unsigned (no {sig_path.name})")
    try:
        document = json.loads(read_limited(sig_path, 64 << 10, "signature"))
        digest, signer = document["sha256"], document["key_id"]
        raw = base64.b64decode(document["signature"], validate=True)
        if document.get("kind") != KIND or not isinstance(digest, str) or not isinstance(signer, str):
            raise ValueError("not an edgedl signature")
    except (ValueError, KeyError, TypeError, RecursionError):
        raise _refused(path, f"{sig_path.name} is not a readable edgedl signature") from None
    key = keys.get(signer)
    if key is None:
        raise _refused(path, f"signed by key {signer[:16]}…, which is not trusted here")
    if (hashlib.sha256(data).hexdigest() if data is not None else sha256_file(path)) != digest:
        raise _refused(path, "changed since it was signed (sha256 differs)")
    message = MESSAGE_PREFIX + digest.encode()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(raw, message, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(raw, message)
    except InvalidSignature:
        raise _refused(path, f"its signature does not verify with key {signer[:16]}…") from None
    return signer


def check_trusted(model_path: str | os.PathLike, keys: Optional[dict], bundle: Optional[dict] = None,
                  data: Optional[bytes] = None) -> None:  # fmt: skip
    """Under ``--trust``: a model inside a bundle (``bundle``: ``runtime.bundle.verify_for``'s root and manifest,
    already checked against the files) needs a signed manifest that lists these very bytes; a model on its own
    needs its own signature. Without keys, nothing is asked."""
    if not keys:
        return
    if bundle is None:
        check_signed(model_path, keys, data)
        return
    root = Path(bundle["root"])
    check_signed(root / "manifest.json", keys)
    rel = Path(model_path).resolve().relative_to(root.resolve()).as_posix()
    entry = bundle["manifest"]["files"].get(rel)  # the manifest verify_for read, whose bytes are what was signed
    if data is not None and (not isinstance(entry, dict) or entry.get("sha256") != hashlib.sha256(data).hexdigest()):
        raise _refused(Path(model_path), "not listed, or listed otherwise, in the bundle's signed manifest")


def sign_all(paths: Sequence[str | os.PathLike], key_path: str | os.PathLike) -> list:
    """Sign each of ``paths`` with the key at ``key_path``; the signature files written."""
    key = load_private_key(key_path)
    return [sign_file(p, key) for p in paths]
