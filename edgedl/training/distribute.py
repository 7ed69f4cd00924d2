"""Where training runs, with TensorFlow's own distribution engine: the ``tf.distribute`` strategy of this
process, its input pipeline (``tf.data``, sharded across workers) and the one ``fit`` that training and every
compression stage share (checkpoints every worker keeps, resume, the chief alone writing).

    auto         several workers when TF_CONFIG names a cluster, else every GPU of this machine
                 (one: that GPU), else the CPU
    one          one device: the first GPU, or the CPU
    mirrored     every GPU of this machine, one replica each (the CPU when there is none)
    multiworker  MultiWorkerMirroredStrategy over the cluster TF_CONFIG names (each worker its GPUs, or CPU)

The choice is pure (``choose``) so that it is tested without GPUs or a cluster; ``setup`` makes the strategy
once per process, before TensorFlow runs anything (a multi-worker strategy must come first).
"""
from __future__ import annotations

import functools
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from runtime.errors import UserError

STRATEGIES = ("auto", "one", "mirrored", "multiworker")
MIXED_PRECISION = ("auto", "on", "off")
CHECKPOINT_STEPS = 100  # a backup at least this often (and at every epoch's end when epochs are shorter)


@dataclass(frozen=True)
class Cluster:
    """What TF_CONFIG says of the cluster and of this process's place in it."""

    workers: int = 1
    rank: int = 0  # 0: the chief (the "chief" task, or worker 0 when there is none: TensorFlow's rule)


def read_cluster(text: Optional[str]) -> Cluster:
    """The cluster of a TF_CONFIG value (None or empty: one process)."""
    if not text:
        return Cluster()
    try:
        config = json.loads(text)
        cluster, task = config.get("cluster", {}), config.get("task", {})
        workers = sum(len(cluster.get(kind, [])) for kind in ("chief", "worker"))
        if workers and task.get("type") not in ("chief", "worker"):
            raise ValueError(f"task type {task.get('type')!r} (chief or worker)")
        index = int(task.get("index", 0))
        rank = 0 if task.get("type") == "chief" else index + (1 if cluster.get("chief") else 0)
        return Cluster(max(1, workers), rank)
    except (ValueError, AttributeError, TypeError) as exc:
        raise UserError(f"TF_CONFIG is not a cluster description ({exc}); see the README, 'several machines'") \
            from None


@dataclass(frozen=True)
class Choice:
    """Which strategy, over which devices, and how training computes (recorded in train_config.json)."""

    kind: str  # "default" (the CPU), "one", "mirrored" or "multiworker"
    devices: tuple
    workers: int = 1
    rank: int = 0  # this worker's place in the cluster, 0 for the chief
    mixed_precision: bool = False
    xla: bool = False


def choose(requested: str, gpus: Sequence[str], cluster: Cluster = Cluster(), mixed_precision: str = "auto",
           xla: bool = False) -> Choice:  # fmt: skip
    """The strategy for the request, this machine's GPU names and the cluster (pure: testable anywhere)."""
    if requested not in STRATEGIES:
        raise UserError(f"unknown strategy {requested!r}; choose {', '.join(STRATEGIES)}")
    if mixed_precision not in MIXED_PRECISION:
        raise UserError(f"--mixed-precision {mixed_precision!r}: choose {', '.join(MIXED_PRECISION)}")
    gpus = tuple(gpus)
    if requested == "multiworker" and cluster.workers < 2:
        raise UserError("--strategy multiworker needs a cluster: set TF_CONFIG on every host (README, 'several "
                        "machines'), or run several local workers with --workers N")  # fmt: skip
    kind = requested
    if requested == "auto":
        kind = "multiworker" if cluster.workers > 1 else "mirrored" if len(gpus) > 1 else "one" if gpus else "default"
    devices = gpus[:1] if kind == "one" else gpus
    half = mixed_precision == "on" or (mixed_precision == "auto" and bool(gpus))
    workers = cluster.workers if kind == "multiworker" else 1
    rank = cluster.rank if kind == "multiworker" else 0
    return Choice(kind, devices or ("/cpu:0",), workers, rank, half, xla)


