"""What a board is, said as one JSON line: run there by ``edgedl deploy`` as ``python3 - DIR`` (this file is
its standard input), with nothing but the standard library of Python 3.6 or later, so that an old Python is
reported, not crashed on.

It makes the deployment folder DIR (relative to the home folder) and reports
the architecture, the OS, the Python, whether that Python can make a virtual
environment, the free disk in DIR, the available memory, the CPU, and what an
earlier deployment left there (bundles unpacked, environments installed).
"""
import json
import os
import platform
import shutil
import sys


def _os_name():
    try:
        with open("/etc/os-release") as handle:
            for line in handle:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def _meminfo(key):
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cpu():
    try:
        with open("/proc/cpuinfo") as handle:
            text = handle.read()
    except OSError:
        return platform.processor() or platform.machine()
    for key in ("Model", "model name", "Hardware"):  # a Raspberry Pi says "Model", a PC "model name"
        for line in text.splitlines():
            if line.startswith(key) and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.machine()


def main():
    folder = os.path.abspath(os.path.expanduser(os.path.join("~", sys.argv[1] if len(sys.argv) > 1 else "edgedl")))
    found = {"folder": folder, "machine": platform.machine(), "system": platform.system() + " " + platform.release(),
             "os": _os_name(), "python": platform.python_version(), "executable": sys.executable,
             "cpu": _cpu(), "cores": os.cpu_count(), "memory_available": _meminfo("MemAvailable"),
             "glibc": platform.libc_ver()[1]}
    try:
        import ensurepip  # noqa: F401 - Debian's python3 lacks it without python3-venv
        import venv  # noqa: F401

        found["venv"] = True
    except ImportError:
        found["venv"] = False
    try:
        os.makedirs(folder, exist_ok=True)
        found["free_bytes"] = shutil.disk_usage(folder).free
        found["entries"] = sorted(e for e in os.listdir(folder)
                                  if os.path.isfile(os.path.join(folder, e, "manifest.json"))
                                  or os.path.isfile(os.path.join(folder, e, ".edgedl-installed")))
    except OSError as exc:
        found["folder_error"] = "%s: %s" % (folder, exc.strerror or exc)
    print(json.dumps(found))


if __name__ == "__main__":
    main()
