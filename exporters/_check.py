"""Run a fresh artifact once through ``runtime`` and compare it with the Keras model."""
from __future__ import annotations

import numpy as np

from runtime import load
from runtime.errors import UserError

# Largest mean absolute difference from the Keras output accepted per precision
# (probabilities for classifiers, pixels in [0, 1] for denoisers). Quantized
# variants are allowed more, as in Keras's own exporter tests; the accuracy
# they keep is what the benchmark measures.
TOLERANCE = {"float32": 1e-4, "float16": 5e-3, "dynamic": 3e-2, "int8": 3e-2}
MIN_TOP1_AGREEMENT = {"float32": 1.0, "float16": 0.98, "dynamic": 0.9, "int8": 0.9}


# Below this gap between the model's two best scores, a flip of the top-1 class is rounding, not an error.
DECISIVE_MARGIN = 0.05


def top1_agreement(got: np.ndarray, expected: np.ndarray) -> float:
    """Share of inputs whose top-1 class the artifact keeps, among those the model decides clearly."""
    top2 = np.sort(expected, axis=-1)[:, -2:]
    decisive = (top2[:, 1] - top2[:, 0]) > DECISIVE_MARGIN
    if not decisive.any():
        return 1.0
    return float(np.mean(got.argmax(-1)[decisive] == expected.argmax(-1)[decisive]))


def check_against_keras(path, model, inputs: np.ndarray, precision: str, task: str) -> tuple[float, float]:
    """Return (max abs diff, top-1 agreement); raise if the artifact strays from the model."""
    expected = np.asarray(model(inputs, training=False), dtype=np.float32)
    got = load(path, threads=1).predict(inputs)
    if got.shape != expected.shape:
        raise UserError(f"{path}: artifact output shape {got.shape} differs from the model's {expected.shape}")
    diff = np.abs(got - expected)
    agreement = top1_agreement(got, expected) if task == "classification" else 1.0
    if diff.mean() > TOLERANCE[precision] or agreement < MIN_TOP1_AGREEMENT[precision]:
        raise RuntimeError(
            f"{path}: {precision} artifact strays from the Keras model "
            f"(mean |diff| {diff.mean():.3g} > {TOLERANCE[precision]} or top-1 agreement {agreement:.3f})"
        )
    return float(diff.max()), agreement


def check_if_asked(path, model, config, task: str) -> tuple[float, float]:
    """``check_against_keras`` on the config's check inputs; (nan, nan) when it has none."""
    check = config.check_set()
    if check is None:
        return float("nan"), float("nan")
    return check_against_keras(path, model, check, config.precision, task)
