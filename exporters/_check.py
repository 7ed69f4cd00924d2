"""Run a fresh artifact once through ``runtime`` and compare it with the Keras model."""
from __future__ import annotations

import numpy as np

from runtime import load
from runtime.errors import UserError
from runtime.tasks import get_task

from .tfkeras import output_names

# Largest mean absolute difference from the Keras output accepted per precision
# (probabilities for classifiers, pixels in [0, 1] for denoisers; relative to the mean magnitude of an
# output larger than that). Quantized
# variants are allowed more, as in Keras's own exporter tests; the accuracy
# they keep is what the benchmark measures.
TOLERANCE = {"float32": 1e-4, "float16": 5e-3, "dynamic": 3e-2, "int8": 3e-2, "int8_mixed": 3e-2, "int8_float": 3e-2,
             "int8_pixels": 3e-2}  # fmt: skip
MIN_TOP1_AGREEMENT = {"float32": 1.0, "float16": 0.98, "dynamic": 0.9, "int8": 0.9, "int8_mixed": 0.9, "int8_float": 0.9,
                      "int8_pixels": 0.9}  # fmt: skip


# Below this gap between the model's two best scores, a flip of the top-1 class is rounding, not an error.
DECISIVE_MARGIN = 0.05


def top1_agreement(got: np.ndarray, expected: np.ndarray) -> float:
    """Share of inputs (or of pixels, for scores per pixel) whose top-1 class the artifact keeps, among those
    the model decides clearly."""
    top2 = np.sort(expected, axis=-1)[..., -2:]
    decisive = (top2[..., 1] - top2[..., 0]) > DECISIVE_MARGIN
    if not decisive.any():
        return 1.0
    return float(np.mean(got.argmax(-1)[decisive] == expected.argmax(-1)[decisive]))


def keras_outputs(model, inputs) -> dict:
    """The Keras model's outputs by name (its output layers' names, which converters keep)."""
    out = model(inputs, training=False)
    out = out if isinstance(out, (list, tuple)) else [out]
    return {name: np.asarray(y, dtype=np.float32) for name, y in zip(output_names(model), out)}


def check_against_keras(path, model, inputs, precision: str, task: str) -> tuple[float, float]:
    """Return (max abs diff, top-1 agreement) over every output, matched by name (by order when the artifact
    names them otherwise); raise if the artifact strays from the model."""
    expected = keras_outputs(model, inputs)
    got = load(path, threads=1).run(inputs)
    if set(got) != set(expected):
        if len(got) != len(expected):
            raise UserError(f"{path}: the artifact has {len(got)} outputs, the model {len(expected)}")
        got = dict(zip(expected, got.values()))
    worst, mean_diff, agreement = 0.0, 0.0, 1.0
    for name, want in expected.items():
        if got[name].shape != want.shape:
            raise UserError(f"{path}: artifact output {name!r} has shape {got[name].shape}, the model's {want.shape}")
        diff = np.abs(got[name].astype(np.float32) - want)
        scale = max(1.0, float(np.abs(want).mean()))  # outputs beyond [0, 1] (boxes in pixels): relative
        worst, mean_diff = max(worst, float(diff.max(initial=0.0))), max(mean_diff, float(diff.mean()) / scale)
        if get_task(task).class_scores:
            agreement = min(agreement, top1_agreement(got[name], want))
    if mean_diff > TOLERANCE[precision] or agreement < MIN_TOP1_AGREEMENT[precision]:
        raise RuntimeError(
            f"{path}: {precision} artifact strays from the Keras model "
            f"(mean |diff| {mean_diff:.3g} > {TOLERANCE[precision]} or top-1 agreement {agreement:.3f})"
        )
    return worst, agreement


def check_if_asked(path, model, config, task: str) -> tuple[float, float]:
    """``check_against_keras`` on the config's check inputs; (nan, nan) when it has none."""
    check = config.check_set()
    if check is None:
        return float("nan"), float("nan")
    return check_against_keras(path, model, check, config.precision, task)
