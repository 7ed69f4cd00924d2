"""``edgedl bundle``: one ``.tar.gz`` that installs and runs on a Raspberry Pi or a Jetson without TensorFlow.

    edgedl bundle runs/cnn --target rpi-arm64 --out cnn-rpi-arm64.tar.gz

The bundle holds the chosen artifact(s) and their metadata, the device side of
edgedl as a wheel (``runtime/`` and ``edgedl-run``, nothing else), a
``requirements.txt`` for the target, the run's evaluation set, a few sample
inputs, a README with the commands to run on the board, and a manifest with
every file's sha256 (see ``runtime.bundle``). Each artifact is checked against
the target first (``edgedl.deploy.targets``); one it cannot run is refused, naming
the operator and a variant of the run that would work.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from exporters import EDGEDL_VERSION
from runtime.answers import file_answer
from runtime.bundle import MANIFEST, make_manifest
from runtime.devices import device_names, device_view
from runtime.errors import UserError
from runtime.files import atomic_path, clean_leftovers, sha256_file, write_json
from runtime.metadata import sidecar_path
from runtime.report import is_ok, read_report
from runtime.runfolder import EVAL_FILE, REPORT_FILE, find_run, read_eval_arrays, resolve, run_report, write_eval
from runtime.signing import load_private_key, sign_file
from runtime.tasks import get_task

from .targets import Target, get_target
from .wheels import Platform, download

ROOT = Path(__file__).resolve().parents[2]  # the project: the runtime wheel is built from its runtime/
SAMPLES = 8
CRYPTOGRAPHY = "cryptography==46.0.3"  # a signed bundle's: 'edgedl-run --trust' verifies with it
RUNTIME_DEPENDENCIES = ("numpy>=1.23,<2.5", "Pillow>=10,<14")  # the runtime wheel's own
WHEEL_PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "edgedl-runtime"
version = "{version}"
description = "edgedl's device side: run and benchmark exported models with numpy and one interpreter"
requires-python = ">=3.9"
dependencies = {dependencies}

[project.scripts]
edgedl-run = "runtime.cli:main"

[tool.setuptools]
packages = ["runtime"]
"""


@dataclass(frozen=True)
class BundleResult:
    path: Path
    target: str
    variants: tuple
    why: str
    files: int
    bytes: int


def build_runtime_wheel(dest: Path, work: Optional[Path] = None) -> Path:
    """The device side (``runtime/`` with the ``edgedl-run`` entry point) as a wheel, built offline (in a
    folder of ``work``, the bundle's staging, when given: nothing in the system's temporary folder)."""
    with tempfile.TemporaryDirectory(prefix="edgedl-wheel-", dir=work) as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(ROOT / "runtime", src / "runtime", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (src / "pyproject.toml").write_text(WHEEL_PYPROJECT.format(version=EDGEDL_VERSION,
                                                                dependencies=json.dumps(list(RUNTIME_DEPENDENCIES))))
        built = Path(tmp) / "dist"
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
             "--disable-pip-version-check", "-w", str(built), str(src)],
            capture_output=True, text=True,
        )  # fmt: skip
        wheels = sorted(built.glob("edgedl_runtime-*.whl"))
        if proc.returncode or not wheels:
            last = (proc.stderr.strip().splitlines() or ["no wheel written"])[-1]
            raise UserError(f"could not build the runtime wheel ({last}); pip install setuptools wheel")
        dest.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy2(wheels[0], dest / wheels[0].name))


def _choose(report: dict, run_dir: Path, target: Target, names: Sequence[str], max_drop: Optional[float], by: str,
            max_tail_drop: Optional[float] = None):  # fmt: skip
    """The variants to bundle and why: those named, or the one ``select`` picks among those the target runs."""
    from benchmarks.select import select

    by_name = {v["name"]: v for v in report["variants"] if is_ok(v)}
    runs = runnable(report, run_dir, target)
    if names:
        chosen = []
        for name in names:
            if name not in by_name or by_name[name]["format"] == "keras":
                known = ", ".join(v["name"] for v in report["variants"] if v["format"] != "keras" and is_ok(v))
                raise UserError(f"no variant {name!r} in {run_dir / REPORT_FILE}; the run has: {known}")
            problem = target.check(resolve(by_name[name]["path"], run_dir))
            if problem:
                raise UserError(f"{target.name} cannot run {name}: {problem}; {_instead(report, runs, target)}")
            chosen.append(by_name[name])
        return chosen, "named with --variant"
    if not runs:  # say what happened: nothing of the target's format was built, or nothing the target runs
        failed = [v["name"] for v in report["variants"] if not is_ok(v) and v["format"] in target.formats]
        built = "" if not failed else f"; {', '.join(failed)} failed to build (their reasons are in the report)"
        raise UserError(f"nothing to bundle for {target.name}: no {'/'.join(target.formats)} variant of this run runs on it"
                        f"{built}; {_instead(report, runs, target)}")  # fmt: skip
    failed = [v for v in report["variants"] if not is_ok(v) and v["format"] in target.formats]  # named if none fits
    picked = select({**report, "variants": runs + failed}, max_drop, by, max_tail_drop)
    if picked.variant is None:
        raise UserError(f"nothing to bundle for {target.name}: {picked.explanation}; "
                        f"{_instead(report, runs, target)}")  # fmt: skip
    return [picked.variant], picked.explanation


