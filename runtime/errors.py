"""The one exception type that means "the user gave us something wrong", and the helpers that turn a
third-party failure (a missing interpreter, an interpreter's error) into it.

Every floor (runtime, exporters, edgedl, benchmarks) raises it for bad input;
the command-line front ends print its message on one line and exit non-zero,
while any other exception is a bug and keeps its traceback.
"""
import importlib
import re


class UserError(Exception):
    """Bad input: the message names what is wrong and what to do about it."""


def first_line(exc: BaseException) -> str:
    """The interpreter's message as one short line; onnxruntime's C++ signatures dropped, its reason kept."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    line = next((ln for ln in lines if "error" in ln.lower()), lines[0] if lines else type(exc).__name__)
    line = re.sub(r"/onnxruntime_src/\S+ \S.*?\)\s*(?=\S)", "", line)  # "<file>:<line> <C++ signature>) "
    return line[:240]


def import_first(candidates: list[tuple[str, str]], what: str):
    """Import the first module that exists; otherwise say which package to install."""
    for module, _ in candidates:
        try:
            return importlib.import_module(module)
        except ImportError:
            continue
    pips = " or ".join(f"'pip install {pkg}'" for _, pkg in candidates)
    raise UserError(f"no interpreter for {what} is installed: {pips}")
