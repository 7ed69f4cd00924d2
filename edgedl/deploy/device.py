"""``edgedl deploy``: measure a run's variants on the board itself, over SSH, and keep its figures in the run.

    edgedl deploy runs/cnn --host pi@pi5.local --target rpi-arm64

The steps, each bounded and each failure one line naming it:

1. **probe**: what the board is (``board_probe.py``, run by its own Python): architecture, OS, Python, venv
   support, free disk and memory; checked against the target before anything is copied.
2. **bundle**: the candidates (named, or every variant the target runs within the budget) not yet measured on
   this board as they are now (same artifact sha256), packed by ``edgedl bundle``.
3. **copy** and **unpack** into the board's folder (``~/edgedl`` by default), under a temporary name first.
4. **install** into a virtual environment named by what it holds (the requirements and the runtime wheel), so
   a later deployment with the same needs reuses it; offline from the bundle's wheels when it has them.
5. **bench** each candidate there with ``edgedl-run bench`` on the bundled evaluation data, and **fetch** its
   JSON; a bench that fails brings its last lines home as the row's error.
6. **merge** the rows into the run's ``report.json`` (``runtime.devices``) and its pages.
"""
from __future__ import annotations

import hashlib
import json
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from runtime.devices import measured, with_device_rows
from runtime.errors import UserError
from runtime.files import sha256_file
from runtime.report import is_ok, read_report, validate_report
from runtime.runfolder import resolve, run_report

from .bundle import bundle, runnable
from .ssh import Ssh, last_line
from .wheels import Platform
from .targets import Target, get_target

PROBE = Path(__file__).with_name("board_probe.py")
MIN_PYTHON = (3, 9)
VENV_BYTES = 400 << 20  # numpy, an interpreter and pip's cache: what a fresh environment takes, with room


@dataclass(frozen=True)
class Steps:
    """Each step's time limit, in seconds."""

    probe: float = 60
    copy: float = 900
    install: float = 1800
    bench: float = 900


@dataclass(frozen=True)
class DeployResult:
    device: str
    board: dict
    measured: tuple  # names measured this time
    reused: tuple  # names measured before, with the same artifact
    failed: tuple  # (name, reason)
    report: dict


