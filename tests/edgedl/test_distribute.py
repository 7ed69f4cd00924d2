"""Training and compression on several workers: local clusters on loopback (``--workers 2``), as TensorFlow's
``MultiWorkerMirroredStrategy`` runs on real ones."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, run_cli

from edgedl.data.datasets import HOLDOUT_FRACTION

EPOCH_ROWS = 4000  # a short epoch: the first 4000 embedded digits, 80 % of them for training
STEPS_PER_EPOCH = int(EPOCH_ROWS * (1 - HOLDOUT_FRACTION)) // 128  # 25 steps of a global batch of 128


def _accuracy(model_path: Path, data) -> float:
    from edgedl.training.model_io import load_keras_model

    model = load_keras_model(model_path)
    return float(np.mean(model.predict(data.x, verbose=0).argmax(-1) == data.y))


@pytest.fixture(scope="module")
def small_npz(tmp_path_factory, mnist):
    """The first EPOCH_ROWS training digits, as a user's .npz (the same data for every run here)."""
    path = tmp_path_factory.mktemp("data") / "train.npz"
    np.savez(path, x=mnist[0].x[:EPOCH_ROWS], y=mnist[0].y[:EPOCH_ROWS])
    return path


def _train(out: Path, *extra: str):
    return run_cli("edgedl", "train", "--model", "cnn", "--epochs", "1", "--out", str(out), "--quiet", *extra)