def runnable(report: dict, run_dir: Path, target: Target) -> list[dict]:
    """The run's variants whose artifact is present and passes the target's check."""
    def runs(path) -> bool:
        return path.is_file() and target.check(path) is None

    return [v for v in report["variants"] if is_ok(v) and v["format"] in target.formats
            and runs(resolve(v["path"], run_dir))]  # fmt: skip


def _instead(report: dict, runs: list, target: Target) -> str:
    if runs:
        best = max(runs, key=lambda v: (v["metric_delta"] or 0.0, -v["latency_ms"]["p50"]))
        delta = "" if best["metric_delta"] is None else f" ({report['metric']} {best['metric_delta']:+.2f} vs the original)"
        return f"bundle --variant {best['name']} instead{delta}"
    kind = "an int8 or float32 .tflite" if "tflite" in target.formats else "an .onnx (opset ≤ %s)" % target.max_opset
    return f"no variant of this run can; export {kind} for it ('edgedl export')"


def _write_samples(eval_path: Path, meta, folder: Path) -> list[str]:
    """A few evaluation inputs as files ``edgedl-run`` takes: PNGs of images, .npy of sequences."""
    from runtime.images import save_image
    from runtime.runfolder import load_eval

    inputs, targets, task = load_eval(eval_path)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    sample_name = get_task(task or "generic").sample_name  # an eval.npz of inputs alone: a generic model's
    for i in range(min(SAMPLES, len(inputs))):
        x = np.asarray(inputs[i], dtype=np.float32)
        name = sample_name(i, targets[i] if targets is not None else None)
        if x.ndim != 3 or x.shape[-1] not in (1, 3, 4) or min(x.shape[:2]) < 2:  # not a picture: the array
            # (a sequence of frames, a vector, an audio frame of 1×1×320), as 'edgedl-run' takes it
            name = f"{Path(name).stem}.npy"
        if name.endswith(".npy"):
            np.save(folder / name, x)
        else:
            save_image(x, meta, folder / name)
        names.append(name)
    return names


def _compressed_eval(source: Path, dest: Path) -> None:
    """The run's evaluation set, the same arrays, compressed (MNIST's shrinks about fivefold)."""
    arrays = read_eval_arrays(source)
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_eval(dest, {k: v for k, v in arrays.items() if k != "task"}, str(arrays["task"]) if "task" in arrays else None,
               compressed=True)


def _readme(target: Target, folder: str, model: str, artifacts: list[dict], samples: list[str], has_eval: bool,
            signed: bool = False, wheels_for: Optional[Platform] = None) -> str:  # fmt: skip
    first = artifacts[0]["path"]
    sample = f"samples/{samples[0]}" if samples else "YOUR_IMAGE.png"
    run = f"edgedl-run {first} {sample}"
    answer = file_answer(artifacts[0].get("task", "generic"))
    out_folder = answer.out_folder if answer is not None else ""
    if out_folder:  # a task that answers with files (denoised images, masks)
        run += f" --out {out_folder}"
    bench = f"edgedl-run bench {first} --json device.json"  # without data: timed on synthetic inputs
    lines = [
        f"# edgedl bundle: {model} for {target.name}",
        "",
        f"Target: {target.description}.",
        "",
        "Artifacts: " + ", ".join(f"`{a['path']}` ({a['variant']})" for a in artifacts) + ".",
        "",
        f"On the board: `tar xzf {folder}.tar.gz && cd {folder}`, then:",
        "",
        "```sh",
        "# 1. install: numpy, the interpreter and edgedl-run, into a virtual environment",
        "python3 -m venv .venv && . .venv/bin/activate && pip install "
        + ("--no-index --find-links wheels " if wheels_for else "") + "-r requirements.txt",
        "# 2. run on an image",
        run,
        ("# 3. benchmark: latency, init, memory and the metric on data/eval.npz, as the host measured them"
         if has_eval else "# 3. benchmark: latency, init and memory on synthetic inputs (no evaluation data bundled)"),
        bench,
        "```",
        "",
        "Bring `device.json` home and merge it with the host's figures:",
        "`edgedl report RUN/report.json device.json --out merged/`.",
        "",
        "`edgedl-run` checks every file against `manifest.json` before it loads a model.",
    ]
    if wheels_for:
        lines += ["", f"Every wheel is in wheels/ (for {wheels_for.machine}, Python {wheels_for.python}, glibc "
                      f"{wheels_for.glibc} or newer): the install needs no internet."]
    if signed:
        lines += ["", "The manifest is signed (`manifest.json.sig`): with the signer's public key on the board, "
                      "`edgedl-run --trust KEY.pub ...` (or `EDGEDL_TRUSTED_KEYS=KEY.pub`) refuses any bundle it "
                      "did not sign."]  # fmt: skip
    if target.name == "rpi-armv7":
        lines += ["", "Raspberry Pi OS's pip takes numpy and Pillow for armv7l from piwheels.org (its default index)."]
    lines += [""] + [f"{n}" for n in target.notes] if target.notes else []
    return "\n".join(lines) + "\n"


