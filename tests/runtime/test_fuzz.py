"""The device side under a seeded fuzzer: every case ends in a result or one clean line, never a traceback,
a signal or a hang. A few hundred cases run by default; ``pytest -m slow`` runs 5,000."""
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.fuzz_harness import FAMILIES, make_cases, run_cases

EXE = str(Path(sys.executable).with_name("edgedl-run"))


@pytest.fixture(scope="module")
def fuzz_seeds(artifacts, mnist, tmp_path_factory):
    from PIL import Image

    from edgedl.deploy.bundle import bundle

    folder = tmp_path_factory.mktemp("fuzz-seeds")
    png = folder / "digit.png"
    Image.fromarray((mnist[1].x[0, :, :, 0] * 255).astype(np.uint8)).save(png)
    tflite = artifacts[("tflite", "int8")].path
    packed = bundle(tflite, "rpi-arm64", folder / "seed.tar.gz").path
    return {"tflite": str(tflite), "onnx": str(artifacts[("onnx", "float32")].path), "png": str(png),
            "bundle": str(packed)}  # fmt: skip


def _check(counts, failures):
    shown = "\n".join(" | ".join(map(str, f)) for f in failures[:10])
    assert not failures, f"{len(failures)} cases ended badly:\n{shown}"
    for family in FAMILIES:  # every family ran, and the harness saw both outcomes overall
        assert sum(n for (f, _), n in counts.items() if f == family) > 0, family
    assert counts[("tflite", "error")] > 0 and sum(n for (_, o), n in counts.items() if o == "ok") > 0


def test_a_few_hundred_mutants_and_hostile_inputs_end_cleanly(fuzz_seeds, tmp_path):
    _check(*run_cases(make_cases(fuzz_seeds, 270, seed=0), tmp_path, EXE))


@pytest.mark.slow
def test_thousands_of_mutants_and_hostile_inputs_end_cleanly(fuzz_seeds, tmp_path):
    counts, failures = run_cases(make_cases(fuzz_seeds, 5000, seed=1), tmp_path, EXE)
    for family in FAMILIES:
        print(family, {o: n for (f, o), n in sorted(counts.items()) if f == family})
    _check(counts, failures)
