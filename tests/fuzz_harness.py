"""A deterministic fuzzer for the device side: damaged models, hostile inputs, bundles and arguments.

Every case runs ``edgedl-run`` in a fresh process with a timeout, and is judged
by its outcome alone: exit 0 (with valid JSON where ``--json`` was asked), or
a one-line error (exit 2, or 3 for flagged non-finite outputs). A traceback,
a signal, a hang or any other stderr is a failure.

    python -m tests.fuzz_harness MODEL.tflite MODEL.onnx IMAGE.png --cases 2000

Mutations follow the usual families (AFL's bit flips, byte runs, truncation,
chunk duplication), plus format-aware ones: offsets and lengths inside the
flatbuffer / protobuf overwritten, edgedl's JSON record edited and re-sealed
(so that the schema check, not the checksum, must catch it).
"""
from __future__ import annotations

import io
import json
import os
import random
import re
import struct
import subprocess
import sys
import tarfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TIMEOUT_S = 120  # a hang never ends; a loaded machine can take a while to start a process
FAMILIES = ("tflite", "onnx", "foreign-tflite", "foreign-onnx", "record", "image", "array", "bundle", "args")


@dataclass
class Case:
    family: str
    name: str
    argv: list  # arguments of edgedl-run; "{dir}" is the case's folder
    files: dict = field(default_factory=dict)  # name -> bytes, written into the case's folder
    fifo: str = ""  # a name to create as a FIFO
    wants_json: bool = False


def _mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    kind = rng.randrange(8)
    if kind == 0:  # bit flips
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif kind == 1:  # a run of one byte
        i, n = rng.randrange(len(b)), rng.randint(1, 64)
        b[i : i + n] = bytes([rng.choice((0, 0xFF, 0x7F, 0x80, rng.randrange(256)))]) * len(b[i : i + n])
    elif kind == 2:  # truncation
        del b[rng.randrange(1, len(b)) :]
    elif kind == 3:  # an interesting 32-bit value written over an offset or length
        i = rng.randrange(0, max(1, len(b) - 4)) & ~3 if rng.random() < 0.5 else rng.randrange(0, min(256, len(b) - 4))
        b[i : i + 4] = struct.pack("<I", rng.choice((0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0x80000000, len(b), len(b) + 8,
                                                     rng.randrange(1 << 32))))  # fmt: skip
    elif kind == 4:  # a chunk duplicated
        i, n = rng.randrange(len(b)), rng.randint(1, 4096)
        b[i:i] = b[i : i + n]
    elif kind == 5:  # bytes appended
        b += os.urandom(0) + bytes(rng.randrange(256) for _ in range(rng.randint(1, 512)))
    elif kind == 6:  # a chunk removed
        i, n = rng.randrange(len(b)), rng.randint(1, 4096)
        del b[i : i + n]
    else:  # random bytes in the header
        for i in range(min(len(b), 64)):
            if rng.random() < 0.2:
                b[i] = rng.randrange(256)
    return bytes(b)


def slot(table, index: int) -> int:
    """Where a table's vtable keeps field ``index``'s offset."""
    return table._vt + 4 + 2 * index


