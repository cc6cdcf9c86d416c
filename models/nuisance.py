"""Removing who is speaking from a feature vector: nuisance attribute projection.

A voice model trained on a few dozen speakers learns their voices beside their
emotions; the directions in which the training speakers' average feature vectors differ
say little about a stranger's emotion and much about who the training speakers were.
:class:`SpeakerSubspaceRemoval` projects those directions out of every vector (Campbell,
Sturim, Reynolds & Solomonoff 2006, "SVM based speaker verification using a GMM
supervector kernel and NAP variability compensation", ICASSP; here the nuisance
attribute is the speaker, as in speaker-variability compensation for emotion
recognition). It needs the training speakers' names at ``fit`` only: a single clip of
a stranger is projected with nothing measured on it, unlike per-speaker normalisation
(:mod:`pipeline.core.calibration`), which needs that speaker's other recordings.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

#: A direction is kept for removal when the training speakers' means spread along it by
#: more than this many standard deviations of the (standardised) input: speaker means
#: that per-speaker normalisation already set to zero span nothing to remove.
MIN_SPREAD: float = 1e-3


class SpeakerSubspaceRemoval(TransformerMixin, BaseEstimator):
    """Project out the span of the training speakers' mean vectors.

    ``fit(X, y=None, groups=...)``: ``X`` ``(n, d)`` (standardise it first: the
    directions are found in its units), ``groups`` ``(n,)`` the speaker of each row.
    The speaker means, centred on their own average, give at most ``n_speakers - 1``
    directions (``n_components`` of them when set, the strongest first; ``None``: all
    that spread by more than :data:`MIN_SPREAD`). ``transform(X)`` returns
    ``X - X V^T V`` for the orthonormal directions ``V`` (``components_``,
    ``(k, d)``), float64. Raises ValueError without ``groups``, for a ``groups`` of the
    wrong length, or for a non-positive ``n_components``.
    """

    def __init__(self, n_components: int | None = None) -> None:
        self.n_components = n_components

    def fit(self, X: Any, y: Any = None, groups: Any = None) -> "SpeakerSubspaceRemoval":
        X = np.asarray(X, dtype=np.float64)
        if groups is None:
            raise ValueError("SpeakerSubspaceRemoval needs the speaker of every training row "
                             "(fit(X, y, groups=...), or <step>__groups through a Pipeline)")
        groups = np.asarray(groups)
        if X.ndim != 2 or len(groups) != len(X):
            raise ValueError(f"need X (n, d) and one speaker per row, got X {X.shape} and {len(groups)} speakers")
        if self.n_components is not None and int(self.n_components) < 1:
            raise ValueError(f"n_components must be positive or None, got {self.n_components}")
        speakers = np.unique(groups)
        means = np.stack([X[groups == s].mean(axis=0) for s in speakers])
        means -= means.mean(axis=0)
        _, spread, directions = np.linalg.svd(means, full_matrices=False)
        keep = spread / np.sqrt(len(speakers)) > MIN_SPREAD
        if self.n_components is not None:
            keep[int(self.n_components):] = False
        self.components_ = directions[keep]
        self.speakers_ = speakers
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"need X (n, {self.n_features_in_}), got {X.shape}")
        return X - (X @ self.components_.T) @ self.components_