def make_strategy(choice: Choice):
    """The ``tf.distribute`` strategy of ``choice``. One device is a one-replica ``MirroredStrategy``:
    Keras's ``BackupAndRestore`` refuses ``OneDeviceStrategy``."""
    from exporters.tfkeras import tf

    t = tf()
    if choice.kind == "multiworker":
        return t.distribute.MultiWorkerMirroredStrategy()
    if choice.kind in ("one", "mirrored"):
        return t.distribute.MirroredStrategy(devices=list(choice.devices))
    return t.distribute.get_strategy()


class Distribution:
    """The strategy of this process and what it means for training: replicas, the chief, the record."""

    def __init__(self, choice: Choice):
        self.choice = choice
        self.strategy = make_strategy(choice)

    @property
    def replicas(self) -> int:
        return int(self.strategy.num_replicas_in_sync)

    @property
    def is_chief(self) -> bool:
        return bool(self.strategy.extended.should_checkpoint)

    def describe(self, per_replica_batch: int) -> str:
        """Where a run trains, in words: "multiworker strategy, 2 workers, 2 replica(s), global batch 128"."""
        c = self.choice
        workers = f"{c.workers} workers, " if c.workers > 1 else ""
        extras = "".join((", mixed precision" if c.mixed_precision else "", ", XLA" if c.xla else ""))
        return f"{c.kind} strategy, {workers}{self.replicas} replica(s), global batch " \
               f"{per_replica_batch * self.replicas}{extras}"  # fmt: skip

    def record(self, per_replica_batch: int) -> dict:
        """What train_config.json says of where and how the run trained."""
        return {
            **asdict(self.choice),
            "replicas": self.replicas,
            "per_replica_batch": per_replica_batch,
            "global_batch": per_replica_batch * self.replicas,
            "input": f"tf.data: batches sharded across {self.choice.workers} worker(s) by index, prefetched; "
            "the evaluation split is a separate dataset",
        }


_CURRENT: Optional[Distribution] = None


def setup(strategy: str = "auto", mixed_precision: str = "auto", xla: bool = False) -> Distribution:
    """This process's distribution, made once (a second call with another choice is refused)."""
    global _CURRENT
    from exporters.tfkeras import tf

    gpus = [d.name.replace("/physical_device:", "/") for d in tf().config.list_physical_devices("GPU")]
    choice = choose(strategy, gpus, read_cluster(os.environ.get("TF_CONFIG")), mixed_precision, xla)
    if _CURRENT is None:
        _CURRENT = Distribution(choice)
    elif _CURRENT.choice != choice:
        raise UserError(f"this process already trains with {_CURRENT.choice.kind}; start a new one for {choice.kind}")
    return _CURRENT


def current() -> Distribution:
    """The distribution ``setup`` made, or the automatic one."""
    return _CURRENT if _CURRENT is not None else setup()


def barrier() -> None:
    """Wait here until every worker of the cluster is here too (one all-reduce); nothing in one process.
    A worker that ends first would otherwise be reported "unhealthy" to the chief still at work."""
    if _CURRENT is None or _CURRENT.choice.workers < 2:
        return
    from exporters.tfkeras import tf

    t, strategy = tf(), _CURRENT.strategy

    def one():
        return t.constant(1.0)

    def all_of_them():
        return strategy.reduce(t.distribute.ReduceOp.SUM, strategy.run(one), axis=None)

    t.function(all_of_them, autograph=False)()


# -- input --------------------------------------------------------------------------------------------------


class ArrayBatches:
    """Labelled arrays as a sequence of batches, reshuffled every epoch (what a Keras ``Sequence`` is for the
    training streams), so that arrays and streams go through one input pipeline."""

    def __init__(self, x, y, batch_size: int, seed: int):
        self.x, self.y, self.batch_size = x, np.asarray(y), batch_size
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(self.y))

    def __len__(self) -> int:
        return max(1, len(self.y) // self.batch_size)  # whole batches: every replica gets as many rows

    def __getitem__(self, i: int):
        rows = np.sort(self.order[i * self.batch_size : (i + 1) * self.batch_size])
        return self.x[rows], self.y[rows]

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.y))


