"""Where training runs, decided without GPUs or a cluster (fast tier: nothing here imports TensorFlow)."""
import argparse
import json

import numpy as np
import pytest

from edgedl.training.cluster import free_ports, launched, restartable, tf_config, without_workers
from edgedl.training.distribute import ArrayBatches, Cluster, choose, pipeline_batches, read_cluster, steps_per_epoch
from runtime.errors import UserError

GPUS = ["/device:GPU:0", "/device:GPU:1", "/device:GPU:2"]


def test_auto_follows_the_devices_and_the_cluster():
    cpu = choose("auto", [])
    assert (cpu.kind, cpu.devices, cpu.mixed_precision, cpu.workers) == ("default", ("/cpu:0",), False, 1)
    one = choose("auto", GPUS[:1])
    assert (one.kind, one.devices, one.mixed_precision) == ("one", ("/device:GPU:0",), True)
    many = choose("auto", GPUS)
    assert (many.kind, len(many.devices), many.mixed_precision) == ("mirrored", 3, True)
    cluster = choose("auto", GPUS, Cluster(workers=4, rank=2))
    assert (cluster.kind, cluster.workers, cluster.rank, len(cluster.devices)) == ("multiworker", 4, 2, 3)


def test_an_explicit_strategy_and_precision_win_over_auto():
    assert choose("one", GPUS).devices == ("/device:GPU:0",)
    assert choose("mirrored", []).devices == ("/cpu:0",)
    assert not choose("auto", GPUS, mixed_precision="off").mixed_precision
    assert choose("auto", [], mixed_precision="on", xla=True).mixed_precision
    assert choose("auto", [], xla=True).xla
    single = choose("mirrored", GPUS, Cluster(workers=2, rank=1))  # one machine asked for, in a cluster
    assert (single.kind, single.workers, single.rank) == ("mirrored", 1, 0)


def test_impossible_choices_are_one_line_errors():
    with pytest.raises(UserError, match="needs a cluster.*TF_CONFIG.*--workers"):
        choose("multiworker", GPUS)
    with pytest.raises(UserError, match="unknown strategy 'tpu'"):
        choose("tpu", [])
    with pytest.raises(UserError, match="--mixed-precision 'maybe'"):
        choose("auto", [], mixed_precision="maybe")


def test_tf_config_gives_each_worker_its_rank_and_the_chief_rank_0():
    assert read_cluster(None) == Cluster(1, 0) and read_cluster("") == Cluster(1, 0)
    addresses = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]
    assert [read_cluster(tf_config(addresses, i)) for i in range(3)] == [Cluster(3, i) for i in range(3)]
    with_chief = {"cluster": {"chief": ["h0:1"], "worker": ["h1:1", "h2:1"]}}
    assert read_cluster(json.dumps({**with_chief, "task": {"type": "chief", "index": 0}})) == Cluster(3, 0)
    assert read_cluster(json.dumps({**with_chief, "task": {"type": "worker", "index": 0}})) == Cluster(3, 1)
    with pytest.raises(UserError, match="TF_CONFIG is not a cluster description"):
        read_cluster("{not json")
    with pytest.raises(UserError, match="task type 'ps'"):
        read_cluster(json.dumps({**with_chief, "task": {"type": "ps", "index": 0}}))


def test_each_input_pipeline_gets_its_own_batches_and_all_of_them_are_used():
    for n, pipelines in ((10, 3), (7, 2), (64, 4)):
        shards = [pipeline_batches(n, i, pipelines) for i in range(pipelines)]
        assert sorted(i for s in shards for i in s) == list(range(n))  # disjoint, and none left out
    assert pipeline_batches(1, 1, 2) == [0]  # fewer batches than workers: each takes what there is


def test_array_batches_pass_over_every_row_once_an_epoch_and_reshuffle():
    x, y = np.arange(100, dtype=np.float32)[:, None], np.arange(100)
    batches = ArrayBatches(x, y, batch_size=16, seed=0)
    assert len(batches) == 6 and steps_per_epoch(batches, replicas=2) == 3
    first = np.concatenate([batches[i][1] for i in range(len(batches))])
    assert len(set(first)) == 96  # whole batches only: 4 rows wait for the next order
    for i in range(len(batches)):
        xb, yb = batches[i]
        np.testing.assert_array_equal(xb[:, 0], yb)  # rows and labels stay paired
    batches.on_epoch_end()
    second = np.concatenate([batches[i][1] for i in range(len(batches))])
    assert not np.array_equal(first, second)  # a new order


def test_the_launcher_runs_the_same_command_in_each_worker_on_free_loopback_ports():
    argv = ["train", "--model", "cnn", "--workers", "2", "--out", "x", "--workers=3"]
    assert without_workers(argv) == ["train", "--model", "cnn", "--out", "x"]
    ports = free_ports(3)
    assert len(set(ports)) == 3 and all(1024 <= p < 65536 for p in ports)
    assert restartable(-9) and restartable(75) and not restartable(2) and not restartable(1)
    with pytest.raises(UserError, match="--workers runs a multi-worker strategy, not --strategy one"):
        launched(argparse.Namespace(workers=2, strategy="one", argv=[], out="x"))
    with pytest.raises(UserError, match="--workers 1: give 2 to 64"):
        launched(argparse.Namespace(workers=1, strategy="auto", argv=[], out="x"))
