"""Signed artifacts and bundles: under ``--trust`` the device runs only what the trusted key signed. Unsigned,
signed by another key, edited after signing, or edited and re-sealed (the checksums made to match again):
each refused in one line. Without ``--trust`` nothing changes."""
import json
import shutil
import subprocess
import tarfile

import numpy as np
import pytest

pytest.importorskip("cryptography", reason="signatures need the 'cryptography' package (pyproject's train/sign)")
pytest.importorskip("onnx", reason="the model here is built with onnx's helper")

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, ed25519  # noqa: E402
from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402

from runtime.bundle import MANIFEST, make_manifest  # noqa: E402
from runtime.files import sha256_file, write_json  # noqa: E402
from runtime.signing import TRUST_ENV, sign_all  # noqa: E402
from tests.conftest import run_cli  # noqa: E402


def _classifier(path, weight=1.0):
    """Four inputs to three class scores (MatMul, Softmax): a model small enough to write here."""
    w = numpy_helper.from_array(np.full((4, 3), weight, np.float32) * np.arange(3, dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["z"]), helper.make_node("Softmax", ["z"], ["y"])],
                              "tiny", [helper.make_tensor_value_info("x", T.FLOAT, [None, 4])],
                              [helper.make_tensor_value_info("y", T.FLOAT, [None, 3])], [w])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def _key_pair(folder, name, curve=True):
    key = ec.generate_private_key(ec.SECP256R1()) if curve else ed25519.Ed25519PrivateKey.generate()
    private, public = folder / f"{name}.pem", folder / f"{name}.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))  # fmt: skip
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    return private, public