def batch_source(data, per_replica_batch: int, seed: int):
    """Training data as a sequence of per-replica batches: labelled arrays (a ``Dataset``) are batched here;
    a stream (a Keras ``Sequence``: noisy patches, sequences, two views, a teacher's outputs) already is."""
    from ..data.datasets import Dataset

    return ArrayBatches(data.x, data.y, per_replica_batch, seed) if isinstance(data, Dataset) else data


def input_rate(source, batches: int = 5, clock=time.perf_counter) -> float:
    """Examples per second the input pipeline reads and prepares alone (its first ``batches`` batches): what
    to set beside the training step's rate, to see which of the two a run waits on."""
    count, start = 0, clock()
    for i in range(min(batches, len(source))):
        count += len(_as_tuples(source[i])[1])
    return count / max(clock() - start, 1e-9)


def steps_per_epoch(source, replicas: int) -> int:
    """Optimizer steps in one pass over ``source``: each step takes one batch per replica."""
    return max(1, len(source) // replicas)


def pipeline_batches(n: int, pipeline: int, pipelines: int) -> list:
    """The batch indices of one input pipeline (one per worker): every ``pipelines``-th, so that workers
    never see the same batch; a source with fewer batches than workers gives each all of them."""
    mine = list(range(pipeline, n, pipelines))
    return mine or list(range(n))


def _as_tuples(value):
    """tf.data stacks lists into one tensor; a model's several outputs must stay several."""
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _as_tuples(v) for k, v in value.items()}
    return np.asarray(value)


def dataset_fn(source):
    """``input_context -> tf.data.Dataset`` of this worker's batches, endless (each pass ends with the
    source's ``on_epoch_end``: new noise, a new order), prefetched."""
    from exporters.tfkeras import tf

    t = tf()
    sample = _as_tuples(source[0])
    signature = t.nest.map_structure(lambda a: t.TensorSpec((None, *a.shape[1:]), t.as_dtype(a.dtype)), sample)

    def make(context):
        indices = pipeline_batches(len(source), context.input_pipeline_id, context.num_input_pipelines)

        def batches():
            while True:
                for i in indices:
                    yield _as_tuples(source[i])
                source.on_epoch_end()

        dataset = t.data.Dataset.from_generator(batches, output_signature=signature)
        options = t.data.Options()
        options.experimental_distribute.auto_shard_policy = t.data.experimental.AutoShardPolicy.OFF  # done above
        return dataset.with_options(options).prefetch(t.data.AUTOTUNE)

    return make


def validation_dataset(data, global_batch: int):
    """The evaluation split as its own dataset (never part of a training shard), sharded by data."""
    from exporters.tfkeras import tf

    from ..data.datasets import Dataset

    if data is None:
        return None
    t = tf()
    options = t.data.Options()
    options.experimental_distribute.auto_shard_policy = t.data.experimental.AutoShardPolicy.DATA
    if isinstance(data, Dataset) and hasattr(data.x, "rows"):  # pictures read from files: a batch at a time
        x, y = data.x, np.asarray(data.y)

        def batches():
            for start in range(0, len(y), global_batch):
                yield x[start : start + global_batch], y[start : start + global_batch]

        signature = (t.TensorSpec((None, *x.image_shape), t.float32), t.TensorSpec((None,), t.as_dtype(y.dtype)))
        options.experimental_distribute.auto_shard_policy = t.data.experimental.AutoShardPolicy.OFF
        return t.data.Dataset.from_generator(batches, output_signature=signature).prefetch(2).with_options(options)
    arrays = (data.x, np.asarray(data.y)) if isinstance(data, Dataset) else tuple(data)
    return t.data.Dataset.from_tensor_slices(arrays).batch(global_batch).with_options(options)


# -- training -----------------------------------------------------------------------------------------------


def fit_verbosity() -> int:
    """Keras's progress bar on a terminal, one line per epoch in a log."""
    return 1 if sys.stdout.isatty() else 2


