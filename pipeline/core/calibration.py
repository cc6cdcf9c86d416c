"""Per-speaker normalisation of voice features: emotion is a departure from a person's own voice.

Three ways an answer can be normalised (:data:`MODES`), each with its own model in a
bundle, and the answer says which one was used:

- ``none`` -- the population's statistics (the model's own scaler, fitted on the
  training speakers): all a single clip from a stranger allows;
- ``neutral`` -- "calibrate to my voice": a few seconds of the speaker talking calmly
  give a mean feature vector; every clip of that speaker is shifted by it
  (:class:`SpeakerStats` with ``std=None``: two clips cannot estimate a spread);
- ``session`` -- the other windows or takes of the same recording session (unlabelled)
  give the speaker's mean and standard deviation; each clip is standardised by them
  (:func:`leave_one_out_standardise` leaves the clip itself out).

The statistics are plain arrays kept by the caller (the dashboard keeps them in the
session only; nothing is written to disk). Feature vectors are ``(n, d)`` float rows of
one speaker; results have the same shape, float64.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MODES: tuple[str, ...] = ("none", "neutral", "session")
#: Fewest rows whose standard deviation a session normalisation trusts; with fewer,
#: only the mean is removed.
MIN_ROWS_FOR_STD: int = 8
#: Floor of a per-feature standard deviation (features constant for one speaker map to 0).
STD_FLOOR: float = 1e-6
#: Words the answer uses for each mode.
DESCRIPTIONS: dict[str, str] = {
    "none": "population normalisation (no calibration: the training speakers' statistics)",
    "neutral": "calibrated to this speaker's calm voice",
    "session": "normalised across the windows of this recording",
}


@dataclass(frozen=True)
class SpeakerStats:
    """One speaker's feature statistics: ``mean`` ``(d,)`` and, when enough rows were
    seen, ``std`` ``(d,)``; ``n`` rows, ``source`` (``neutral`` or ``session``),
    ``seconds`` of speech they came from (0 when unknown)."""

    mean: np.ndarray
    std: np.ndarray | None
    n: int
    source: str
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_features(cls, X: np.ndarray, source: str, *, seconds: float = 0.0,
                      with_std: bool | None = None) -> "SpeakerStats":
        """Statistics of rows ``X`` ``(n, d)`` (n >= 1). ``with_std`` defaults to
        ``n >= MIN_ROWS_FOR_STD`` for ``session`` and False for ``neutral`` (a few calm
        seconds give a mean only). Raises ValueError for no rows or a bad ``source``."""
        X = np.asarray(X, dtype=np.float64)
        if source not in ("neutral", "session"):
            raise ValueError(f"source must be 'neutral' or 'session', not {source!r}")
        if X.ndim != 2 or len(X) == 0:
            raise ValueError(f"need at least one feature row (n, d), got shape {X.shape}")
        if with_std is None:
            with_std = source == "session" and len(X) >= MIN_ROWS_FOR_STD
        std = np.maximum(X.std(axis=0), STD_FLOOR) if with_std else None
        return cls(X.mean(axis=0), std, int(len(X)), source, float(seconds))

    def apply(self, X: np.ndarray) -> np.ndarray:
        """Rows ``X`` ``(n, d)`` (or one ``(d,)``) minus the mean, divided by the std
        when there is one; same shape, float64."""
        X = np.asarray(X, dtype=np.float64)
        if X.shape[-1] != self.mean.shape[0]:
            raise ValueError(f"these statistics are for {self.mean.shape[0]} features, not {X.shape[-1]}")
        out = X - self.mean
        return out / self.std if self.std is not None else out

    def to_json(self) -> dict[str, object]:
        """What an answer reports about the calibration (no feature values)."""
        return {"mode": self.source, "clips": self.n, "seconds": round(self.seconds, 1),
                "with_std": self.std is not None}


def leave_one_out_standardise(X: np.ndarray) -> np.ndarray:
    """Each row of one speaker's ``X`` ``(n, d)`` standardised by the mean and std of the
    *other* rows (so a clip's own values never normalise it): ``(n, d)`` float64. With
    fewer than :data:`MIN_ROWS_FOR_STD` other rows only the mean is removed; a single
    row maps to zeros."""
    X = np.asarray(X, dtype=np.float64)
    n = len(X)
    if n == 0:
        return X.copy()
    if n == 1:
        return np.zeros_like(X)
    total, squares = X.sum(axis=0), (X ** 2).sum(axis=0)
    mean = (total - X) / (n - 1)
    if n - 1 < MIN_ROWS_FOR_STD:
        return X - mean
    var = np.maximum((squares - X ** 2) / (n - 1) - mean ** 2, 0.0)
    return (X - mean) / np.maximum(np.sqrt(var), STD_FLOOR)


def session_standardise(X: np.ndarray) -> np.ndarray:
    """The windows of one recording ``(n, d)`` standardised by their own statistics
    (:func:`leave_one_out_standardise`): serving's per-recording normalisation."""
    return leave_one_out_standardise(X)


def normalise_speakers(X: np.ndarray, speakers: np.ndarray, mode: str,
                       calibration_rows: np.ndarray | None = None) -> np.ndarray:
    """Rows of many speakers ``X`` ``(n, d)`` normalised per speaker (``speakers``
    ``(n,)``) as ``mode`` says: ``none`` returns ``X``; ``session`` applies
    :func:`leave_one_out_standardise` within each speaker; ``neutral`` shifts each
    speaker by the mean of that speaker's rows flagged in ``calibration_rows`` (boolean
    ``(n,)``: the calm takes given for calibration; a speaker without any keeps the
    population's view, unshifted). float64 ``(n, d)``. Labels are never used."""
    if mode not in MODES:
        raise ValueError(f"calibration must be one of {', '.join(MODES)}, not {mode!r}")
    X = np.asarray(X, dtype=np.float64)
    if mode == "none":
        return X
    speakers = np.asarray(speakers).astype(str)
    flagged = np.zeros(len(X), bool) if calibration_rows is None else np.asarray(calibration_rows, bool)
    out = X.copy()
    for speaker in np.unique(speakers):
        rows = np.flatnonzero(speakers == speaker)
        if mode == "session":
            out[rows] = leave_one_out_standardise(X[rows])
        elif flagged[rows].any():
            out[rows] = SpeakerStats.from_features(X[rows[flagged[rows]]], "neutral").apply(X[rows])
    return out
