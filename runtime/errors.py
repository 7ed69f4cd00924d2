"""The one exception type that means "the user gave us something wrong", and the helpers that turn a
third-party failure (a missing interpreter, an interpreter's error) into it.

Every floor (runtime, exporters, edgedl, benchmarks) raises it for bad input;
the command-line front ends print its message on one line and exit non-zero,
while any other exception is a bug and keeps its traceback.
"""
import importlib
import re
import tempfile
import textwrap


class UserError(Exception):
    """Bad input: the message names what is wrong and what to do about it."""


def one_line(exc, limit: int = 300, typed: bool = False) -> str:
    """An exception (or a message) as one line for a person: a converter's own ``error: ...`` line when it has one (TFLite's
    run to 90 lines), else the first line that speaks of an error, else the first line; onnxruntime's C++
    signatures and temporary folders dropped, whitespace collapsed, cut at a word (never mid-word) to at most
    ``limit`` characters. ``typed``: the exception's type in front, unless it is a ``UserError``."""
    text = str(exc)
    found = re.search(r"error: ([^\n]+)", text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = found.group(1) if found else next((ln for ln in lines if "error" in ln.lower()), lines[0] if lines else "")
    line = re.sub(r"/onnxruntime_src/\S+ \S.*?\)\s*(?=\S)", "", line)  # "<file>:<line> <C++ signature>) "
    line = _TEMPORARY.sub(lambda m: m.group("name"), line)  # a temporary file is named by its own name
    line = " ".join(line.split())
    if not line:
        return type(exc).__name__
    if typed and isinstance(exc, BaseException) and not isinstance(exc, UserError):
        line = f"{type(exc).__name__}: {line}"
    return line if len(line) <= limit else textwrap.shorten(line, limit, placeholder=" …")


# A path inside the temporary folder (a converter's scratch copy): only its last part means anything to a user.
_TEMPORARY = re.compile(re.escape(tempfile.gettempdir().rstrip("/")) + r"/(?:[^\s'\"/]+/)*(?P<name>[^\s'\"/]+)")


def import_first(candidates: list[tuple[str, str]], what: str):
    """Import the first module that exists; otherwise say which package to install."""
    for module, _ in candidates:
        try:
            return importlib.import_module(module)
        except ImportError:
            continue
    pips = " or ".join(f"'pip install {pkg}'" for _, pkg in candidates)
    raise UserError(f"no interpreter for {what} is installed: {pips}")
