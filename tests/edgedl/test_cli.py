"""The edgedl command: one line and exit code 2 for every user error, no traceback."""
import re

import pytest

from tests.conftest import run_cli, run_python


def _one_error_line(proc) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.startswith(("error:", "edgedl"))]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_models_and_variants_print_aligned_columns():
    for command, first in (("models", "centernet_lite"), ("variants", "tflite_float32")):
        proc = run_cli("edgedl", command)
        header, *rows = proc.stdout.splitlines()
        assert proc.returncode == 0 and rows[0].split()[0] == first and len(rows) > 5
        starts = [i for i in range(1, len(header)) if header[i - 1] == " " and header[i] != " "]
        for row in rows:  # every column starts where its header does, whatever the longest name
            assert all(row[i - 2:i] == "  " and row[i] != " " for i in starts), (header, row)


def test_without_the_host_side_edgedl_says_which_extra_to_install():
    proc = run_python("import sys; from edgedl.cli import main; sys.exit(main(['models']))", block_host=False)
    assert proc.returncode == 0
    proc = run_python(
        """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "tensorflow":
                    raise ImportError(name)
        sys.meta_path.insert(0, Block())
        from edgedl.cli import main
        sys.exit(main(["models"]))
        """
    )
    line = _one_error_line(proc)
    assert "host side is not installed (tensorflow is missing)" in line and "pip install 'edgedl[train]'" in line


@pytest.mark.parametrize(
    "argv,message",
    [
        (["pipeline", "--model", "resnet9000", "--out", "{tmp}/o"], "unknown model 'resnet9000'; known models: centernet_lite, cnn,"),
        (["pipeline", "--out", "{tmp}/o", "--variants", "tflite_int4"], "unknown variant 'tflite_int4' for this classification model; known: post, prune"),
        (["pipeline", "--out", "{tmp}/o", "--epochs", "0"], "epochs must be at least 1"),
        (["pipeline", "--out", "{tmp}/o", "--data", "{tmp}/nothing"], "nothing: no such data file or folder"),
        (["pipeline", "--model", "{tmp}/broken.keras", "--out", "{tmp}/o"], "broken.keras: cannot load this Keras model"),
        (["export", "{tmp}/none.keras", "--format", "tflite", "--out", "{tmp}/m.tflite"], "none.keras: no such model"),
        (["train", "--out", "{tmp}/o", "--bogus"], "unrecognized arguments: --bogus"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_user_errors_are_one_line(tmp_path, argv, message):
    (tmp_path / "broken.keras").write_bytes(b"PK\x03\x04 this zip ends early")
    proc = run_cli("edgedl", *[a.format(tmp=tmp_path) for a in argv])
    assert message in _one_error_line(proc)
    assert not (tmp_path / "o").exists()  # a failed run leaves no empty folder behind


def test_export_command_writes_a_loadable_artifact(tmp_path, trained_cnn):
    import runtime
    from edgedl.training.model_io import save_model

    save_model(trained_cnn, tmp_path / "m.keras")
    proc = run_cli("edgedl", "export", str(tmp_path / "m.keras"), "--format", "onnx", "--precision", "int8",
                   "--out", str(tmp_path / "m.onnx"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "wrote" in proc.stdout
    meta = runtime.read_metadata(tmp_path / "m.onnx")
    assert (meta.precision, meta.labels) == ("int8", tuple("0123456789"))
    bad = run_cli("edgedl", "export", str(tmp_path / "m.keras"), "--format", "onnx", "--precision", "float16",
                  "--out", str(tmp_path / "x.onnx"))  # fmt: skip
    assert "precision 'float16' is not supported by OnnxConfig" in _one_error_line(bad)
    assert not (tmp_path / "x.onnx").exists()


def test_compress_command_prunes_exports_and_reports(tmp_path, trained_cnn):
    import json

    from edgedl.training.model_io import save_model

    save_model(trained_cnn, tmp_path / "m.keras")
    proc = run_cli("edgedl", "compress", str(tmp_path / "m.keras"), "--technique", "prune", "--sparsity", "0.5",
                   "--epochs", "1", "--out", str(tmp_path / "c"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "c" / "compression.json").read_text())
    assert summary["techniques"] == ["prune"] and summary["after"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert summary["before"]["params"] == summary["after"]["params"] == 93_322
    assert (tmp_path / "c" / summary["artifact"]).exists() and (tmp_path / "c" / "model.keras").exists()


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--technique", "prune", "--sparsity", "1.5"], "sparsity must be in [0, 1), got 1.5"),
        (["--technique", "distill", "--temperature", "-1"], "temperature must be positive, got -1.0"),
        (["--technique", "sparsify"], "unknown technique 'sparsify'; known: prune, prune_2_4, filter_prune, cluster, qat, distill"),
    ],
)
def test_compress_command_rejects_bad_options(tmp_path, extra, message):
    proc = run_cli("edgedl", "compress", str(tmp_path / "m.keras"), "--out", str(tmp_path / "c"), *extra)
    assert message in _one_error_line(proc)
    assert not (tmp_path / "c").exists()


def test_train_shows_a_line_per_epoch_and_keeps_tensorflows_output_in_its_log(tmp_path):
    proc = run_cli("edgedl", "train", "--model", "cnn", "--epochs", "1", "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"saved {tmp_path / 'run' / 'model.keras'} (93,322 parameters)")
    assert "train: epoch 1/1, loss" in proc.stderr and "val_accuracy" in proc.stderr
    log = (tmp_path / "run" / "log.txt").read_text()
    keras_line = re.compile(r"\d+/\d+ - \d+s - loss")  # Keras's own epoch line: in the log only
    assert keras_line.search(log) and not keras_line.search(proc.stdout + proc.stderr)


def test_compress_distils_a_denoiser_into_a_zoo_student(tmp_path):
    import json

    import numpy as np
    from PIL import Image

    from edgedl.models import create_model
    from edgedl.training.model_io import save_model

    rng = np.random.default_rng(0)
    for folder, count in (("train", 4), ("eval", 2)):
        (tmp_path / folder).mkdir()
        for i in range(count):
            pixels = rng.integers(0, 256, (48, 56), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / folder / f"{folder}{i}.png")
    save_model(create_model("dncnn", depth=3, width=8), tmp_path / "teacher.keras")
    proc = run_cli("edgedl", "compress", str(tmp_path / "teacher.keras"), "--technique", "distill", "--student",
                   "dncnn_lite", "--epochs", "1", "--data", str(tmp_path / "train"), "--eval-data",
                   str(tmp_path / "eval"), "--out", str(tmp_path / "kd"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "kd" / "compression.json").read_text())
    assert summary["techniques"] == ["distill"] and summary["after"]["params"] == 56_673  # dncnn_lite's
    assert (tmp_path / "kd" / summary["artifact"]).exists() and (tmp_path / "kd" / "model.keras").exists()
