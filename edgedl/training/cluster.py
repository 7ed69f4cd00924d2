"""``--workers N``: a cluster of N local processes, as a real cluster runs, on loopback.

Each worker is the same command without ``--workers``, with a TF_CONFIG of its own (all the workers'
loopback addresses and its index); worker 0 is the chief. The chief's output is the command's; the other
workers write theirs to ``OUT/log-worker-I.txt``. A worker that dies (killed, out of memory) stops the others,
and the whole cluster starts again, up to ``restarts`` times: every worker resumes from the backups of the
run (``BackupAndRestore``), as a cluster manager would restart a real cluster's workers.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from runtime.errors import UserError, one_line

from .distribute import read_cluster

POLL_SECONDS = 0.2
STOP_GRACE_SECONDS = 10
WORKER_LOST = 75  # a worker's exit code when it lost a peer (EX_TEMPFAIL): restarting the cluster resumes the run


def lost_peer(exc: BaseException) -> bool:
    """Whether ``exc`` is TensorFlow's word that a peer of the cluster is gone (its collectives aborted)."""
    if not os.environ.get("TF_CONFIG"):
        return False
    from exporters.tfkeras import tf

    errors = tf().errors
    return isinstance(exc, (errors.UnavailableError, errors.AbortedError, errors.DeadlineExceededError))


def restartable(code: int) -> bool:
    """A worker killed by a signal, or one that lost its peer: the cluster restarts from its backups."""
    return code < 0 or code == WORKER_LOST


def free_ports(count: int) -> list:
    """``count`` loopback ports nothing listens on now (the system picks them)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(addresses: Sequence[str], index: int) -> str:
    """The TF_CONFIG of worker ``index`` in a cluster of ``addresses`` (worker 0 is the chief)."""
    return json.dumps({"cluster": {"worker": list(addresses)}, "task": {"type": "worker", "index": index}})


def without_workers(argv: Sequence[str]) -> list:
    """The command line each worker runs: ``argv`` without ``--workers N`` / ``--workers=N``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            out.append(arg)
    return out


def _stop(processes: list) -> None:
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for p in processes:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _start(command: list, workers: int, out: Path) -> list:
    addresses = [f"127.0.0.1:{port}" for port in free_ports(workers)]
    processes = []
    for index in range(workers):
        env = {**os.environ, "TF_CONFIG": tf_config(addresses, index)}
        if index == 0:
            processes.append(subprocess.Popen(command, env=env))
        else:
            with open(out / f"log-worker-{index}.txt", "a", encoding="utf-8") as log:
                processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
    return processes


def launch(argv: Sequence[str], workers: int, out: Path, restarts: int = 3) -> int:
    """Run ``edgedl argv`` (without ``--workers``) as ``workers`` local workers; returns the exit code.

    A worker killed by a signal restarts the cluster (the run resumes from its backups); a worker that
    fails with an error (a bad file, an unknown option) stops it with that worker's exit code."""
    if not 2 <= workers <= 64:
        raise UserError(f"--workers {workers}: give 2 to 64 local workers (1: leave --workers out)")
    if os.environ.get("TF_CONFIG"):
        raise UserError("--workers starts a local cluster of its own: unset TF_CONFIG, or drop --workers")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "edgedl.cli", *without_workers(argv)]
    for attempt in range(restarts + 1):
        processes = _start(command, workers, out)
        try:
            code = _wait(processes)
        finally:
            _stop(processes)
        if code is None:
            return 0
        if not restartable(code):
            return code
        if attempt < restarts:
            why = f"stopped by signal {-code}" if code < 0 else "lost"
            print(f"edgedl: a worker was {why}; restarting the {workers} workers from their backups ({attempt + 1} "
                  f"of {restarts} restarts)", file=sys.stderr)  # fmt: skip
    raise UserError(f"the workers were stopped {restarts + 1} times; giving up (see {out}/log-worker-*.txt)")


def _wait(processes: list):
    """None when every worker succeeded; else a failure's exit code (negative: killed by a signal), a
    restartable one first (the peers of a killed worker fail too)."""
    while True:
        codes = [p.poll() for p in processes]
        failed = sorted((c for c in codes if c not in (None, 0)), key=lambda c: not restartable(c))
        if failed:
            return failed[0]
        if all(c == 0 for c in codes):
            return None
        time.sleep(POLL_SECONDS)


# -- the commands' side ---------------------------------------------------------------------------------


def in_cluster(command):
    """A command that a worker of a cluster runs: the workers end together; losing a peer is one line and
    ``WORKER_LOST``, which the ``--workers`` launcher (or a cluster manager) answers by restarting the workers
    from their backups."""

    def run(args) -> int:
        from .distribute import barrier

        try:
            code = command(args)
            barrier()  # the workers end together, once the chief has written
            return code
        except Exception as exc:  # noqa: BLE001 - only a lost peer is handled here
            if not lost_peer(exc):
                raise
            first = one_line(exc, 160)
            print(f"edgedl: lost a worker of the cluster ({type(exc).__name__}: {first}); restart the workers: "
                  f"they resume from {args.out}", file=sys.stderr)  # fmt: skip
            return WORKER_LOST

    return run


def on_cluster(args) -> bool:
    """Whether the command runs as several workers (``--workers``, or the cluster of TF_CONFIG)."""

    named = read_cluster(os.environ.get("TF_CONFIG")).workers > 1 and args.strategy in ("auto", "multiworker")
    return args.workers is not None or named


def launched(args) -> Optional[int]:
    """With ``--workers N``: the exit code of the same command run as N local workers; else None."""
    if args.workers is None:
        return None
    if args.strategy not in ("auto", "multiworker"):
        raise UserError(f"--workers runs a multi-worker strategy, not --strategy {args.strategy}: drop one of them")
    return launch(args.argv, args.workers, args.out)
