"""One writer per run folder.

``OUT/.edgedl-lock`` names the run that holds the folder: its process id,
the start time of that process (a reused id is not mistaken for it), host,
start time and command. A second run into the folder is refused in one line
naming the holder; a lock whose holder is gone (same host, the process no
longer there) is taken over with a line. A run on another host cannot be
checked from here and is taken to be alive: if it is gone, delete the lock.
The workers a ``--workers`` launcher starts write under its lock (they find
its path in ``EDGEDL_RUN_LOCK``), as do the other workers of a cluster: the
chief holds it.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

from runtime.errors import UserError

from ..terminal import LOCK_NAME

LOCK = LOCK_NAME
ENV = "EDGEDL_RUN_LOCK"


def _process_start(pid: int) -> Optional[str]:
    """When process ``pid`` started, in clock ticks since boot (Linux ``/proc``); None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: after the command name, which may hold spaces


def _alive(holder: dict) -> bool:
    if holder.get("host") != socket.gethostname():
        return True  # not checkable from here
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    started = holder.get("process_start")
    return started is None or _process_start(pid) in (None, started)


def _read(path: Path) -> Optional[dict]:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _shown(holder: dict) -> str:
    return (f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('started')}: "
            f"{holder.get('command', '?')}")  # fmt: skip


def _say(line: str) -> None:
    print(f"edgedl: {line}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def run_lock(out: Path, command: str, say: Callable[[str], None] = _say, clock=time.time) -> Iterator[Path]:
    """Hold ``out``'s lock while the block runs (see the module's text); yields the lock's path."""
    out = Path(out)
    path = out / LOCK
    if os.environ.get(ENV) == str(path.resolve()):  # a worker of the run that holds it
        yield path
        return
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "process_start": _process_start(os.getpid()), "host": socket.gethostname(),
          "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(clock())), "command": command}  # fmt: skip
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read(path)
            if holder is None:  # being written this instant, or damaged: look again, then take it
                time.sleep(0.05)
                holder = _read(path) or {}
            if holder and _alive(holder):
                other = "" if holder.get("host") == me["host"] else \
                    f"; if that run is gone, delete {path}"  # fmt: skip
                raise UserError(f"{out} is in use by another run ({_shown(holder)}); wait for it to end, or give "
                                f"another --out{other}")  # fmt: skip
            say(f"taking over {out} from a run that is gone ({_shown(holder) if holder else 'unreadable lock'})")
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        with os.fdopen(fd, "w") as handle:
            json.dump(me, handle)
        break
    else:
        raise UserError(f"{out}: could not take its lock {path}; another run keeps taking it")
    os.environ[ENV] = str(path.resolve())
    failed = True
    try:
        yield path
        failed = False
    finally:
        os.environ.pop(ENV, None)
        if (_read(path) or {}).get("pid") == me["pid"]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        if created and failed:  # a run that failed before it made anything leaves no folder (its log only)
            with contextlib.suppress(OSError):
                if all(p.name.startswith("log") and p.suffix == ".txt" for p in out.iterdir()):
                    for p in out.iterdir():
                        p.unlink()
                    out.rmdir()


# What a run folder holds that a later run may reuse: ``--fresh`` removes it first.
REUSABLE = ("model.keras", "train_config.json", "history.json", "backup", "backup_steps", "backup_settings.json",
            "baseline", "compressed", "artifacts", "measurements", "selected", "eval.npz", "report.json", "report")


def fresh(out: Path, say: Callable[[str], None] = _say) -> None:
    """Remove what ``out`` holds of earlier runs (``REUSABLE``), saying how many entries went."""
    import shutil

    gone = [out / name for name in REUSABLE if (out / name).exists() or (out / name).is_symlink()]
    for path in gone:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    if gone:
        say(f"--fresh: removed {len(gone)} earlier results from {out} ({', '.join(p.name for p in gone)})")


TEMPORARY = ".edgedl-tmp"  # the run's temporary files: inside its folder, never the system's


@contextlib.contextmanager
def own_temporary_folder(out: Path, say: Callable[[str], None] = _say) -> Iterator[Path]:
    """The run's temporary files (its own, its measuring processes', the converters') in ``out/.edgedl-tmp``,
    removed at the end; what a killed run left there and beside its files (``runtime.files.clean_leftovers``)
    removed first. Called under the folder's lock."""
    import shutil
    import tempfile

    from runtime.files import clean_leftovers

    folder = out / TEMPORARY
    left = clean_leftovers(out, depth=2) + ([folder] if folder.exists() else [])
    shutil.rmtree(folder, ignore_errors=True)
    if left:
        say(f"removed {len(left)} temporary file(s) a stopped run left in {out}")
    folder.mkdir(parents=True)
    before = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"], tempfile.tempdir = str(folder.resolve()), str(folder.resolve())
    try:
        yield folder
    finally:
        tempfile.tempdir = before[1]
        if before[0] is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = before[0]
        shutil.rmtree(folder, ignore_errors=True)


def owning_out(command):
    """``command(args)`` holding ``args.out``'s lock (the chief of a cluster, or the one process; the other
    workers write under the chief's), after ``--fresh`` cleared it."""

    def run(args) -> int:
        from .inputs import log_name

        inherited = os.environ.get(ENV) == str((Path(args.out) / LOCK).resolve())  # a launcher's worker
        if log_name() != "log.txt" or inherited:
            return command(args)
        with run_lock(args.out, "edgedl " + " ".join(getattr(args, "argv", None) or sys.argv[1:])):
            if getattr(args, "fresh", False):
                fresh(Path(args.out))
            with own_temporary_folder(Path(args.out)):
                return command(args)

    return run