def probe(ssh: Ssh, folder: str, python: str, steps: Steps) -> dict:
    with open(PROBE, "rb") as script:
        proc = ssh.run("probe", f"{python} - {shlex.quote(folder)}", steps.probe, stdin=script, check=False)
    err = proc.stderr.decode("utf-8", "replace")
    if proc.returncode == 127 or "not found" in err:
        raise UserError(f"deploy: probe: no {python} on {ssh.host}; install Python 3.9 or later there (apt install "
                        "python3 python3-venv), or name it with --python")  # fmt: skip
    try:
        found = json.loads(proc.stdout.decode("utf-8", "replace").strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise UserError(f"deploy: probe: {python} on {ssh.host} did not answer ({last_line(err) or 'no output'}); "
                        "it must be Python 3.9 or later") from None  # fmt: skip
    if found.get("folder_error"):
        raise UserError(f"deploy: probe: cannot use the folder on {ssh.host} ({found['folder_error']}); give "
                        "another with --remote-dir")  # fmt: skip
    return found


def check_board(board: dict, target: Target, host: str, needed: int) -> None:
    """The board is what the target is made for, has a Python that makes environments, and room."""
    if target.machines and board["machine"] not in target.machines:
        raise UserError(f"deploy: {host} is {board['machine']} ({board['os']}), not what {target.name} runs on "
                        f"({', '.join(target.machines)}); choose --target linux, or the board's target")  # fmt: skip
    version = tuple(int(p) for p in board["python"].split(".")[:2])
    if version < MIN_PYTHON:
        raise UserError(f"deploy: {host} has Python {board['python']}; edgedl-run needs 3.9 or later (give a newer "
                        "one with --python)")  # fmt: skip
    if not board.get("venv"):
        raise UserError(f"deploy: {host}'s Python cannot make virtual environments; install python3-venv there "
                        "(sudo apt install python3-venv)")  # fmt: skip
    if board.get("free_bytes", 0) < needed:
        raise UserError(f"deploy: {host} has {board['free_bytes'] / 2**20:,.0f} MiB free in {board['folder']}, "
                        f"about {needed / 2**20:,.0f} MiB are needed; free some space there, or give another "
                        "--remote-dir")  # fmt: skip


def candidates(report: dict, run_dir: Path, target: Target, names: Sequence[str], within: Optional[float]) -> list:
    """The variants to measure: those named (each must run on the target), or every one the target runs whose
    metric is within ``within`` (default: the task's budget) of the original."""
    from benchmarks.select import default_budget

    runs = runnable(report, run_dir, target)
    if names:
        by_name = {v["name"]: v for v in runs}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise UserError(f"deploy: {', '.join(missing)}: not a variant of this run that {target.name} runs; "
                            f"it runs: {', '.join(by_name) or 'none'}")  # fmt: skip
        return [by_name[n] for n in names]
    budget = default_budget(report) if within is None else within
    chosen = [v for v in runs if v.get("metric_delta") is None or -v["metric_delta"] <= budget + 1e-9]
    if not chosen:
        raise UserError(f"deploy: no variant of this run that {target.name} runs is within {budget} of the "
                        "original; name them with --variants, or give a larger --all-within")  # fmt: skip
    return chosen


def _venv_name(manifest: dict) -> str:
    """An environment named by what it holds: the bundle's requirements, the runtime wheel's by its sha256."""
    files = manifest["files"]
    lines = [files[line[2:]]["sha256"] if line.startswith("./") else line for line in manifest["requirements"]]
    return "venv-" + hashlib.sha256("\n".join(lines).encode()).hexdigest()[:12]


def _manifest_of(archive: Path, name: str) -> dict:
    """The manifest of the bundle just made, read from the archive."""
    import tarfile

    with tarfile.open(archive) as tar:
        return json.loads(tar.extractfile(f"{name}/manifest.json").read())


def _install_command(name: str, venv: str, python: str, offline: bool) -> str:
    index = "--no-index --find-links wheels" if offline else ""
    return (f"cd {name} && if [ ! -f ../{venv}/.edgedl-installed ]; then "
            f"rm -rf ../{venv} && {python} -m venv ../{venv} && "
            f"../{venv}/bin/python -m pip install --disable-pip-version-check -q {index} -r requirements.txt && "
            f"touch ../{venv}/.edgedl-installed && echo installed; else echo reused; fi")  # fmt: skip


def deploy(run: Path, ssh: Ssh, target_name: str, device: Optional[str] = None, names: Sequence[str] = (),
           within: Optional[float] = None, folder: str = "edgedl", python: str = "python3", runs: int = 100,
           warmup: int = 10, clean: bool = False, steps: Steps = Steps(), say: Callable[[str], None] = print,
           work: Optional[Path] = None, offline: bool = False) -> DeployResult:  # fmt: skip
    """Measure the run's candidates on the board ``ssh`` reaches and merge the rows into the run's report."""
    target = get_target(target_name)
    report_path, run_dir = run_report(run)
    report = read_report(report_path)
    device = device or ssh.hostname
    chosen = candidates(report, run_dir, target, names, within)
    shas = {v["name"]: sha256_file(resolve(v["path"], run_dir)) for v in chosen}
    before = measured(report, device)
    todo = [v for v in chosen if shas[v["name"]] not in before or before[shas[v["name"]]]["name"] != v["name"]]
    reused = tuple(v["name"] for v in chosen if v not in todo)
    if reused:
        say(f"measured on {device} before, with the same artifact: {', '.join(reused)}")
    board = probe(ssh, folder, python, steps)
    say(f"{device}: {board['cpu']} ({board['machine']}), {board['os']}, Python {board['python']}, "
        f"{board['free_bytes'] / 2**30:.1f} GiB free in {board['folder']}")  # fmt: skip
    sizes = [resolve(v["path"], run_dir).stat().st_size for v in todo]
    check_board(board, target, ssh.host, 3 * sum(sizes) + (VENV_BYTES if todo else 0))
    largest = max(sizes, default=0)
    memory = board.get("memory_available")
    if memory and todo and memory < (200 << 20) + 4 * largest:  # the interpreter, numpy, the model and its arena
        say(f"note: {device} has {memory / 2**20:,.0f} MiB of memory available; the largest candidate "
            f"({largest / 2**20:,.1f} MiB) may not fit")  # fmt: skip
    ledger = Ledger(report, report_path, device, target.name)
    failed = []
    if todo:
        wheels_for = Platform(board["machine"], ".".join(board["python"].split(".")[:2]), board.get("glibc") or "2.17") \
            if offline else None  # fmt: skip
        failed = _measure(run_dir, ssh, target, todo, shas, board, python, runs, warmup, steps, say, work or run_dir,
                          wheels_for, ledger.keep)  # fmt: skip
    if clean:
        ssh.run("clean", f"rm -rf {shlex.quote(board['folder'])}", steps.probe)
        say(f"removed {board['folder']} from {device}")
    if ledger.rows:
        publish_devices(ledger.report, run_dir)
    return DeployResult(device, board, tuple(r["name"] for r in ledger.rows if is_ok(r)), reused, tuple(failed),
                        ledger.report)  # fmt: skip


class Ledger:
    """The run's report with each row the board measured merged in and written at once (under the run's lock):
    a deployment stopped half way keeps what it measured, and the next one goes on from there."""

    def __init__(self, report: dict, path: Path, device: str, target: str):
        self.report, self.path, self.device, self.target, self.rows = report, path, device, target, []

    def keep(self, row: dict, machine: Optional[dict]) -> None:
        from runtime.files import write_json

        merged = with_device_rows(self.report, self.device, self.target, machine, [row],
                                  time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))  # fmt: skip
        validate_report(json.loads(json.dumps(merged)), self.path)
        write_json(self.path, merged)
        self.report = merged
        self.rows.append(row)


