"""scikit-learn baselines on standardised feature vectors (MFCC statistics by default).

Each builder returns an unfitted :class:`sklearn.pipeline.Pipeline` whose first step is
a :class:`~sklearn.preprocessing.StandardScaler`, so the scaler is fitted inside
``fit`` (on the training fold only) and travels with the model. ``input_shape`` is
``(n_features,)``; it is not needed to build the estimator but is checked so a wrong
feature kind fails early. Every model has ``predict_proba``: SVMs are wrapped in
:class:`~sklearn.calibration.CalibratedClassifierCV` with temperature scaling (one
multiclass softmax temperature fitted on cross-validated decision values, so the
arg-max of the probabilities stays the SVM's own decision), replacing the deprecated
``SVC(probability=True)``.
"""
from __future__ import annotations

from typing import Any

from models import register

#: Feature kind the classical models read unless an experiment names another.
DEFAULT_INPUT = "mfcc_stats"


def _check_shape(input_shape: tuple[int, ...], n_classes: int) -> None:
    if len(input_shape) != 1 or input_shape[0] < 1:
        raise ValueError(f"classical models take 1-D feature vectors, got input_shape {input_shape}")
    if n_classes < 2:
        raise ValueError(f"need at least 2 classes, got {n_classes}")


def _svm(kernel: str, degree: int, C: float, gamma: str | float, calibration_cv: int,
         class_weight: str | None, random_state: int):
    """Scaler -> SVC calibrated by temperature scaling on ``calibration_cv`` folds."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    svc = SVC(kernel=kernel, degree=degree, C=C, gamma=gamma, class_weight=class_weight,
              random_state=random_state)
    calibrated = CalibratedClassifierCV(svc, method="temperature", cv=calibration_cv, ensemble=False)
    return Pipeline([("scale", StandardScaler()), ("clf", calibrated)])


@register("svm_linear", framework="sklearn", input_kind=DEFAULT_INPUT,
          description="standardised features -> linear SVM (calibrated probabilities)")
def build_svm_linear(input_shape: tuple[int, ...], n_classes: int, *, C: float = 1.0,
                     calibration_cv: int = 3, class_weight: str | None = None,
                     random_state: int = 0) -> Any:
    """Linear-kernel SVM. For thousands of features (ComParE) use a small ``C`` (1e-3)."""
    _check_shape(input_shape, n_classes)
    return _svm("linear", 3, C, "scale", calibration_cv, class_weight, random_state)


@register("svm_rbf", framework="sklearn", input_kind=DEFAULT_INPUT,
          description="standardised features -> RBF SVM (the report's best classical model)")
def build_svm_rbf(input_shape: tuple[int, ...], n_classes: int, *, C: float = 10.0,
                  gamma: str | float = "scale", calibration_cv: int = 3,
                  class_weight: str | None = None, random_state: int = 0) -> Any:
    """RBF-kernel SVM."""
    _check_shape(input_shape, n_classes)
    return _svm("rbf", 3, C, gamma, calibration_cv, class_weight, random_state)


@register("svm_poly3", framework="sklearn", input_kind=DEFAULT_INPUT,
          description="standardised features -> polynomial SVM, degree 3")
def build_svm_poly3(input_shape: tuple[int, ...], n_classes: int, *, C: float = 1.0,
                    gamma: str | float = "scale", calibration_cv: int = 3,
                    class_weight: str | None = None, random_state: int = 0) -> Any:
    """Polynomial-kernel SVM of degree 3."""
    _check_shape(input_shape, n_classes)
    return _svm("poly", 3, C, gamma, calibration_cv, class_weight, random_state)


@register("svm_poly4", framework="sklearn", input_kind=DEFAULT_INPUT,
          description="standardised features -> polynomial SVM, degree 4")
def build_svm_poly4(input_shape: tuple[int, ...], n_classes: int, *, C: float = 1.0,
                    gamma: str | float = "scale", calibration_cv: int = 3,
                    class_weight: str | None = None, random_state: int = 0) -> Any:
    """Polynomial-kernel SVM of degree 4."""
    _check_shape(input_shape, n_classes)
    return _svm("poly", 4, C, gamma, calibration_cv, class_weight, random_state)


@register("logreg", framework="sklearn", input_kind=DEFAULT_INPUT,
          description="standardised features -> multinomial logistic regression (L2)")
def build_logreg(input_shape: tuple[int, ...], n_classes: int, *, C: float = 1.0,
                 max_iter: int = 2000, class_weight: str | None = None,
                 remove_speakers: bool = False, random_state: int = 0) -> Any:
    """Multinomial logistic regression: native probabilities, a strong linear baseline
    for high-dimensional functionals (use a small ``C`` for ComParE).
    ``remove_speakers``: after standardising, project out the training speakers'
    subspace (:class:`models.nuisance.SpeakerSubspaceRemoval`, step ``speakers``; fit
    it with ``speakers__groups``, the speaker of every training row), then standardise
    again (step ``rescale``), so that ``C`` weighs every input as it did before."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from models.nuisance import SpeakerSubspaceRemoval

    _check_shape(input_shape, n_classes)
    clf = LogisticRegression(C=C, max_iter=max_iter, class_weight=class_weight, random_state=random_state)
    speakers = [("speakers", SpeakerSubspaceRemoval()), ("rescale", StandardScaler())] if remove_speakers else []
    return Pipeline([("scale", StandardScaler()), *speakers, ("clf", clf)])


@register("mlp", framework="sklearn", input_kind=DEFAULT_INPUT,
          description="standardised features -> one-hidden-layer perceptron")
def build_mlp(input_shape: tuple[int, ...], n_classes: int, *,
              hidden_layer_sizes: tuple[int, ...] | list[int] = (200,), alpha: float = 1e-2,
              max_iter: int = 500, learning_rate_init: float = 1e-3,
              early_stopping: bool = False, random_state: int = 0) -> Any:
    """Multilayer perceptron (ReLU, Adam); the report used 200 hidden units."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    _check_shape(input_shape, n_classes)
    clf = MLPClassifier(hidden_layer_sizes=tuple(hidden_layer_sizes), alpha=alpha, max_iter=max_iter,
                        learning_rate_init=learning_rate_init, early_stopping=early_stopping,
                        random_state=random_state)
    return Pipeline([("scale", StandardScaler()), ("clf", clf)])
