"""Metrics against hand-computed values and scikit-learn."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score

from pipeline.research.evaluation import confusion, evaluate, expected_calibration_error

CLASSES = ["neutral", "happy", "sad"]


def _onehot(pred: list[int], confidence: float = 1.0, n: int = 3) -> np.ndarray:
    probs = np.full((len(pred), n), (1 - confidence) / (n - 1))
    probs[np.arange(len(pred)), pred] = confidence
    return probs


def test_hand_computed_metrics() -> None:
    y = [0, 0, 0, 0, 1, 1, 2, 2]
    pred = [0, 0, 0, 1, 1, 1, 2, 0]
    m = evaluate(y, _onehot(pred), CLASSES)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["uar"] == pytest.approx((3 / 4 + 1 + 1 / 2) / 3)
    assert m["confusion"] == [[3, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m["report"]["happy"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert m["uar"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert m["n_test"] == 8 and m["classes"] == CLASSES
    # one-hot predictions: confidence 1, ECE = 1 - accuracy
    assert m["ece"] == pytest.approx(0.25)


def test_names_and_indices_agree() -> None:
    probs = _onehot([0, 1, 2, 2])
    assert evaluate(["neutral", "happy", "sad", "happy"], probs, CLASSES) == evaluate([0, 1, 2, 1], probs, CLASSES)


def test_ece_zero_when_confidence_matches_accuracy() -> None:
    # 10 predictions at confidence 0.7 of which 7 are right: perfectly calibrated
    y = np.array([0] * 7 + [1] * 3)
    probs = _onehot([0] * 10, confidence=0.7)
    assert expected_calibration_error(y, probs) == pytest.approx(0.0)
    # same predictions at confidence 0.9: gap 0.2
    assert expected_calibration_error(y, _onehot([0] * 10, confidence=0.9)) == pytest.approx(0.2)


def test_confusion_rows_are_true_classes() -> None:
    assert confusion(np.array([2]), np.array([0]), 3).tolist() == [[0, 0, 0], [0, 0, 0], [1, 0, 0]]


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="shape"):
        evaluate([0, 1], np.ones((2, 2)) / 2, CLASSES)
    with pytest.raises(ValueError, match="not one of"):
        evaluate(["angry"], _onehot([0]), CLASSES)
    with pytest.raises(ValueError, match="empty"):
        evaluate([], np.zeros((0, 3)), CLASSES)
