"""The machine a measurement was taken on: CPU, vector extensions, cores, library versions.

Device side (no TensorFlow): the host harness and ``edgedl-run bench`` on a
board describe their machines the same way, so their reports merge.
"""
from __future__ import annotations

import os
import platform
from importlib import metadata as pkg_metadata
from pathlib import Path

PACKAGES = ("numpy", "ai-edge-litert", "tflite-runtime", "onnxruntime", "onnxruntime-gpu", "edgedl", "edgedl-runtime",
            "tensorflow", "tf-keras")
INTERESTING_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "fma", "asimd", "neon")


def _cpu() -> tuple[str, list[str]]:
    name, flags = platform.processor() or platform.machine(), []
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return name, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model", "Hardware") and value.strip():
            name = value.strip()
        elif key in ("flags", "Features") and not flags:
            present = set(value.split())
            flags = [f for f in INTERESTING_FLAGS if f in present]
    return name, flags


def _board():
    """The board's name where the firmware gives one (a Raspberry Pi or a Jetson: the device tree)."""
    try:
        return Path("/proc/device-tree/model").read_text().strip("\x00 \n") or None
    except OSError:
        return None


def machine_info(threads: int) -> dict:
    """The CPU, its vector extensions, cores, threads used, and the interpreter and library versions."""
    cpu, flags = _cpu()
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = pkg_metadata.version(pkg)
        except pkg_metadata.PackageNotFoundError:
            continue
    board = _board()
    return {
        "hostname": platform.node(),
        **({"board": board} if board else {}),
        "cpu": cpu,
        "arch": platform.machine(),
        "vector_extensions": flags,
        "cores": os.cpu_count(),
        "threads": threads,
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": versions,
    }