def _tar(staging: Path, out: Path) -> None:
    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:  # no user names or ids from this machine
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    with atomic_path(out) as tmp:
        with tarfile.open(tmp, "w:gz") as tar:
            tar.add(staging, arcname=staging.name, filter=clean)


def bundle(source: Path, target_name: str, out: Path, variants: Sequence[str] = (), max_drop: Optional[float] = None,
           by: str = "latency", max_tail_drop: Optional[float] = None, sign: Optional[Path] = None,
           on: Optional[str] = None, wheels_for: Optional[Platform] = None) -> BundleResult:  # fmt: skip
    """Check, gather and pack; ``out`` appears only once the archive is complete. ``sign``: a private key (PEM)
    that signs the manifest (``runtime.signing``), read before anything is gathered. ``on``: choose by the
    figures measured on that device (``edgedl deploy``), not the host's. ``wheels_for``: also pack every wheel
    the board needs (``edgedl.deploy.wheels``), for a board without internet."""
    target = get_target(target_name)
    key = load_private_key(sign) if sign else None
    source = Path(source)
    if not source.exists():
        raise UserError(f"{source}: no such run folder or artifact")
    if not out.name.endswith((".tar.gz", ".tgz")):
        raise UserError(f"--out {out}: a bundle is a .tar.gz file")
    if not out.parent.is_dir():  # a mistyped folder is not created behind the user's back
        raise UserError(f"--out {out}: the folder {out.parent} does not exist; create it first or choose another")
    if source.is_dir() or source.suffix.lower() == ".json":  # a run folder, or its report.json
        report_path, run_dir = run_report(source)
        report = read_report(report_path)
        if on:
            report = device_view(report, on)
        chosen, why = _choose(report, run_dir, target, variants, max_drop, by, max_tail_drop)
        if not variants:
            why += f"; measured on {on}" if on else timed_here(report, target)
    else:
        if variants or on:
            raise UserError("--variant and --on pick from a run folder; an artifact given directly is bundled as it is")
        problem = target.check(source)
        run_dir = find_run(source.parent)
        report = read_report(run_dir / REPORT_FILE) if run_dir else None
        record = next((v for v in report["variants"] if v.get("path") and
                       resolve(v["path"], run_dir).resolve() == source.resolve()), None) \
            if report else None  # fmt: skip
        if problem:
            hint = ""
            if report:  # name the run folder: --variant picks from it
                instead = _instead(report, runnable(report, run_dir, target), target)
                hint = "; " + instead.replace("--variant ", f"{run_dir} --variant ")
            raise UserError(f"{target.name} cannot run {source.name}: {problem}{hint}")
        chosen = [record or {"name": source.stem, "path": None, "format": source.suffix.lower().lstrip("."), "techniques": []}]
        why = "the artifact given"
    _check_space(out.parent, [resolve(v["path"], run_dir) if v.get("path") and run_dir else source for v in chosen]
                 + ([run_dir / EVAL_FILE] if run_dir and (run_dir / EVAL_FILE).is_file() else []),
                 WHEELS_ROOM if wheels_for else 0)  # fmt: skip
    return _pack(target, out, run_dir, report, chosen, why, source, Packing(key, wheels_for))


@dataclass(frozen=True)
class Packing:
    key: object = None  # the private key that signs the manifest
    wheels_for: Optional[Platform] = None  # the board whose wheels are packed


def timed_here(report: dict, target: Target) -> str:
    """For a board, a choice made by the host's clock says so, and how to make it by the board's."""
    if not target.machines or report["machine"].get("arch") in target.machines:
        return ""
    others = ", ".join(device_names(report))
    return (f"; timed on this host ({report['machine'].get('arch', '?')}), not on a {target.name} board: "
            + (f"choose by a board's figures with --on ({others})" if others else "measure there with 'edgedl deploy'"))


WHEEL_ROOM = 4 << 20  # the runtime wheel, the README, the samples and the manifest, with room to spare
WHEELS_ROOM = 300 << 20  # with --wheels: numpy, an interpreter and their dependencies for the board


