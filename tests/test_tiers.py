"""The fast tier runs where TensorFlow cannot be imported, as on a device or a fresh clone without the host side."""
import subprocess
import sys
import time

from tests.conftest import BLOCK_HOST_IMPORTS, ROOT

FAST = "not tf and not network and not browser and not slow"


def test_the_fast_tier_passes_with_tensorflow_and_the_host_packages_blocked():
    code = BLOCK_HOST_IMPORTS.replace('"edgedl", "exporters"', "") + (
        "import pytest\n"
        f"sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '-m', {FAST!r}, '-k', "
        "'not test_the_fast_tier_passes', 'tests']))\n"
    )
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "error" not in summary, summary
    print(f"fast tier: {summary} ({time.perf_counter() - start:.1f} s)")