def structural_mutant(data: bytes, rng: random.Random) -> bytes:
    """``data`` with one structural fault: a vtable slot of the model, a subgraph, a tensor or an operator
    zeroed or pointed elsewhere, an index written beyond its list, or a vector's length made huge."""
    b = bytearray(data)
    from runtime.flatbuffer import root

    model = root(data)
    graph = model.tables(2)[0]
    tensor = rng.choice(graph.tables(0))
    operator = rng.choice(graph.tables(3))
    kind = rng.randrange(6)
    if kind == 0:  # a field of the model or its subgraph gone (0: absent) or moved (its offset changed)
        table, index = rng.choice([(model, rng.choice((1, 2, 4))), (graph, rng.randrange(5))])
        struct.pack_into("<H", b, slot(table, index), rng.choice((0, 1, 0xFFFF, rng.randrange(1 << 16))))
    elif kind == 1:  # a tensor's buffer index beyond the buffers
        at = tensor.field(2)
        if at is not None:
            struct.pack_into("<I", b, at, rng.choice((len(model.tables(4)), 0x7FFFFFFF, 0xFFFFFFFF)))
    elif kind == 2:  # an operator's code beyond the codes
        at = operator.field(0)
        if at is not None:
            struct.pack_into("<I", b, at, rng.choice((len(model.tables(1)), 1000, 0xFFFFFFFF)))
    elif kind == 3:  # an operator's input beyond the tensors
        vec = operator.vector(1)
        if vec and vec[1]:
            struct.pack_into("<i", b, vec[0], rng.choice((len(graph.tables(0)), -2, 0x7FFFFFFF)))
    elif kind == 4:  # a vector's length beyond the file (the subgraph's tensors, or a shape)
        vec = rng.choice([graph.vector(0), tensor.vector(0)])
        if vec:
            struct.pack_into("<I", b, vec[0] - 4, rng.choice((len(b), 0x7FFFFFFF, 0xFFFFFFFF)))
    else:  # a table offset pointing outside
        at = model.field(2)
        if at is not None:
            struct.pack_into("<I", b, at, rng.choice((len(b), 0x7FFFFFFF, 3)))
    return bytes(b)


_RECORD = re.compile(rb'\{\n  "task".*?\n\}', re.S)


def _reembed(data: bytes, ext: str, text: bytes) -> bytes:
    """The model with its edgedl record replaced by ``text`` (as the exporters embed it)."""
    if ext == ".onnx":
        import onnx

        proto = onnx.load_from_string(data)
        onnx.helper.set_model_props(proto, {"edgedl": text.decode()})
        return proto.SerializeToString()
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    for entry in model.metadata:
        if entry.name in (b"edgedl", "edgedl"):
            model.buffers[entry.buffer].data = np.frombuffer(text, dtype=np.uint8)
    builder = flatbuffers.Builder(len(data) + len(text))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def strip_record(data: bytes, ext: str) -> bytes:
    """The model as another tool would have written it: no edgedl record, so no checksum to stop a mutant."""
    if ext == ".onnx":
        import onnx

        proto = onnx.load_from_string(data)
        del proto.metadata_props[:]
        return proto.SerializeToString()
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    for entry in model.metadata or []:
        if entry.name in (b"edgedl", "edgedl"):
            model.buffers[entry.buffer].data = None
    model.metadata = [m for m in model.metadata or [] if m.name not in (b"edgedl", "edgedl")]
    builder = flatbuffers.Builder(len(data))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _edit_record(data: bytes, ext: str, rng: random.Random) -> bytes:
    """edgedl's JSON record inside a model, edited and re-sealed: the schema check must catch it."""
    from runtime.files import UNSEALED, seal

    found = _RECORD.search(data)
    if found is None:
        return _mutate(data, rng)
    doc = json.loads(found.group(0))
    edits = [
        lambda d: d["normalization"].update(scale=[0.0]),
        lambda d: d["normalization"].update(offset=[float("nan")] if rng.random() < 0.5 else ["x"]),
        lambda d: d.update(labels=d["labels"][:3] if d.get("labels") else ["a"]),
        lambda d: d.update(task=rng.choice(["detection", 7, None, ""])),
        lambda d: d["inputs"][0]["quantization"] and d["inputs"][0]["quantization"].update(scale=-1.0),
        lambda d: d["inputs"][0].update(shape=[-5, "x"]),
        lambda d: d.update(inputs=[]),
        lambda d: d.update(schema_version=rng.choice([99, "2", 0])),
        lambda d: d.update(layout="CHWN"),
        lambda d: d.update(labels=["x" * 1000] * 10),
        lambda d: d.update(precision="int8; rm -rf /"),
    ]
    rng.choice(edits)(doc)
    doc["artifact_sha256"] = UNSEALED
    edited = _reembed(data, ext, json.dumps(doc, indent=2).encode())
    try:
        return seal(edited)
    except ValueError:  # the edit removed the checksum field's zeros
        return edited