def fit(model, data, *, batch_size: int, epochs: int, seed: int = 0, validation=None, callbacks=(),
        backup: Optional[Path] = None, verbose: Optional[int] = None):  # fmt: skip
    """``model.fit`` under this process's strategy (``model`` built in its scope): ``data`` (a ``Dataset``
    or a ``Sequence`` of per-replica batches) through ``tf.data``, global batch = ``batch_size`` × replicas.
    With ``backup``, every worker checkpoints there (``BackupAndRestore``) and a re-run resumes."""
    from exporters.tfkeras import keras

    dist = current()
    k = keras()
    source = batch_source(data, batch_size, seed)
    steps = steps_per_epoch(source, dist.replicas)
    callbacks = list(callbacks)
    if not model.built:  # a subclassed model (a distiller): BackupAndRestore checkpoints built models only
        model(_as_tuples(source[0])[0], training=False)
    if backup is not None:
        every = "epoch" if steps <= CHECKPOINT_STEPS else CHECKPOINT_STEPS
        callbacks.insert(0, k.callbacks.BackupAndRestore(str(backup), save_freq=every))
        callbacks.append(StepLog(steps_folder(backup), dist.choice.rank))
    return model.fit(
        k.utils.experimental.DatasetCreator(dataset_fn(source)),
        steps_per_epoch=steps,
        validation_data=validation_dataset(validation, batch_size * dist.replicas),
        epochs=epochs,
        callbacks=callbacks,
        verbose=fit_verbosity() if verbose is None else verbose,
    )


def detached(model):
    """``model``'s architecture and weights in variables of no strategy (``model`` itself under the default
    one). Every worker calls it at the same point: reading a synchronised variable (batch-norm statistics)
    reduces across the workers."""
    from .model_io import plain_copy

    return model if current().choice.kind == "default" else plain_copy(model)


@functools.lru_cache(maxsize=None)
def _step_log_class():
    from exporters.tfkeras import keras

    class _StepLog(keras().callbacks.Callback):
        """Writes after every step how far this process took the run: ``<backup>_steps/worker-I-PID.json``
        holds the optimizer step it started at and the last it reached, so that the steps run over every
        attempt (a worker killed and restarted) are counted, not estimated."""

        def __init__(self, folder: Path, worker: int):
            super().__init__()
            folder.mkdir(parents=True, exist_ok=True)
            mine = list(folder.glob(f"worker-{worker}-*.json"))
            if all(json.loads(p.read_text()).get("done") for p in mine):  # a new run, not a resumed one
                for p in mine:
                    p.unlink(missing_ok=True)
            self.path = folder / f"worker-{worker}-{os.getpid()}.json"
            self.worker = worker

        def _write(self, done: bool = False) -> None:
            step = int(self.model.optimizer.iterations.numpy())
            self.first = getattr(self, "first", step)
            record = {"worker": self.worker, "pid": os.getpid(), "first": self.first, "last": step, "done": done}
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(record))
            os.replace(tmp, self.path)

        def on_train_begin(self, logs=None):  # after BackupAndRestore's restore: the step it resumes at
            self._write()

        def on_train_batch_end(self, batch, logs=None):
            self._write()

        def on_train_end(self, logs=None):
            self._write(done=True)

    return _StepLog


def StepLog(folder: Path, worker: int):  # noqa: N802 - a class made on first use (Keras is imported late)
    return _step_log_class()(folder, worker)


def steps_folder(backup: Path) -> Path:
    """Where the ``StepLog`` of a run backed up in ``backup`` writes (beside it: Keras empties ``backup``)."""
    return Path(backup).with_name(Path(backup).name + "_steps")


def steps_run(folder: Path, worker: int = 0) -> dict:
    """Over every attempt of one worker in ``folder`` (see ``StepLog``): attempts and optimizer steps run."""
    records = [json.loads(p.read_text()) for p in sorted(Path(folder).glob(f"worker-{worker}-*.json"))]
    return {"attempts": len(records), "steps_run": sum(r["last"] - r["first"] for r in records)}