def _measure(run_dir: Path, ssh: Ssh, target: Target, todo: list, shas: dict, board: dict, python: str, runs: int,
             warmup: int, steps: Steps, say, work: Path, wheels_for: Optional[Platform], keep) -> list:  # fmt: skip
    """Bundle, copy, install and bench ``todo`` on the board, each row handed to ``keep`` with the board's
    machine record as it comes; the failures, (name, reason)."""
    import shutil

    key = hashlib.sha256(json.dumps([sorted(shas.items()), wheels_for is not None]).encode()).hexdigest()[:12]
    name = f"bundle-{key}"
    stage = work / ".edgedl-tmp" / f"deploy-{key}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        if wheels_for is not None:
            say(f"fetching every wheel {ssh.host} needs ({wheels_for.machine}, Python {wheels_for.python})")
        made = bundle(run_dir, target.name, stage / f"{name}.tar.gz", [v["name"] for v in todo],
                      wheels_for=wheels_for)  # fmt: skip
        manifest = _manifest_of(made.path, name)
        venv = _venv_name(manifest)
        offline = sum(f.startswith("wheels/") for f in manifest["files"]) > 1  # packed with 'edgedl bundle --wheels'
        artifacts = {a["variant"]: a for a in manifest["artifacts"]}
        remote = shlex.quote(board["folder"])
        if name not in board.get("entries", []):
            say(f"copying {made.bytes / 2**20:.1f} MiB to {ssh.host}:{board['folder']}/{name}")
            with open(made.path, "rb") as archive:
                ssh.run("copy", f"cd {remote} && cat > .{name}.part && rm -rf .unpack-{name} && mkdir .unpack-{name} "
                                f"&& tar xzf .{name}.part -C .unpack-{name} && rm -rf {name} && "
                                f"mv .unpack-{name}/{name} {name} && rm -rf .unpack-{name} .{name}.part",
                        steps.copy, stdin=archive)  # fmt: skip
        say(f"installing into {venv} on {ssh.host} (reused when it holds the same)")
        proc = ssh.run("install", f"cd {remote} && " + _install_command(name, venv, python, offline), steps.install,
                       check=False)  # fmt: skip
        if proc.returncode != 0:
            raise UserError(f"deploy: install on {ssh.host} failed: {last_line(proc.stderr.decode('utf-8', 'replace'))}"
                            f"{' (the board may have no package index: bundle its wheels with --wheels)' if not offline else ''}")  # fmt: skip
        failed, machine = [], None
        for v in todo:
            artifact = artifacts[v["name"]]
            say(f"measuring {v['name']} on {ssh.host}")
            out = f"../results-{name}-{v['name']}.json"
            bench = (f"cd {remote}/{name} && ../{venv}/bin/edgedl-run bench {shlex.quote(artifact['path'])} "
                     f"--runs {runs} --warmup {warmup} --json {out} >/dev/null && cat {out} && rm -f {out}")  # fmt: skip
            proc = ssh.run(f"bench {v['name']}", bench, steps.bench, check=False)
            if proc.returncode != 0:
                why = f"took more than {steps.bench:.0f} s (--step-timeout)" if proc.returncode == 124 else \
                    last_line(proc.stderr.decode("utf-8", "replace")) or f"exit {proc.returncode}"  # fmt: skip
                failed.append((v["name"], why))
                keep(_failed_row(v, shas[v["name"]], why), machine)
                say(f"bench {v['name']} on {ssh.host} failed: {why}")
                continue
            try:
                doc = validate_report(json.loads(proc.stdout.decode("utf-8", "replace")), f"{ssh.host}: {out}")
            except (ValueError, UserError) as exc:
                failed.append((v["name"], str(exc)))
                keep(_failed_row(v, shas[v["name"]], f"its result could not be read ({exc})"), machine)
                continue
            machine = doc["machine"]
            keep({**doc["variants"][0], "name": v["name"], "path": v["path"], "device_path": artifact["path"],
                  "artifact_sha256": shas[v["name"]], "techniques": v.get("techniques", [])}, machine)  # fmt: skip
        return failed
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _failed_row(v: dict, sha: str, why: str) -> dict:
    from runtime.report import failed_record

    return {**failed_record(v["name"], v["format"], v["precision"], tuple(v.get("techniques", [])), why),
            "path": v["path"], "artifact_sha256": sha}  # fmt: skip


def publish_devices(report: dict, run_dir: Path) -> None:
    """The run's pages, with the device's rows."""
    from benchmarks.render import render_reports

    render_reports([report], [run_dir], run_dir / "report")
