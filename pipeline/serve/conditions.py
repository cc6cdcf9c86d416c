"""Know when it does not know: the recording conditions of an input and how far it lies
from the voices the model was trained on.

:func:`measure` estimates, from the sound alone, the active speech level (dBFS), the
signal-to-noise ratio (speech level over the noise floor between words, dB), how much
of the clip a voice fills, and how deep the level dips between syllables (one talker's
speech falls silent between syllables; several talkers at once fill each other's gaps,
a classic cue of babble: Krishnamurthy & Hansen 2009). :class:`FeatureReference` is
where the training clips lie in the model's feature space (mean, principal axes): the
distance of a new clip, against the spread of the training clips' own distances, says
when a voice is unlike anything the model learned from (a synthetic voice, a child, a
language far from the corpora).

:func:`assess` turns these into plain notes ("noisy: voices or noise fill the pauses", "noisy: 6 dB
signal-to-noise", "unusual voice: unlike the training voices"); an answer with a note
is never "sure" (:mod:`pipeline.serve.analysis`). The limits are set by hand from the
signal-processing rationale below. ``bench/voice_conditions.py --part measure``
(``bench/results/voice_conditions_measure.json``: 279 development clips, every 8th from
the 4th, none of those the bundle part uses) measured what they flag: 3.6% of the clips
as recorded (the same at -20 dB and peak-normalised), 60% under babble of 3-6 other
speakers at 0-20 dB SNR (the several-voices cue alone 24%) and 80% under white or pink
noise; raising :data:`MIN_SNR_DB` to 20 dB would flag 79% of babble but 13% of clean
studio takes. What the notes do to the shipped voice's answers is measured by
``--part bundle`` (``docs/real_models.md``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Below this estimated SNR (dB) the answer says "noisy" (the corpora are studio
#: recordings; the shipped voice was trained on no noisy copies).
MIN_SNR_DB: float = 15.0
#: Level dips (dB, 90th minus 10th percentile of 20 ms frame levels inside the voiced
#: stretch) shallower than this, with a voice heard in most of the clip, read as
#: several voices talking at once.
MIN_DIP_DB: float = 14.0
#: Share of the clip Silero VAD hears as speech above which shallow dips mean babble.
BABBLE_SPEECH_SHARE: float = 0.6
#: Quieter than this active speech level (dBFS) the sound is close to the converter's
#: own noise: "very quiet recording".
MIN_LEVEL_DB: float = -60.0
#: Lowest noise floor (dBFS) an SNR is measured against: the quantisation noise of
#: 16-bit audio (6.02 dB a bit). Digital silence between words (a decoder's, a
#: generated file's) would otherwise give SNRs of 200 dB that mean nothing.
NOISE_FLOOR_DB: float = -96.0
#: A clip farther from the training data than this quantile of the training clips' own
#: distances reads as an "unusual voice".
DISTANCE_QUANTILE: float = 0.99

#: The shallow-dip note. Measured, the cue fires as often for white or pink noise (30%)
#: as for babble (24%) (``bench/results/voice_conditions_measure.json``), so the note
#: says what was heard, pauses filled, not which of the two filled them.
FILLED_PAUSES = "noisy: voices or noise fill the pauses between words"
UNUSUAL = "unusual voice: unlike the voices the model learned from"


def pauses_filled(dip_db: Any, speech_share: Any, *, min_dip_db: float = MIN_DIP_DB,
                  share_at: float = BABBLE_SPEECH_SHARE) -> np.ndarray:
    """The several-voices cue, for one value or arrays: level dips shallower than
    ``min_dip_db`` while Silero hears speech in at least ``share_at`` of the sound
    (NaN, not measured, never counts). Boolean array of the broadcast shape."""
    dip, share = np.asarray(dip_db, dtype=np.float64), np.asarray(speech_share, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return (dip < min_dip_db) & (share >= share_at)


@dataclass
class FeatureReference:
    """Where training features lie: ``mean`` and ``scale`` ``(d,)`` (standardisation),
    ``components`` ``(k, d)`` principal axes of the standardised features with their
    ``variances`` ``(k,)``, ``residual`` (mean squared standardised value off those
    axes) and ``limit``: the :data:`DISTANCE_QUANTILE` of the training rows' own
    :meth:`distance`. Fitted by :meth:`fit` on the research side; pickled in a bundle."""

    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray
    variances: np.ndarray
    residual: float
    limit: float
    n: int = 0

    @classmethod
    def fit(cls, X: np.ndarray, k: int = 32, quantile: float = DISTANCE_QUANTILE) -> "FeatureReference":
        """From training rows ``X`` ``(n, d)``, n > k."""
        X = np.asarray(X, dtype=np.float64)
        mean, scale = X.mean(axis=0), np.maximum(X.std(axis=0), 1e-8)
        Z = (X - mean) / scale
        k = int(min(k, len(X) - 1, X.shape[1]))
        _, sing, vt = np.linalg.svd(Z, full_matrices=False)
        variances = np.maximum(sing[:k] ** 2 / (len(X) - 1), 1e-8)
        residual = Z - (Z @ vt[:k].T) @ vt[:k]
        ref = cls(mean, scale, vt[:k].copy(), variances, max(float(np.mean(residual ** 2)), 1e-8), 0.0, len(X))
        ref.limit = float(np.quantile(ref.distance(X), quantile))
        return ref

    def distance(self, X: np.ndarray) -> np.ndarray:
        """``(n,)`` distance of rows ``X`` ``(n, d)`` (or one ``(d,)``) from the training
        data: the root mean square of the whitened principal coordinates and of the
        residual off them (1 is typical of a training row)."""
        Z = (np.atleast_2d(np.asarray(X, dtype=np.float64)) - self.mean) / self.scale
        coords = Z @ self.components.T
        residual = Z - coords @ self.components
        whitened = np.concatenate([coords ** 2 / self.variances, residual ** 2 / self.residual], axis=1)
        return np.sqrt(whitened.mean(axis=1))


@dataclass
class Conditions:
    """What was measured about one input (dB values; None where not measured) and the
    plain ``notes`` that keep its answer from being "sure"."""

    speech_level_db: float
    snr_db: float
    speech_share: float
    dip_db: float
    distance: float | None = None
    distance_limit: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def unsure(self) -> bool:
        return bool(self.notes)

    def to_json(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None or not np.isfinite(v) else round(float(v), 2)

        return {"speech_level_db": r(self.speech_level_db), "snr_db": r(self.snr_db),
                "speech_share": r(self.speech_share), "dip_db": r(self.dip_db), "distance": r(self.distance),
                "distance_limit": r(self.distance_limit), "notes": list(self.notes)}


def measure(y: np.ndarray, sr: int, *, probabilities: np.ndarray | None = None) -> Conditions:
    """The sound's conditions (no notes yet): active speech level, SNR, speech share
    (Silero VAD, with ``probabilities`` when the caller has them) and level dips."""
    from pipeline.core import audio, vad

    y = np.asarray(y, dtype=np.float32).reshape(-1)
    levels = audio.frame_levels(y, sr)
    level = audio.speech_level_db(y, sr)
    if levels.size == 0 or not np.isfinite(level):
        return Conditions(float("-inf"), float("nan"), 0.0, float("nan"))
    floor = max(float(np.percentile(levels, 10)), NOISE_FLOOR_DB)
    voiced = levels[levels >= levels.max() - audio.SPEECH_RANGE_DB]
    dip = float(np.percentile(voiced, 90) - np.percentile(voiced, 10)) if voiced.size >= 10 else float("nan")
    try:
        scores = vad.speech_probabilities(y, sr) if probabilities is None else np.asarray(probabilities)
        share = float(np.mean(scores >= 0.5)) if np.size(scores) else 0.0
    except ImportError:
        share = float("nan")
    return Conditions(level, level - floor, share, dip)


def assess(y: np.ndarray, sr: int, features: np.ndarray | None = None,
           reference: FeatureReference | None = None, *,
           probabilities: np.ndarray | None = None) -> Conditions:
    """:func:`measure` plus the distance of ``features`` ``(d,)`` (the model's input for
    this sound) from ``reference``, and the notes for anything outside the trained range."""
    c = measure(y, sr, probabilities=probabilities)
    if np.isfinite(c.speech_level_db) and c.speech_level_db < MIN_LEVEL_DB:
        c.notes.append(f"very quiet recording ({c.speech_level_db:.0f} dBFS)")
    elif not np.isfinite(c.speech_level_db):  # a voice was heard, but no frame reaches the speech floor
        from pipeline.core.audio import SPEECH_FLOOR_DB

        c.notes.append(f"very quiet recording (below {SPEECH_FLOOR_DB:.0f} dBFS)")
    if pauses_filled(c.dip_db, c.speech_share):
        c.notes.append(FILLED_PAUSES)
    elif np.isfinite(c.snr_db) and c.snr_db < MIN_SNR_DB:
        c.notes.append(f"noisy: {c.snr_db:.0f} dB signal-to-noise")
    if features is not None and reference is not None:
        c.distance = float(reference.distance(features)[0])
        c.distance_limit = float(reference.limit)
        if c.distance > reference.limit:
            c.notes.append(UNUSUAL)
    return c
