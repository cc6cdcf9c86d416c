"""The voice answer's last steps: normalise to the speaker, predict, check the conditions.

:func:`answer_windows` is what the prediction path (:mod:`pipeline.serve.inference`)
calls once a clip's windows are featurized. It chooses the normalisation
(:mod:`pipeline.core.calibration`), in this order:

1. ``neutral`` -- the person calibrated to their voice (a few calm seconds, kept by the
   caller, e.g. in the dashboard session) and the bundle has a model for it;
2. ``session`` -- a long recording: at least :data:`SESSION_MIN_WINDOWS` windows heard a
   voice, and each is standardised by the others (:func:`~pipeline.core.calibration.session_standardise`);
3. ``none`` -- the population's statistics (one short clip from a stranger).

Then the bundle's model for that mode answers (with the mode's held-out temperature),
and, for a bundle that records where its training voices lie, every answering window's
conditions are checked (:func:`pipeline.serve.conditions.assess`): a note there keeps
the answer from being "sure". Each window's answer says which normalisation it used.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from pipeline.core.calibration import DESCRIPTIONS, SpeakerStats, session_standardise

#: Fewest answering windows of one recording that normalise each other ("session").
SESSION_MIN_WINDOWS: int = 4


@dataclass
class WindowAnswer:
    """One window's probabilities ``(C,)``, normalisation mode, notes and conditions;
    ``features``: the row the mode's model was given (after the normalisation), which
    :mod:`pipeline.serve.explain` reads."""

    proba: np.ndarray
    mode: str
    notes: list[str] = field(default_factory=list)
    conditions: dict[str, Any] = field(default_factory=dict)
    features: np.ndarray | None = None

    @property
    def normalisation(self) -> str:
        return DESCRIPTIONS[self.mode]


def choose_mode(branch: Any, n_answering: int, calibration: SpeakerStats | None) -> str:
    """The normalisation an answer uses (see the module docstring)."""
    modes = set(getattr(branch, "calibrated", {}) or {})
    if calibration is not None and "neutral" in modes:
        return "neutral"
    if n_answering >= SESSION_MIN_WINDOWS and "session" in modes:
        return "session"
    return "none"


def answer_windows(branch: Any, features: np.ndarray, pieces: Sequence[np.ndarray], answering: Sequence[bool],
                   calibration: SpeakerStats | None = None, *,
                   probabilities: Sequence[np.ndarray | None] | None = None) -> list[WindowAnswer | None]:
    """Answers for windows ``features`` ``(n, d)`` of one recording; ``pieces`` their
    sound (for the conditions), ``answering`` which windows heard enough voice (the
    others get None), ``probabilities`` each piece's Silero VAD scores when known."""
    from pipeline.serve import conditions

    X = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    rows = [i for i, ok in enumerate(answering) if ok]
    out: list[WindowAnswer | None] = [None] * len(X)
    if not rows:
        return out
    mode = choose_mode(branch, len(rows), calibration)
    if mode == "neutral":
        Xm = calibration.apply(X[rows])  # type: ignore[union-attr]
    elif mode == "session":
        Xm = session_standardise(X[rows])
    else:
        Xm = X[rows]
    proba = branch.predict_proba(Xm.astype(np.float32), mode)
    reference = getattr(branch, "reference", None)
    sr = branch.params.sample_rate
    for j, i in enumerate(rows):
        answer = WindowAnswer(proba[j], mode, features=Xm[j])
        if reference is not None:  # the bundle knows its trained range: check the input against it
            c = conditions.assess(pieces[i], sr, X[i], reference,
                                  probabilities=None if probabilities is None else probabilities[i])
            answer.notes, answer.conditions = list(c.notes), c.to_json()
        out[i] = answer
    return out


def calibrate_to_voice(branch: Any, features: np.ndarray, seconds: float) -> SpeakerStats:
    """"Calibrate to my voice": the statistics of a speaker's calm recording, from its
    windows' features ``(n, d)`` (a mean: a few seconds cannot estimate a spread).
    Raises ValueError when the branch has no ``neutral`` model."""
    if "neutral" not in (getattr(branch, "calibrated", {}) or {}):
        raise ValueError("this voice model has no calibrated variant: calibration would not be used")
    X = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    return SpeakerStats.from_features(X, "neutral", seconds=seconds)


#: Least speech (seconds) a calm recording must hold to calibrate with.
MIN_CALIBRATION_SECONDS: float = 2.0


def voice_stats(src: Any, bundle: Any) -> SpeakerStats:
    """"Calibrate to my voice" from a recording of the speaker talking calmly (a path or
    the file's bytes): decoded and featurized exactly as an answer's windows are, then
    :func:`calibrate_to_voice`. Raises :class:`pipeline.core.media.MediaError` for an
    unreadable file and ValueError (a plain reason) when the bundle cannot use a
    calibration, no voice is heard, or less than :data:`MIN_CALIBRATION_SECONDS` of it."""
    import dataclasses

    from pipeline.core import audio
    from pipeline.core.media import load_audio

    branch = getattr(bundle, "audio", None)
    if branch is None or "neutral" not in (branch.calibrated or {}):
        raise ValueError("this bundle's voice model cannot be calibrated (it has no calibrated variant)")
    params = branch.params
    sr = params.sample_rate
    y = load_audio(src, sr, max_seconds=60.0)
    gated = params.voice_activity == "vad"
    reason = audio.no_speech_reason(y, sr) if gated else ("" if not audio.is_silent(y) else "silent")
    if reason:
        raise ValueError(f"no voice heard in the calibration recording ({reason})")
    voice = audio.voice_activity(y, sr, "vad" if gated else None)
    if voice.seconds() < MIN_CALIBRATION_SECONDS:
        raise ValueError(f"the calibration recording holds {voice.seconds():.1f} s of speech; say a few calm "
                         f"sentences (at least {MIN_CALIBRATION_SECONDS:.0f} s)")
    span = params.duration
    starts = np.arange(0.0, max(len(y) / sr - 0.5 * span, 0.0) + 1e-9, span) if len(y) / sr > 1.5 * span else [0.0]
    rows = []
    for start in starts:
        piece = y[int(start * sr):int((start + span) * sr)] if len(starts) > 1 else y
        if voice.seconds(start, start + span) >= audio.min_speech_seconds(params) or len(starts) == 1:
            rows.append(audio.featurize(piece, dataclasses.replace(params, offset=0.0), branch.input_kind))
    return calibrate_to_voice(branch, np.stack(rows), voice.seconds())
