"""Embeddings on the device: a model that maps a picture to a unit vector (the face-recognition pattern), its
verification metrics, and ``edgedl-run``'s answer: the embedding, or for two pictures their similarity and
the same/different decision at the threshold stored in the model's metadata."""
from __future__ import annotations

import numpy as np

from .errors import UserError

FAR = 0.01  # the false accept rate TAR is read at, and the stored threshold is chosen for


def unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (a model whose output is not normalised is compared by angle all the same)."""
    vectors = np.asarray(vectors, np.float64).reshape(len(vectors), -1)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def pair_scores(embeddings: np.ndarray, labels: np.ndarray) -> tuple:
    """Cosine similarity of every pair (i < j), split into genuine (same class) and impostor pairs."""
    e = unit(embeddings)
    labels = np.asarray(labels).reshape(-1)
    i, j = np.triu_indices(len(e), k=1)
    sims = np.einsum("ij,ij->i", e[i], e[j])
    same = labels[i] == labels[j]
    return sims[same], sims[~same]


def roc_auc(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """The probability that a genuine pair scores above an impostor pair (ties count half): the area under
    the ROC curve, by the Mann–Whitney rank sum."""
    if not len(genuine) or not len(impostor):
        raise UserError("verification needs genuine and impostor pairs: at least two classes, one with two samples")
    scores = np.concatenate([genuine, impostor])
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    values, first, counts = np.unique(scores[order], return_index=True, return_counts=True)
    for start, count in zip(first[counts > 1], counts[counts > 1]):  # ties share their mean rank
        ranks[order[start : start + count]] = start + (count + 1) / 2
    n_g, n_i = len(genuine), len(impostor)
    return float((ranks[:n_g].sum() - n_g * (n_g + 1) / 2) / (n_g * n_i))


def threshold_at(impostor: np.ndarray, far: float = FAR) -> float:
    """The similarity above which at most ``far`` of impostor pairs are accepted."""
    return float(np.quantile(impostor, 1.0 - far, method="higher"))


def verification_metrics(embeddings, labels) -> dict:
    """ROC AUC and TAR at FAR = 1 % over every pair of the evaluation set."""
    genuine, impostor = pair_scores(np.asarray(embeddings), labels)
    threshold = threshold_at(impostor)
    return {"roc_auc": roc_auc(genuine, impostor), "tar_far1": float(np.mean(genuine > threshold))}