def test_training_shards_are_disjoint_and_hold_the_training_rows_alone():
    """Two workers' input pipelines over one pass: every training row once, in per-replica batches; the rows
    carry their index, so nothing else (the evaluation split, which is a dataset of its own) is in them."""
    from exporters.tfkeras import tf

    from edgedl.training.distribute import ArrayBatches, dataset_fn

    rows = np.arange(640)
    shards = []
    for worker in range(2):  # each worker its own source, seeded alike (each its own process)
        source = ArrayBatches(np.repeat(rows[:, None].astype(np.float32), 3, axis=1), rows, batch_size=32, seed=0)
        context = tf().distribute.InputContext(num_input_pipelines=2, input_pipeline_id=worker, num_replicas_in_sync=2)
        batches = list(dataset_fn(source)(context).take(len(source) // 2))
        assert all(x.shape == (32, 3) for x, _ in batches)  # per-replica batches
        assert all(np.array_equal(x.numpy()[:, 0], y.numpy()) for x, y in batches)  # inputs with their targets
        shards.append({int(i) for _, y in batches for i in y.numpy()})
    assert not shards[0] & shards[1] and shards[0] | shards[1] == set(rows.tolist())


def test_two_local_workers_train_as_one_process_with_the_same_global_batch(tmp_path, mnist):
    """One epoch of the embedded split; the one-process run takes the same global batch."""
    two, one = tmp_path / "two", tmp_path / "one"
    proc = _train(two, "--batch-size", "64", "--workers", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = _train(one, "--batch-size", "128")
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((two / "train_config.json").read_text())
    assert {k: record["distribution"][k] for k in ("kind", "workers", "replicas", "global_batch")} == \
        {"kind": "multiworker", "workers": 2, "replicas": 2, "global_batch": 128}  # fmt: skip
    assert record["run"]["steps_run"] == len(mnist[0]) // 128
    for worker in (0, 1):  # both finished their part of the run
        (steps,) = (two / "backup_steps").glob(f"worker-{worker}-*.json")
        assert json.loads(steps.read_text())["done"]
    assert (two / "log-worker-1.txt").exists()  # the other worker's output, beside the chief's log.txt
    evaluation = mnist[1]
    a, b = _accuracy(two / "model.keras", evaluation), _accuracy(one / "model.keras", evaluation)
    assert a > 0.85 and abs(a - b) <= 0.01, (a, b)


def test_a_killed_worker_is_restarted_and_the_run_resumes_from_its_backup(tmp_path, small_npz):
    out, epochs = tmp_path / "run", 3
    per_epoch = STEPS_PER_EPOCH
    command = [str(Path(sys.executable).with_name("edgedl")), "train", "--model", "cnn", "--data", str(small_npz),
               "--epochs", str(epochs), "--batch-size", "64", "--out", str(out), "--quiet", "--workers", "2"]  # fmt: skip
    launcher = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    deadline = time.monotonic() + 300
    while killed is None and time.monotonic() < deadline and launcher.poll() is None:
        for path in (out / "backup_steps").glob("worker-1-*.json"):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if record["last"] >= per_epoch * 3 // 2:  # halfway through the second epoch
                os.kill(record["pid"], signal.SIGKILL)
                killed = record
        try:  # wait on the launcher: its end stops the watch as soon as it comes; between, look at the steps again
            launcher.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            pass
    stdout, stderr = launcher.communicate(timeout=600)
    assert killed is not None, stderr[-3000:]
    assert launcher.returncode == 0, stderr[-3000:]
    assert "restarting the 2 workers from their backups" in stderr
    run = json.loads((out / "train_config.json").read_text())["run"]
    one_run = epochs * per_epoch
    assert run["attempts"] == 2 and one_run < run["steps_run"] < 2 * one_run, run
    history = json.loads((out / "history.json").read_text())["history"]
    assert len(history["loss"]) < epochs  # the resumed attempt did not start over at epoch 1


def test_pruning_under_two_workers_reaches_the_requested_sparsity(tmp_path, trained_cnn, small_npz):
    from edgedl.compress._stats import layer_sparsity
    from edgedl.training.model_io import load_keras_model, save_model

    source = tmp_path / "cnn.keras"
    save_model(trained_cnn, source)
    out = tmp_path / "pruned"
    proc = run_cli("edgedl", "compress", str(source), "--technique", "prune", "--sparsity", "0.6", "--epochs", "2",
                   "--data", str(small_npz), "--out", str(out), "--workers", "2")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "compression.json").read_text())
    assert summary["after"]["sparsity"] == pytest.approx(0.6, abs=0.01)
    for name, sparsity in layer_sparsity(load_keras_model(out / "model.keras")).items():
        assert sparsity == pytest.approx(0.6, abs=0.01), name
    assert summary["after"]["accuracy"] > 0.8
    (steps,) = (out / "backup").glob("prune-*_steps/worker-1-*.json")  # the second worker fine-tuned too
    assert json.loads(steps.read_text())["done"]


def test_a_pipeline_on_two_workers_trains_and_compresses_together(tmp_path, small_npz):
    """The other worker repeats the chief's training and compression; the chief alone exports and measures."""
    out = tmp_path / "run"
    proc = run_cli("edgedl", "pipeline", "--model", "cnn", "--data", str(small_npz), "--epochs", "1", "--variants",
                   "prune", "--runs", "5", "--warmup", "1", "--out", str(out), "--quiet", "--workers", "2")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    pruned = {v["name"]: v for v in report["variants"]}["prune_tflite_int8"]
    assert pruned["status"] == "ok" and pruned["sparsity"] == pytest.approx(0.8, abs=0.01)
    assert json.loads((out / "train_config.json").read_text())["distribution"]["replicas"] == 2
    (steps,) = (out / "compressed" / "backup" / "prune").glob("prune-*_steps/worker-1-*.json")
    assert json.loads(steps.read_text())["done"]  # the second worker fine-tuned the pruned model too
    assert "export:" not in (out / "log-worker-1.txt").read_text()  # its log: training alone
    assert "unhealthy" not in (out / "log.txt").read_text()  # the workers ended together


def test_one_device_mixed_precision_and_xla_are_a_gpu_runs_options_recorded_in_its_config(tmp_path, small_npz):
    """On the CPU here: the run goes through, says what it computed with, and saves a float32 model."""
    from edgedl.training.model_io import load_keras_model

    out = tmp_path / "run"
    proc = run_cli("edgedl", "train", "--model", "cnn", "--data", str(small_npz), "--epochs", "1", "--out", str(out),
                   "--quiet", "--strategy", "one", "--mixed-precision", "on", "--xla")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    recorded = json.loads((out / "train_config.json").read_text())["distribution"]
    assert (recorded["kind"], recorded["mixed_precision"], recorded["xla"], recorded["replicas"]) == \
        ("one", True, True, 1)  # fmt: skip
    model = load_keras_model(out / "model.keras")
    assert {w.dtype.name for w in model.weights} == {"float32"} and model.layers[1].dtype_policy.name == "float32"