@pytest.fixture()
def setup(tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    ours, theirs = _key_pair(keys, "ours"), _key_pair(keys, "theirs", curve=False)
    np.save(tmp_path / "x.npy", np.ones((2, 4), np.float32))
    return tmp_path, ours, theirs


def _run(model, tmp_path, *extra, env=None):
    return run_cli("edgedl-run", str(model), str(tmp_path / "x.npy"), "--json", *extra, env=env)


def _refused(proc, *words):
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_an_artifact_runs_under_trust_only_when_the_trusted_key_signed_it_as_it_is(setup):
    tmp_path, (our_key, our_pub), (their_key, their_pub) = setup
    model = _classifier(tmp_path / "tiny.onnx")
    assert _run(model, tmp_path).returncode == 0  # unsigned use stays the default
    _refused(_run(model, tmp_path, "--trust", str(our_pub)), "unsigned", "tiny.onnx.sig")

    sign_all([model], our_key)
    signed = _run(model, tmp_path, "--trust", str(our_pub))
    assert signed.returncode == 0, signed.stderr
    assert json.loads(signed.stdout)["results"][0]["top"][0]["label"] == "2"
    _refused(_run(model, tmp_path, "--trust", str(their_pub)), "not trusted")
    trusted = tmp_path / "trusted"  # the device's folder of trusted keys
    trusted.mkdir()
    shutil.copy(our_pub, trusted / "maker.pem")
    assert _run(model, tmp_path, "--trust", str(trusted)).returncode == 0

    # Another model under the signed one's name (edited, its checksum made to match): refused.
    _classifier(model, weight=-1.0)
    _refused(_run(model, tmp_path, "--trust", str(our_pub)), "changed since it was signed")
    sign_all([model], their_key)  # re-signed by someone else
    _refused(_run(model, tmp_path, "--trust", str(our_pub)), "not trusted")
    # The device's trusted keys given once, in the environment, as a board's service would.
    _refused(_run(model, tmp_path, env={TRUST_ENV: str(our_pub)}), "not trusted")
    (model.parent / "tiny.onnx.sig").write_text("{not json")
    _refused(_run(model, tmp_path, "--trust", str(our_pub)), "not a readable edgedl signature")


def _bundle(folder, key=None):
    """A bundle folder as ``edgedl bundle`` lays it out: models/, a manifest of every file, signed with ``key``."""
    (folder / "models").mkdir(parents=True)
    _classifier(folder / "models" / "tiny.onnx")
    _reseal(folder)
    if key:
        sign_all([folder / MANIFEST], key)
    return folder


def _reseal(folder):
    files = {p.relative_to(folder).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
             for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith("manifest.json")}  # fmt: skip
    artifact = {"variant": "tiny", "path": "models/tiny.onnx", "format": "onnx", "precision": "float32",
                "task": "classification", "techniques": []}  # fmt: skip
    write_json(folder / MANIFEST, make_manifest(
        target="linux", target_description="t", edgedl_version="0", created="2026-01-01T00:00:00Z", model="tiny",
        task="classification", why="test", artifacts=[artifact], reference=None, eval=None, samples=[],
        requirements=[], files=files))  # fmt: skip


def _tar(folder, out):
    with tarfile.open(out, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return out


def test_a_signed_bundle_runs_and_unpacks_under_trust_and_a_resealed_or_unsigned_one_does_not(setup):
    tmp_path, (our_key, our_pub), (their_key, _) = setup
    signed = _bundle(tmp_path / "signed", our_key)
    model = signed / "models" / "tiny.onnx"
    assert _run(model, tmp_path, "--trust", str(our_pub)).returncode == 0
    archive = _tar(signed, tmp_path / "signed.tar.gz")
    unpacked = run_cli("edgedl-run", "unpack", str(archive), "--to", str(tmp_path / "device"), "--trust", str(our_pub))
    assert unpacked.returncode == 0 and "signed by a trusted key" in unpacked.stdout, unpacked.stderr

    # Edited and re-sealed: the model changed and the manifest rewritten to match it, the old signature kept.
    resealed = tmp_path / "resealed"
    shutil.copytree(signed, resealed)
    _classifier(resealed / "models" / "tiny.onnx", weight=-1.0)
    _reseal(resealed)
    assert _run(resealed / "models" / "tiny.onnx", tmp_path).returncode == 0  # the checksums all match
    _refused(_run(resealed / "models" / "tiny.onnx", tmp_path, "--trust", str(our_pub)), "manifest.json",
             "changed since it was signed")  # fmt: skip
    refused = run_cli("edgedl-run", "unpack", str(_tar(resealed, tmp_path / "resealed.tar.gz")), "--to",
                      str(tmp_path / "device2"), "--trust", str(our_pub))  # fmt: skip
    _refused(refused, "changed since it was signed")
    assert not (tmp_path / "device2" / "resealed").exists()  # nothing unpacked
    sign_all([resealed / MANIFEST], their_key)
    _refused(_run(resealed / "models" / "tiny.onnx", tmp_path, "--trust", str(our_pub)), "not trusted")

    unsigned = _bundle(tmp_path / "unsigned")
    _refused(_run(unsigned / "models" / "tiny.onnx", tmp_path, "--trust", str(our_pub)), "unsigned")


def test_keys_made_by_openssl_as_the_readme_says_sign_and_verify(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command on this machine: the other tests make their keys with cryptography")
    key, pub = tmp_path / "key.pem", tmp_path / "key.pub"
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key)],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)], check=True, capture_output=True)
    np.save(tmp_path / "x.npy", np.ones((2, 4), np.float32))
    model = _classifier(tmp_path / "tiny.onnx")
    sign_all([model], key)
    assert _run(model, tmp_path, "--trust", str(pub)).returncode == 0


def test_bad_keys_are_one_line(setup):
    tmp_path, (our_key, our_pub), _ = setup
    model = _classifier(tmp_path / "tiny.onnx")
    _refused(_run(model, tmp_path, "--trust", str(tmp_path / "nope.pub")), "no such key file")
    _refused(_run(model, tmp_path, "--trust", str(our_key)), "not a PEM public key")  # the private half
    empty = tmp_path / "empty"
    empty.mkdir()
    _refused(_run(model, tmp_path, "--trust", str(empty)), "holds no .pem")
    from runtime.errors import UserError

    with pytest.raises(UserError, match="not a PEM private key"):
        sign_all([model], our_pub)
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = tmp_path / "rsa.pem"
    other.write_bytes(rsa.generate_private_key(65537, 2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(UserError, match="ECDSA P-256 or Ed25519"):
        sign_all([model], other)
