"""benchmarks.training reads what 'edgedl train' records (fast tier: the records are written here)."""
import json

import pytest

from benchmarks.training import main, row
from runtime.errors import UserError


def _run(folder, kind, workers, seconds, attempts, steps):
    folder.mkdir()
    distribution = {"kind": kind, "workers": workers, "replicas": workers, "global_batch": 128}
    run = {"attempts": attempts, "steps_run": steps, "epoch_seconds": seconds}
    (folder / "train_config.json").write_text(json.dumps({"distribution": distribution, "run": run}))
    history = {"loss": [0.5, 0.2], "val_loss": [0.3, 0.1], "val_accuracy": [0.9, 0.9612]}
    (folder / "history.json").write_text(json.dumps({"history": history}))
    return folder


def test_each_run_is_a_row_of_its_own_records(tmp_path, capsys):
    one = _run(tmp_path / "one", "default", 1, [4.0, 3.0, 9.0], 1, 186)
    two = _run(tmp_path / "two", "multiworker", 2, [6.5, 6.1], 2, 228)
    assert row(one)[1:] == ("default", "1", "1", "128", "4.00", "accuracy 0.9612", "186")
    assert row(two)[5:] == ("6.30", "accuracy 0.9612", "228 (2 attempts)")
    assert main([str(one), str(two)]) == 0
    out = capsys.readouterr().out
    assert "multiworker" in out and "228 (2 attempts)" in out


def test_a_folder_without_records_is_named(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        row(tmp_path)
