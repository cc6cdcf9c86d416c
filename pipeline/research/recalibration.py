"""Fit per-class recalibration maps (:class:`pipeline.core.scaling.Scaling`) on held-out
probabilities, and measure them honestly.

``temperature``: one scale ``1/T`` shared by every class (Guo et al. 2017). ``vector``:
a scale and a bias per class (vector scaling on log-probabilities), with a small L2
penalty pulling scales to 1 and biases to 0 (``l2``; Kull et al. 2019 regularise their
Dirichlet maps the same way). Both minimise the negative log-likelihood with
scipy's L-BFGS-B and an analytic gradient.

A map fitted and scored on the same images flatters itself; :func:`cross_fitted`
gives out-of-fold recalibrated probabilities (stratified k-fold over the held-out
images: each image is recalibrated by a map that never saw it), which is what the
reported figures use. The map that ships is then fitted on every held-out image.
"""
from __future__ import annotations

import numpy as np

from pipeline.core.scaling import EPS, Scaling

METHODS: tuple[str, ...] = ("temperature", "vector")


def _nll_and_grad(params: np.ndarray, logp: np.ndarray, y: np.ndarray, method: str,
                  l2: float) -> tuple[float, np.ndarray]:
    n, k = logp.shape
    if method == "temperature":
        scale, bias = np.full(k, params[0]), np.zeros(k)
    else:
        scale, bias = params[:k], params[k:]
    z = logp * scale + bias
    z -= z.max(axis=1, keepdims=True)
    q = np.exp(z)
    q /= q.sum(axis=1, keepdims=True)
    nll = -np.log(np.maximum(q[np.arange(n), y], 1e-300)).mean()
    d = q.copy()
    d[np.arange(n), y] -= 1.0
    d /= n  # d(nll)/dz
    g_scale = (d * logp).sum(axis=0)
    if method == "temperature":
        return float(nll), np.array([g_scale.sum()])
    g_bias = d.sum(axis=0)
    penalty = l2 * (np.sum((scale - 1.0) ** 2) + np.sum(bias ** 2))
    grad = np.concatenate([g_scale + 2 * l2 * (scale - 1.0), g_bias + 2 * l2 * bias])
    return float(nll + penalty), grad


def fit(proba: np.ndarray, y: np.ndarray, method: str = "vector", *, l2: float = 1e-3) -> Scaling:
    """Fit a recalibration map on (n, C) probabilities and (n,) class indices.

    Raises ValueError for an unknown method, mismatched shapes or fewer than two classes.
    """
    from scipy.optimize import minimize

    proba, y = np.asarray(proba, dtype=np.float64), np.asarray(y, dtype=np.int64)
    if method not in METHODS:
        raise ValueError(f"unknown recalibration {method!r}; choose one of: {', '.join(METHODS)}")
    if proba.ndim != 2 or len(proba) != len(y) or proba.shape[1] < 2:
        raise ValueError(f"need (n, C >= 2) probabilities and n labels, got {proba.shape} and {y.shape}")
    k = proba.shape[1]
    logp = np.log(np.clip(proba, EPS, 1.0))
    start = np.ones(1) if method == "temperature" else np.concatenate([np.ones(k), np.zeros(k)])
    bounds = [(1e-2, 1e2)] * (1 if method == "temperature" else k) + ([] if method == "temperature" else [(None, None)] * k)
    result = minimize(_nll_and_grad, start, args=(logp, y, method, l2), jac=True, method="L-BFGS-B", bounds=bounds)
    if method == "temperature":
        a = float(result.x[0])
        return Scaling(scale=(a,) * k, bias=(0.0,) * k, method="temperature",
                       info={"temperature": 1.0 / a, "n": int(len(y))})
    return Scaling(scale=tuple(float(v) for v in result.x[:k]), bias=tuple(float(v) for v in result.x[k:]),
                   method="vector", info={"l2": l2, "n": int(len(y))})


def cross_fitted(proba: np.ndarray, y: np.ndarray, method: str = "vector", *, folds: int = 5,
                 seed: int = 0, l2: float = 1e-3) -> np.ndarray:
    """(n, C) out-of-fold recalibrated probabilities: stratified ``folds``-fold over the
    images, each fold recalibrated by a map fitted on the others (scikit-learn
    ``StratifiedKFold``). Raises ValueError, saying so, when there are fewer images
    than folds."""
    from sklearn.model_selection import StratifiedKFold

    proba, y = np.asarray(proba, dtype=np.float64), np.asarray(y, dtype=np.int64)
    if len(y) < folds:
        raise ValueError(f"recalibration is measured over {folds} folds of the validation images, which hold only "
                         f"{len(y)}; use a larger image set or --calibration none")
    out = np.empty_like(proba)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(proba, y):
        out[test] = fit(proba[train], y[train], method, l2=l2).apply(proba[test])
    return out
