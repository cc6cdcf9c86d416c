"""Metrics of one fold: accuracy, macro-F1, UAR, per-class report, confusion, ECE.

Everything takes class *indices* in label-set order plus the predicted probability
matrix, so every model (Keras or scikit-learn) is scored by the same code.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def _as_indices(y_true: Sequence[Any], classes: Sequence[str]) -> np.ndarray:
    """Accept class indices or emotion names; return int64 indices."""
    arr = np.asarray(y_true)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    index = {c: i for i, c in enumerate(classes)}
    try:
        return np.array([index[str(v)] for v in arr], dtype=np.int64)
    except KeyError as err:
        raise ValueError(f"label {err.args[0]!r} is not one of {list(classes)}") from None


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> float:
    """Top-label ECE: the |accuracy - confidence| gap averaged over equal-width
    confidence bins, weighted by bin size (0 = perfectly calibrated, in [0, 1])."""
    if len(y_true) == 0:
        return float("nan")
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y_true).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # bin i holds confidences in (edges[i], edges[i+1]]; 0 goes to the first bin
    bins = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) counts, rows = true class, columns = predicted."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def evaluate(y_true: Sequence[Any], probs: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Score predictions of one fold.

    ``y_true``: (n,) class indices or emotion names; ``probs``: (n, n_classes) rows of
    class probabilities in ``classes`` order. Returns JSON-ready ``accuracy, macro_f1,
    uar`` (balanced accuracy over the classes present), ``ece`` (15 bins, top label),
    ``confusion`` (rows true), ``report`` ({class: precision, recall, f1, support}),
    ``n_test`` and ``classes``. Fractions in [0, 1].
    """
    from sklearn.metrics import precision_recall_fscore_support

    classes = list(classes)
    probs = np.asarray(probs, dtype=np.float64)
    y = _as_indices(y_true, classes)
    if probs.ndim != 2 or probs.shape != (len(y), len(classes)):
        raise ValueError(f"probs must have shape ({len(y)}, {len(classes)}), got {probs.shape}")
    if len(y) == 0:
        raise ValueError("nothing to evaluate: the test side is empty")
    pred = probs.argmax(axis=1)
    labels = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y, pred, labels=labels, zero_division=0)
    present = support > 0
    return {
        "accuracy": float((pred == y).mean()),
        "macro_f1": float(f1[present].mean()),
        "uar": float(recall[present].mean()),
        "ece": expected_calibration_error(y, probs),
        "n_test": int(len(y)),
        "classes": classes,
        "confusion": confusion(y, pred, len(classes)).tolist(),
        "report": {c: {"precision": float(precision[i]), "recall": float(recall[i]),
                       "f1": float(f1[i]), "support": int(support[i])}
                   for i, c in enumerate(classes)},
    }
