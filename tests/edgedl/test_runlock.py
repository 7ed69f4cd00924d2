"""One writer per run folder: a second run is refused naming the holder, a lock whose holder is gone is taken
over with a line, and a launcher's workers write under its lock."""
import json
import os
import subprocess
import sys

import pytest

from edgedl.cli.runlock import ENV, LOCK, run_lock
from runtime.errors import UserError
from tests.conftest import ROOT, run_cli

HOLDER = """
import sys
from pathlib import Path
from edgedl.cli.runlock import run_lock
with run_lock(Path(sys.argv[1]), "edgedl pipeline --out held"):
    print("locked", flush=True)
    sys.stdin.read()  # until the test closes our stdin
"""


@pytest.fixture
def holder(tmp_path):
    """A process holding ``tmp_path/run``'s lock until the test lets it go."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "run")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
    assert proc.stdout.readline().strip() == "locked"  # an event, not a sleep
    yield proc
    proc.stdin.close()
    proc.wait(timeout=60)


def test_a_second_run_into_a_held_folder_is_refused_naming_the_holder(holder, tmp_path):
    proc = run_cli("edgedl", "pipeline", "--model", "cnn", "--epochs", "1", "--out", str(tmp_path / "run"))
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert f"is in use by another run (pid {holder.pid} on " in line and "edgedl pipeline --out held" in line
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [LOCK]  # nothing of the refused run
    holder.stdin.close()
    holder.wait(timeout=60)
    assert not (tmp_path / "run" / LOCK).exists()  # released when the holder ended


def test_a_lock_whose_holder_is_gone_is_taken_over_with_a_line(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    out = tmp_path / "run"
    out.mkdir()
    import socket

    (out / LOCK).write_text(json.dumps({"pid": int(gone.stdout), "host": socket.gethostname(),
                                        "started": "2026-01-01 00:00:00", "command": "edgedl train"}))  # fmt: skip
    heard = []
    with run_lock(out, "edgedl pipeline", say=heard.append) as path:
        assert json.loads(path.read_text())["pid"] == os.getpid()
        assert os.environ[ENV] == str(path.resolve())
        with run_lock(out, "a worker of this run", say=heard.append):  # the launcher's workers: its lock
            pass
        assert path.exists()
    assert len(heard) == 1 and heard[0].startswith(f"taking over {out} from a run that is gone (pid {gone.stdout.strip()}")
    assert not (out / LOCK).exists() and ENV not in os.environ


def test_a_lock_held_on_another_host_is_refused_and_says_how_to_clear_it(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "now", "command": "edgedl train"}))
    with pytest.raises(UserError, match=f"pid 1 on elsewhere .*if that run is gone, delete {out / LOCK}"):
        with run_lock(out, "edgedl pipeline"):
            pass
