"""The structural check of a .tflite before the interpreter sees it: the damage that crashed the interpreter
(a zeroed subgraphs entry) is one line, and a seeded corpus of structural mutants (zeroed vtable slots,
indices beyond their lists, vectors past the end) ends in a result or one line: no signal, no traceback."""
import random
import struct
import subprocess
import sys

import pytest

from runtime.flatbuffer import root
from runtime.tflite_check import check_tflite
from tests.conftest import ROOT, run_cli
from tests.fuzz_harness import slot, structural_mutant


RUN_ALL = """
import sys
import numpy as np
import runtime
from runtime.errors import UserError
ok = refused = 0
for path in sys.argv[1:]:
    try:
        model = runtime.load(path, threads=1)
        model.run(np.zeros((1, 28, 28, 1), np.float32))
        ok += 1
    except UserError:
        refused += 1
print(ok, refused)
"""


@pytest.fixture(scope="module")
def seed_model(artifacts):
    """A .tflite without edgedl's sealed record, as another tool makes it: nothing but this check stands
    between its bytes and the interpreter."""
    from tests.fuzz_harness import strip_record

    return strip_record(artifacts[("tflite", "float32")].path.read_bytes(), ".tflite")


def test_a_zeroed_subgraphs_entry_is_one_line_not_a_crash(seed_model, tmp_path):
    b = bytearray(seed_model)
    struct.pack_into("<H", b, slot(root(seed_model), 2), 0)
    (tmp_path / "m.tflite").write_bytes(b)
    with pytest.raises(ValueError, match="the model has no subgraph"):
        check_tflite(bytes(b))
    proc = run_cli("edgedl-run", str(tmp_path / "m.tflite"), "--describe")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "not a valid TFLite model (the model has no subgraph); re-export it or copy it again" in proc.stderr


def test_a_seeded_corpus_of_structural_mutants_is_refused_or_runs_never_crashes(seed_model, tmp_path):
    rng = random.Random(0)
    refused, passed = 0, []
    for i in range(300):
        mutant = structural_mutant(seed_model, rng)
        try:
            check_tflite(mutant)
        except ValueError:
            refused += 1
            continue
        path = tmp_path / f"m{i}.tflite"
        path.write_bytes(mutant)
        passed.append(str(path))
    assert refused > 150  # most structural damage is caught before the interpreter
    # What the check let through is loaded and run, all in one process: a crash would end it with a signal.
    proc = subprocess.run([sys.executable, "-c", RUN_ALL, *passed], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)  # fmt: skip
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    ok, errors = map(int, proc.stdout.split())
    assert ok + errors == len(passed)