def _png(array: np.ndarray, mode=None) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG") if mode else Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def _image_cases(rng: random.Random, model: str, png: bytes) -> Case:
    kind = rng.randrange(9)
    if kind == 0:
        data = _mutate(png, rng)
    elif kind == 1:  # a decompression bomb: a tiny PNG claiming 60000 × 60000 pixels
        data = bytearray(png)
        data[16:24] = struct.pack(">II", 60000, 60000)
        data = bytes(data)
    elif kind == 2:
        data = _png((np.arange(28 * 28).reshape(28, 28) * 80).astype(np.uint16))  # 16-bit grey
    elif kind == 3:
        rgba = np.zeros((28, 28, 4), np.uint8)
        rgba[8:20, 12:16] = 255
        data = _png(rgba)
    elif kind == 4:
        data = b""
    elif kind == 5:
        data = bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))
    elif kind == 6:
        data = _png(np.zeros((1, 1), np.uint8))
    elif kind == 7:
        data = _png(np.full((3000, 5), 200, np.uint8))
    else:
        data = png[: rng.randrange(8, len(png))]
    name = rng.choice(["in.png", "in.jpg", "ïñ pút ✓.png", "-dash.png", "in.JPEG"])
    return Case("image", f"image{kind}", [model, f"{{dir}}/{name}", "--json"], {name: data}, wants_json=True)


def _array_case(rng: random.Random, model: str) -> Case:
    kind = rng.randrange(9)
    buffer = io.BytesIO()
    if kind == 0:
        np.save(buffer, np.full((2, 28, 28, 1), np.nan, np.float32))
    elif kind == 1:
        np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif kind == 2:  # a header that claims a huge array
        np.save(buffer, np.zeros((1, 28, 28, 1), np.float32))
        data = buffer.getvalue().replace(b"(1, 28, 28, 1)", b"(9999999999, 28, 28, 1)"[:14].ljust(14))
        return Case("array", "array-huge", [model, "{dir}/x.npy"], {"x.npy": data})
    elif kind == 3:
        np.save(buffer, np.zeros((3, 5), np.float32))
    elif kind == 4:
        np.save(buffer, np.full((1, 28, 28, 1), 1e30, np.float32))
    elif kind == 5:
        np.save(buffer, np.zeros((28, 28), np.complex64))
    elif kind == 6:
        np.save(buffer, np.zeros((0, 28, 28, 1), np.float32))
    elif kind == 7:
        np.save(buffer, np.zeros((2, 28, 28, 1), np.float32))
        return Case("array", "array-mutant", [model, "{dir}/x.npy", "--json"],
                    {"x.npy": _mutate(buffer.getvalue(), rng)}, wants_json=True)  # fmt: skip
    else:
        np.savez(buffer, x=np.zeros((1, 28, 28, 1), np.float32))
        return Case("array", "npz-wrong-name", [model, "{dir}/x.npz"], {"x.npz": buffer.getvalue()})
    return Case("array", f"array{kind}", [model, "{dir}/x.npy", "--json"], {"x.npy": buffer.getvalue()},
                wants_json=True)  # fmt: skip


def _tar(members: list) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _bundle_case(rng: random.Random, bundle: bytes) -> Case:
    kind = rng.randrange(8)

    def member(name, data=b"x", **kw):
        info = tarfile.TarInfo(name)
        info.size = len(data) if data is not None else 0
        for k, v in kw.items():
            setattr(info, k, v)
        return info, data

    if kind == 0:
        data = _mutate(bundle, rng)
    elif kind == 1:
        data = _tar([member("b/manifest.json", b"{}"), member("b/../../outside.txt")])
    elif kind == 2:
        data = _tar([member("/abs/manifest.json")])
    elif kind == 3:
        data = _tar([member("b/link", None, type=tarfile.SYMTYPE, linkname="/etc/passwd")])
    elif kind == 4:
        data = _tar([member("b/manifest.json", json.dumps({"kind": "edgedl-bundle", "files": {"x": {}}}).encode()),
                     member("b/x")])  # fmt: skip
    elif kind == 5:
        data = _tar([member("b/manifest.json", b"not json")])
    elif kind == 6:
        data = bundle[: rng.randrange(10, len(bundle))]
    else:
        data = _tar([member("a/x"), member("b/y")])
    target = rng.choice(["{dir}/out", "{dir}/file.txt"])
    return Case("bundle", f"bundle{kind}", ["unpack", "{dir}/b.tar.gz", "--to", target],
                {"b.tar.gz": data, "file.txt": b"i am a file"})  # fmt: skip


