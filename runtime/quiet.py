"""The interpreters' own C++ lines on standard error, filtered: ``INFO: Created TensorFlow Lite XNNPACK delegate
for CPU.`` is printed by every ``.tflite`` interpreter the moment it is made (ai-edge-litert has no Python
switch for its log level), out of order with edgedl's own lines. The file descriptor is redirected around the
call that prints it, and whatever else was written is passed on as it came."""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile

NOISE = ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",)


@contextlib.contextmanager
def native_noise_filtered(noise: tuple = NOISE):
    """Run the block with file descriptor 2 in a temporary file; then write back every line but ``noise``."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable descriptor 2 (an embedded interpreter): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            lines = caught.read().splitlines(keepends=True)
            kept = [line for line in lines if line.decode(errors="replace").strip() not in noise]
            if kept:
                os.write(2, b"".join(kept))
