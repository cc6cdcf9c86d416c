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

import numbers
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

#: A direction is kept for removal when the training speakers' means spread along it by
#: more than this many standard deviations of the (standardised) input.
MIN_SPREAD: float = 1e-3
#: At most this share of the input's dimensions is removed. When the training speakers
#: are as many as the features (91 CREMA-D speakers against 88 eGeMAPS functionals), their
#: means span nearly the whole space: that is not a nuisance subspace any more, and
#: removing it would leave the classifier rounding noise.
MAX_SHARE: float = 0.5


class SpeakerSubspaceRemoval(TransformerMixin, BaseEstimator):
    """Project out the span of the training speakers' mean vectors.

    ``fit(X, y=None, groups=...)``: ``X`` ``(n, d)`` finite floats (standardise it first:
    the directions are found in its units), ``groups`` ``(n,)`` the speaker of each row
    (any hashable names, none missing). The speaker means, centred on their own average,
    give at most ``n_speakers - 1`` directions, the strongest first: ``n_components`` of
    them when set, else all that spread by more than :data:`MIN_SPREAD`, and never more
    than :data:`MAX_SHARE` of ``d``. ``transform(X)`` returns ``X - X V^T V`` for the
    orthonormal directions ``V`` (``components_``, ``(k, d)``), float64. Raises
    ValueError without ``groups``, for ``groups`` of the wrong shape or with missing
    names, for non-finite ``X``, or for an ``n_components`` that is not a positive
    integer; :class:`sklearn.exceptions.NotFittedError` from ``transform`` before ``fit``.

    Per-speaker normalisation (:mod:`pipeline.core.calibration`) that uses a speaker's
    own mean sets the means to zero and leaves nothing to remove; the leave-one-out
    version (each clip by the speaker's *other* clips) leaves them near zero, not at it.
    """

    def __init__(self, n_components: int | None = None) -> None:
        self.n_components = n_components

    def fit(self, X: Any, y: Any = None, groups: Any = None) -> "SpeakerSubspaceRemoval":
        from sklearn.utils.validation import check_array

        if groups is None:
            raise ValueError("SpeakerSubspaceRemoval needs the speaker of every training row "
                             "(fit(X, y, groups=...), or <step>__groups through a Pipeline)")
        if self.n_components is not None and (isinstance(self.n_components, bool)
                                              or not isinstance(self.n_components, numbers.Integral)
                                              or self.n_components < 1):
            raise ValueError(f"n_components must be a positive integer or None, got {self.n_components!r}")
        X = check_array(X, dtype=np.float64)
        groups = _speaker_names(groups, len(X))
        speakers = np.unique(groups)
        means = np.stack([X[groups == s].mean(axis=0) for s in speakers])
        means -= means.mean(axis=0)
        _, spread, directions = np.linalg.svd(means, full_matrices=False)
        keep = spread / np.sqrt(len(speakers)) > MIN_SPREAD
        limit = int(MAX_SHARE * X.shape[1])
        if self.n_components is not None:
            limit = min(limit, int(self.n_components))
        keep[limit:] = False
        self.components_ = directions[keep]
        self.speakers_ = speakers
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        from sklearn.utils.validation import check_array, check_is_fitted

        check_is_fitted(self, "components_")
        X = check_array(X, dtype=np.float64)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"need X (n, {self.n_features_in_}), got {X.shape}")
        return X - (X @ self.components_.T) @ self.components_


def _speaker_names(groups: Any, n: int) -> np.ndarray:
    """``groups`` as ``(n,)`` strings; ValueError for another shape or a missing name."""
    groups = np.asarray(groups, dtype=object)
    if groups.ndim != 1 or len(groups) != n:
        raise ValueError(f"need one speaker per row of X ({n}), got groups of shape {groups.shape}")
    missing = [g for g in groups if g is None or (isinstance(g, float) and not np.isfinite(g))]
    if missing:
        raise ValueError(f"{len(missing)} training rows have no speaker name (None or NaN)")
    return groups.astype(str)