def _args_case(rng: random.Random, model: str, png: str) -> Case:
    options = [
        ["--threads", rng.choice(["0", "-1", "1000", "100000", "2", "x"])],
        ["--top", rng.choice(["0", "999", "-3"])],
        ["--batch", rng.choice(["0", "100000000"])],
        ["--size", rng.choice(["0x0", "99999x99999", "abc", "28x28"])],
        ["--mean", rng.choice(["nan", "1,2,3,4,5", "0.5"]), "--std", rng.choice(["0", "inf", "0.5"])],
        ["--scale", rng.choice(["0", "1e400", "0.1"])],
        ["--channels", rng.choice(["2", "3", "1"])],
        ["--layout", rng.choice(["NCHW", "HWC"])],
        ["--labels", "{dir}/labels.txt"],
        ["--providers", "CUDAExecutionProvider"],
        ["--describe"],
        ["--save-outputs", "{dir}/out"],
        ["--tile", "1"],
    ]
    argv = [model, png]
    for _ in range(rng.randint(1, 3)):
        argv += rng.choice(options)
    if rng.random() < 0.15:
        return Case("args", "fifo-model", ["{dir}/fifo.tflite", png], fifo="fifo.tflite")
    if rng.random() < 0.1:
        return Case("args", "fifo-input", [model, "{dir}/fifo.png"], fifo="fifo.png")
    if rng.random() < 0.1:
        return Case("args", "bench", ["bench", model, "--runs", rng.choice(["0", "3"]), "--shape",
                                      rng.choice(["x=1", "serving_default_image:0=1x28x28x1", "=", "a=bxc"])])
    labels = rng.choice([b"", b"a\nb\n", "\n".join(str(i) for i in range(10)).encode(), os.urandom(64)])
    return Case("args", "args", argv, {"labels.txt": labels})


def make_cases(seeds: dict, count: int, seed: int = 0) -> list[Case]:
    """``count`` cases spread over the families, from ``seeds`` (paths of the seed files by role)."""
    rng = random.Random(seed)
    tflite, onnx = Path(seeds["tflite"]).read_bytes(), Path(seeds["onnx"]).read_bytes()
    png = Path(seeds["png"]).read_bytes()
    bundle = Path(seeds["bundle"]).read_bytes() if seeds.get("bundle") else _tar([])
    foreign = {".tflite": strip_record(tflite, ".tflite"), ".onnx": strip_record(onnx, ".onnx")}
    cases = []
    for i in range(count):
        family = FAMILIES[i % len(FAMILIES)]
        r = random.Random(rng.randrange(1 << 30))
        if family.startswith("foreign"):
            ext = "." + family.split("-")[1]
            argv = ["{dir}/m" + ext, "{dir}/in.png", "--json"]
            if r.random() < 0.2:
                argv = ["bench", "{dir}/m" + ext, "--runs", "3", "--warmup", "0"]
            data = foreign[ext]
            mutant = structural_mutant(data, r) if ext == ".tflite" and r.random() < 0.3 else _mutate(data, r)
            cases.append(Case(family, "mutant", argv, {"m" + ext: mutant, "in.png": png},
                              wants_json="--json" in argv))  # fmt: skip
        elif family in ("tflite", "onnx"):
            data, ext = (tflite, ".tflite") if family == "tflite" else (onnx, ".onnx")
            argv = ["{dir}/m" + ext, "{dir}/in.png", "--json"]
            if r.random() < 0.2:
                argv = ["bench", "{dir}/m" + ext, "--runs", "3", "--warmup", "0"]
            mutant = structural_mutant(data, r) if ext == ".tflite" and r.random() < 0.3 else _mutate(data, r)
            cases.append(Case(family, "mutant", argv, {"m" + ext: mutant, "in.png": png},
                              wants_json="--json" in argv))  # fmt: skip
        elif family == "record":
            data, ext = (tflite, ".tflite") if r.random() < 0.5 else (onnx, ".onnx")
            cases.append(Case("record", "record", ["{dir}/m" + ext, "{dir}/in.png", "--json"],
                              {"m" + ext: _edit_record(data, ext, r), "in.png": png}, wants_json=True))  # fmt: skip
        elif family == "image":
            cases.append(_image_cases(r, seeds[r.choice(["tflite", "onnx"])], png))
        elif family == "array":
            cases.append(_array_case(r, seeds[r.choice(["tflite", "onnx"])]))
        elif family == "bundle":
            cases.append(_bundle_case(r, bundle))
        else:
            cases.append(_args_case(r, seeds[r.choice(["tflite", "onnx"])], seeds["png"]))
    return cases


