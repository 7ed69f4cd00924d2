"""What a long command shows on the terminal, and what goes to the run's ``log.txt``.

TensorFlow, absl, the TFLite converter and Keras write to file descriptors 1 and 2, from C++ as well as
Python (``failed call to cuInit`` on a machine without a GPU, ``fully_quantize: 0, …``, Keras's epoch bars,
"Gradients do not exist" warnings). ``Terminal.capture`` points both descriptors at a log file for the
length of a command, before TensorFlow is imported, and gives edgedl's own output (its step lines, one
progress display, the results table) the terminal's descriptors back through two rich consoles. At the end
the log joins the run folder as ``log.txt`` and the warnings in it are summarised in one line.

``--verbose`` captures nothing (everything on the terminal as it comes); ``--quiet`` shows only the
results, the summary and errors.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Iterator, Optional

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

# Lines of TensorFlow's and the converters' output that say nothing a user can act on; the rest of the
# warnings in the log are counted in the end-of-run summary.
KNOWN_NOISE = (
    "failed call to cuInit",  # no GPU here: expected
    "Could not find cuda drivers",
    "Unable to register cu",
    "oneDNN custom operations are on",
    "This TensorFlow binary is optimized",
    "rebuild TensorFlow with the appropriate compiler flags",
    "fully_quantize:",  # the converter's settings, once per int8 conversion
    "Statistics for quantized inputs were expected",
    # Cluster-preserving QAT trains the centroids; the kernels it derives the weights from get no gradient.
    "Gradients do not exist for variables",
    "Please consider to run pre-processing before quantization",  # onnxruntime, on dynamic MatMul-only quantization
    "Created TensorFlow Lite XNNPACK delegate",
    "before absl::InitializeLog() is called",
    "Compiled the loaded model, but the compiled metrics",
    "No training configuration found in save file",
    "tf.lite.TFLiteConverter.from_keras_model",  # advice about converting from SavedModel
    "please use tf.lite.TFLiteConverter",
)
WARNING = re.compile(r"^[WE]\d{4} |^WARNING|Warning:")


def _terminal_width(fd: int) -> Optional[int]:
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        return int(columns)
    try:
        return os.get_terminal_size(fd).columns
    except OSError:
        return None


def _console(fd: int) -> Console:
    """A rich console on a duplicate of ``fd``: as wide as its terminal, or unwrapped when it is a file."""
    stream = os.fdopen(os.dup(fd), "w", buffering=1, encoding="utf-8", errors="backslashreplace")
    width = _terminal_width(fd) if stream.isatty() else None
    if width is None and not stream.isatty():
        return Console(file=stream, width=1000, soft_wrap=True, highlight=False)  # a log: lines as they are
    return Console(file=stream, width=width, highlight=False)


def summarize(log_text: str, limit: int = 3) -> tuple[int, list[tuple[str, int]]]:
    """The warnings of a log that are not known noise: how many, and the most frequent kinds (numbers and
    quoted names blanked so that one message repeated for many layers counts as one kind)."""
    kinds: Counter = Counter()
    for line in log_text.splitlines():
        if WARNING.search(line) and not any(noise in line for noise in KNOWN_NOISE):
            text = re.sub(r"^[WE]\d{4} .*?\] |^WARNING:\w+:", "", line.strip())  # absl's and logging's prefixes
            kinds[re.sub(r"'[^']*'|\d+", "…", text)[:120]] += 1
    return sum(kinds.values()), kinds.most_common(limit)


LOCK_NAME = ".edgedl-lock"  # the run folder's lock (``edgedl.cli.runlock``), not the run's output


def _remove_if_empty(out_dir: Path, existed: bool) -> None:
    """A failed run leaves no empty folder behind that it created (its error is on the terminal)."""
    if not existed and out_dir.is_dir() and not any(out_dir.iterdir()):
        out_dir.rmdir()


class Steps:
    """One progress display for a whole command: the stage, steps done of the total, time left."""

    def __init__(self, console: Console, enabled: bool):
        self._progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(),
            TextColumn("steps, left"), TimeRemainingColumn(compact=True), console=console, transient=True,
            redirect_stdout=False, redirect_stderr=False,  # Python's own streams stay on the log
            disable=not enabled,
        )  # fmt: skip
        self._task = self._progress.add_task("starting", total=None)
        self._under_way = False

    def plan(self, steps: int) -> None:
        """Add ``steps`` to the total (a search adds its candidates as it goes)."""
        task = self._progress.tasks[0]
        self._progress.update(self._task, total=(task.total or 0) + steps)

    def begin(self, text: str) -> None:
        """The step under way is done; ``text`` is the next one."""
        if self._under_way:
            self._progress.advance(self._task, 1)
        self._under_way = True
        self._progress.update(self._task, description=text)

    def finish(self) -> None:
        """Take the display off the terminal (before the results are printed)."""
        self._progress.stop()

    def __enter__(self) -> "Steps":
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()


class Terminal:
    """edgedl's output: ``out`` for results (stdout), ``err`` for steps and notes (stderr), ``steps`` for progress.

    Without ``capture`` it writes to the process's own streams and captures nothing (a library call, a test).
    """

    def __init__(self, quiet: bool = False, verbose: bool = False):
        self.quiet, self.verbose = quiet, verbose
        self.out = Console(highlight=False, soft_wrap=not sys.stdout.isatty())
        self.err = Console(stderr=True, highlight=False, soft_wrap=not sys.stderr.isatty())
        self.steps = Steps(self.err, enabled=False)
        self.log_path: Optional[Path] = None

    def say(self, message: str) -> None:
        """A step line: on the terminal (not with --quiet), and in the log."""
        if self.log_path is not None:
            print(f"edgedl {Text.from_markup(message).plain}", file=sys.stderr, flush=True)
        if not self.quiet:
            self.err.print(f"[bold cyan]edgedl[/] {message}")

    def step(self, message: str) -> None:
        """A step line that also moves the progress display on (``export: NAME``, ``benchmark: NAME``)."""
        self.say(message)
        self.steps.begin(Text.from_markup(message).plain.split(" (")[0][:48])

    def epochs(self, total: int, what: str):
        """A Keras epoch callback ``(epoch, logs)`` that moves the progress display on, epoch by epoch."""
        self.steps.plan(total)

        def on_epoch(epoch: int, logs: dict) -> None:
            figures = "".join(f", {k} {v:.4g}" for k, v in logs.items() if k != "lr" and isinstance(v, float))
            self.say(f"{what}: epoch {epoch + 1}/{total}{figures}")
            self.steps.begin(f"{what}: epoch {epoch + 1}/{total}")

        return on_epoch

    def note(self, message: str) -> None:
        """A line the user must see even with --quiet (a failure, the summary)."""
        if self.log_path is not None:
            print(f"edgedl {Text.from_markup(message).plain}", file=sys.stderr, flush=True)
        self.err.print(f"[bold cyan]edgedl[/] {message}")

    @contextlib.contextmanager
    def capture(self, out_dir: Path, header: str, log_name: str = "log.txt") -> Iterator["Terminal"]:
        """Run a command with descriptors 1 and 2 appended to ``out_dir/log_name`` from its first line (a run
        killed half-way keeps its log there, and leaves nothing elsewhere). A failed run that created
        ``out_dir`` and left nothing else in it removes it."""
        out_dir = Path(out_dir)
        existed = out_dir.exists() and any(p.name != LOCK_NAME for p in out_dir.iterdir())
        if self.verbose:  # everything on the terminal as it comes
            try:
                with self._steps(enabled=False):
                    yield self
            except BaseException:
                _remove_if_empty(out_dir, existed)
                raise
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = out_dir / log_name
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        start = os.lseek(fd, 0, os.SEEK_END)  # this run's part of the log begins here
        saved = os.dup(1), os.dup(2)
        self.out, self.err = _console(saved[0]), _console(saved[1])
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(fd, 1), os.dup2(fd, 2)
        os.close(fd)
        streams = sys.stdout, sys.stderr  # Python's writers too (Keras's bars, warnings), whatever they were
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
        print(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} {header}", flush=True)
        failed = True
        try:
            with self._steps(enabled=not self.quiet):
                yield self
            failed = False
        finally:
            sys.stdout.close(), sys.stderr.close()  # flushed; descriptors 1 and 2 stay open
            sys.stdout, sys.stderr = streams
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            for fd_ in saved:
                os.close(fd_)
            self._keep_log(start, failed, failed and not existed)

    @contextlib.contextmanager
    def _steps(self, enabled: bool) -> Iterator[None]:
        self.steps = Steps(self.err, enabled=enabled and self.err.is_terminal)
        with self.steps:
            yield

    def _keep_log(self, start: int, failed: bool, created: bool) -> None:
        where, self.log_path = self.log_path, None
        if created:  # a failed run that made nothing but its log leaves no folder behind
            if not any(p != where and p.name != LOCK_NAME for p in where.parent.iterdir()):
                where.unlink(missing_ok=True)
                _remove_if_empty(where.parent, existed=False)
            return
        if failed:  # the error is the one line the user gets; the log is there for whoever looks
            return
        with open(where, encoding="utf-8", errors="replace") as log:
            log.seek(start)
            text = log.read()
        count, kinds = summarize(text)
        if count:
            shown = "; ".join(f"{kind} (×{n})" if n > 1 else kind for kind, n in kinds)
            self.err.print(f"[bold cyan]edgedl[/] [yellow]{count} warning(s)[/] from TensorFlow and the converters, "
                           f"in {where}: {shown}", highlight=False, soft_wrap=True)  # fmt: skip
        elif not self.quiet:
            self.err.print(f"[bold cyan]edgedl[/] TensorFlow's and the converters' output: {where}", highlight=False)