def _check_space(folder: Path, inputs: list, extra: int = 0) -> None:
    """Refuse before gathering anything when ``folder`` cannot hold the staging copy and the archive (each at
    most the inputs' size: the archive compresses)."""
    needed = 2 * (sum(p.stat().st_size for p in inputs if p.is_file()) + WHEEL_ROOM + extra)
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise UserError(f"--out {folder}: {free / 2**20:,.1f} MiB free, the bundle needs about {needed / 2**20:,.1f} "
                        "MiB there (a staging copy and the archive); free some space, or write elsewhere")  # fmt: skip


def _pack(target: Target, out: Path, run_dir: Optional[Path], report: Optional[dict], chosen: list, why: str,
          source: Path, packing: Packing) -> BundleResult:  # fmt: skip
    name = out.name[: -len(".tar.gz")] if out.name.endswith(".tar.gz") else out.name[: -len(".tgz")]
    out.parent.mkdir(parents=True, exist_ok=True)
    # One staging folder per target file, beside it: what a killed bundle of it left is cleared here.
    clean_leftovers(out.parent, names=(out.name, Path(out.name).stem))
    work = out.parent / f".edgedl-bundle-{out.name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        return _staged(target, out, run_dir, report, chosen, why, source, work, name, packing)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _staged(target: Target, out: Path, run_dir: Optional[Path], report: Optional[dict], chosen: list, why: str,
            source: Path, work: Path, name: str, packing: Packing) -> BundleResult:  # fmt: skip
    from runtime.model import read_metadata

    staging = work / name
    (staging / "models").mkdir(parents=True)
    artifacts = []
    for v in chosen:
        src = resolve(v["path"], run_dir) if v.get("path") and run_dir else source
        shutil.copy2(src, staging / "models" / src.name)
        if sidecar_path(src).exists():
            shutil.copy2(sidecar_path(src), staging / "models" / sidecar_path(src).name)
        meta = read_metadata(staging / "models" / src.name)
        entry = {"variant": v["name"], "path": f"models/{src.name}", "format": meta.format,
                 "precision": meta.precision, "task": meta.task, "techniques": list(v.get("techniques", []))}
        entry.update({k: v[k] for k in ("params", "macs", "macs_per_pixel") if k in v})
        if "metrics" in v:
            entry["host"] = {"metrics": v["metrics"], "latency_p50_ms": v["latency_ms"]["p50"],
                             "machine": report["machine"].get("cpu")}  # fmt: skip
        artifacts.append(entry)
    wheel = build_runtime_wheel(staging / "wheels", work)
    eval_src = run_dir / EVAL_FILE if run_dir and (run_dir / EVAL_FILE).is_file() else None
    samples = []
    if eval_src:
        _compressed_eval(eval_src, staging / "data" / "eval.npz")
        samples = _write_samples(eval_src, meta, staging / "samples")
    formats, key = {a["format"] for a in artifacts}, packing.key
    requirements = [f"./wheels/{wheel.name}", *target.requirements_for(formats), *([CRYPTOGRAPHY] if key else [])]
    if packing.wheels_for is not None:
        download([*requirements, *RUNTIME_DEPENDENCIES], staging / "wheels", packing.wheels_for)
    (staging / "requirements.txt").write_text(
        f"# edgedl {EDGEDL_VERSION} on {target.name}: pip install -r requirements.txt (inside this folder)\n"
        + "\n".join(requirements) + "\n"
    )  # fmt: skip
    model = report["model"] if report else chosen[0]["name"]
    (staging / "README.md").write_text(_readme(target, name, model, artifacts, samples, eval_src is not None,
                                               key is not None, packing.wheels_for))  # fmt: skip
    files = {p.relative_to(staging).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
             for p in sorted(staging.rglob("*")) if p.is_file()}  # fmt: skip
    original = next((v for v in report["variants"] if v["format"] == "keras"), None) if report else None
    manifest = make_manifest(
        target=target.name,
        target_description=target.description,
        edgedl_version=EDGEDL_VERSION,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        model=model,
        task=artifacts[0]["task"],
        why=why,
        artifacts=artifacts,
        reference={"variant": original["name"], "metrics": original["metrics"]} if original else None,
        eval=f"data/{EVAL_FILE}" if eval_src else None,
        samples=[f"samples/{s}" for s in samples],
        requirements=requirements,
        files=files,
        **({"wheels_for": vars(packing.wheels_for)} if packing.wheels_for else {}),
    )
    write_json(staging / MANIFEST, manifest)
    if key is not None:
        sign_file(staging / MANIFEST, key)
    _tar(staging, out)
    return BundleResult(out, target.name, tuple(a["variant"] for a in artifacts), why, len(files) + 1 + (key is not None),
                        out.stat().st_size)  # fmt: skip