def judge(proc, wants_json: bool) -> str:
    """ok, error (one clean line), or what went wrong: traceback, signal, other."""
    if proc.returncode < 0:
        return "signal"
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("INFO: ")]
    if "Traceback" in proc.stderr:
        return "traceback"
    if proc.returncode == 0:
        if lines:
            return "other"
        if wants_json:
            try:
                json.loads(proc.stdout, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
            except ValueError:
                return "bad-json"
        return "ok"
    if proc.returncode in (2, 3) and len(lines) == 1 and "error: " in lines[0]:
        return "error"
    return "other"


def run_case(case: Case, folder: Path, exe: str) -> tuple[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in case.files.items():
        (folder / name).write_bytes(data)
    if case.fifo:
        os.mkfifo(folder / case.fifo)
    argv = [a.replace("{dir}", str(folder)) for a in case.argv]
    try:
        proc = subprocess.run([exe, *argv], capture_output=True, text=True, timeout=TIMEOUT_S, cwd=folder,
                              stdin=subprocess.DEVNULL, errors="replace")  # fmt: skip
    except subprocess.TimeoutExpired:
        return "hang", " ".join(argv)
    return judge(proc, case.wants_json), proc.stderr.strip()[-400:]


def run_cases(cases: list[Case], workdir: Path, exe: str, workers: int = 2) -> tuple[Counter, list]:
    """Outcome counts by (family, outcome), and the failures with what they printed."""
    counts: Counter = Counter()
    failures = []

    def one(item):
        i, case = item
        return case, *run_case(case, workdir / f"case{i:05d}", exe)

    with ThreadPoolExecutor(workers) as pool:
        for case, outcome, detail in pool.map(one, enumerate(cases)):
            counts[(case.family, outcome)] += 1
            if outcome not in ("ok", "error"):
                failures.append((case.family, case.name, outcome, detail))
    return counts, failures


def main(argv=None) -> int:
    import argparse
    import tempfile

    p = argparse.ArgumentParser(prog="python -m tests.fuzz_harness", description=__doc__.splitlines()[0])
    p.add_argument("tflite")
    p.add_argument("onnx")
    p.add_argument("png")
    p.add_argument("--bundle")
    p.add_argument("--cases", type=int, default=2100)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    exe = str(Path(sys.executable).with_name("edgedl-run"))
    seeds = {"tflite": args.tflite, "onnx": args.onnx, "png": args.png, "bundle": args.bundle}
    with tempfile.TemporaryDirectory() as tmp:
        counts, failures = run_cases(make_cases(seeds, args.cases, args.seed), Path(tmp), exe)
    for family in FAMILIES:
        row = {o: n for (f, o), n in sorted(counts.items()) if f == family}
        print(f"{family:<8} {sum(row.values()):>5} cases: " + ", ".join(f"{o} {n}" for o, n in row.items()))
    for failure in failures[:20]:
        print("FAIL", *failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
