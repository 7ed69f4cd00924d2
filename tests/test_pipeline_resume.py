"""Resumes that keep their settings: a training killed mid-way resumes only with the settings it was started
with; other settings start afresh and say so; a damaged model.keras is trained again; --fresh clears the
folder. The kill is sent when the training says an epoch is done (an event), not after a sleep."""
import json
import signal
import subprocess
import sys

from tests.conftest import ROOT, run_cli

TRAIN = ["--model", "cnn", "--train-size", "2000", "--batch-size", "64", "--quiet"]


def _killed_mid_training(out, epochs: int, after: int) -> None:
    """``edgedl train`` into ``out``, killed (SIGKILL) when it says epoch ``after`` is done (its line is the
    event: the backup of that epoch is written before it)."""
    argv = [a for a in TRAIN if a != "--quiet"]  # its epoch lines on stderr
    proc = subprocess.Popen([sys.executable, "-m", "edgedl.cli", "train", *argv, "--epochs", str(epochs), "--out",
                             str(out)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        for line in proc.stderr:
            if f"train: epoch {after}/{epochs}" in line:
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.wait(timeout=600)
    assert proc.returncode == -signal.SIGKILL, "the training ended before it could be killed mid-way"


def _steps(out) -> dict:
    """The step log of the run that finished (a killed run's stays beside it)."""
    logs = [json.loads(f.read_text()) for f in (out / "backup_steps").glob("*.json")]
    return next(log for log in logs if log.get("done"))


def test_a_killed_training_resumes_with_its_settings_and_starts_afresh_with_others(tmp_path):
    same, other = tmp_path / "same", tmp_path / "other"
    for out in (same, other):
        _killed_mid_training(out, epochs=8, after=2)  # killed in the third epoch
        assert "Epoch 2/8" in (out / "log.txt").read_text()  # the killed run's log is in its folder
    resumed = run_cli("edgedl", "train", *TRAIN, "--epochs", "8", "--out", str(same))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "afresh" not in (same / "log.txt").read_text() and _steps(same)["first"] > 0  # on from its backup

    changed = run_cli("edgedl", "train", *TRAIN, "--epochs", "2", "--out", str(other))
    assert changed.returncode == 0, changed.stderr[-2000:]
    said = " ".join((changed.stderr + (other / "log.txt").read_text()).split())  # --quiet: its lines in the log
    assert "had other settings (train.epochs 8 → 2); starting afresh" in said and "taking over" in said
    assert _steps(other)["first"] == 0
    history = json.loads((other / "history.json").read_text())
    assert history["config"]["epochs"] == 2 and len(history["history"]["loss"]) == 2


def test_a_damaged_model_is_trained_again_and_fresh_clears_the_folder(tmp_path):
    out = tmp_path / "run"
    args = ["edgedl", "pipeline", *TRAIN, "--epochs", "1", "--variants", "tflite_float32", "--runs", "5", "--warmup",
            "1", "--out", str(out)]  # fmt: skip
    assert run_cli(*args).returncode == 0
    model = out / "model.keras"
    model.write_bytes(model.read_bytes()[:1000])  # a copy cut short
    (out / "artifacts" / ".onnx_int8.onnx.abcd1234.tmp").mkdir()  # and what a killed export leaves
    (out / ".report.abcd1234.tmp.json").write_text("{")
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "removed 2 temporary file(s) a stopped run left" in again.stderr
    assert not [p for p in out.rglob(".*") if p.name != "log.txt"]  # nor a temporary folder of its own
    assert "training it again" in (out / "log.txt").read_text() and model.stat().st_size > 10_000
    cleared = run_cli(*args, "--fresh")
    assert cleared.returncode == 0
    assert "--fresh: removed" in cleared.stderr and "reusing" not in (out / "log.txt").read_text()
