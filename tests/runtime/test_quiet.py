"""The interpreter's own INFO line is filtered from standard error; anything else it writes there still shows."""
import subprocess
import sys

from tests.conftest import ROOT


def test_native_noise_is_filtered_and_the_rest_passed_on():
    code = ("import os\nfrom runtime.quiet import native_noise_filtered\n"
            "with native_noise_filtered():\n"
            "    os.write(2, b'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n')\n"
            "    os.write(2, b'ERROR: something a user must see\\n')\n"
            "os.write(2, b'after\\n')\n")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "ERROR: something a user must see\nafter\n"
