"""Emotion vocabulary, named label sets and corpus code maps.

Class order always comes from a label set here, never from the file system, so a
model's output index means the same emotion in training, evaluation and serving.
"""
from __future__ import annotations

EMOTIONS: tuple[str, ...] = (
    "neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised",
)

LABEL_SETS: dict[str, tuple[str, ...]] = {
    # The report's default task: the six emotions RAVDESS speech and song share.
    "six": ("neutral", "calm", "happy", "sad", "angry", "fearful"),
    "eight": EMOTIONS,
    "four": ("neutral", "happy", "sad", "angry"),
    "five": ("neutral", "happy", "sad", "angry", "calm"),
    "five_no_neutral": ("calm", "happy", "sad", "angry", "fearful"),
    # The emotions SAVEE and RAVDESS have in common.
    "savee5": ("neutral", "happy", "angry", "fearful", "sad"),
    # The basic emotions RAVDESS, SAVEE, TESS, FER2013 and CK+ all name (Ekman's six
    # plus neutral): the real bundle's label set. RAVDESS calm is dropped from it
    # (measured against folding it into neutral: docs/real_models.md).
    "seven": ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"),
}

RAVDESS_EMOTION_CODES: dict[str, str] = {
    "01": "neutral", "02": "calm", "03": "happy", "04": "sad",
    "05": "angry", "06": "fearful", "07": "disgust", "08": "surprised",
}
RAVDESS_MODALITY_CODES: dict[str, str] = {"01": "audio-video", "02": "video", "03": "audio"}
RAVDESS_CHANNEL_CODES: dict[str, str] = {"01": "speech", "02": "song"}
RAVDESS_INTENSITY_CODES: dict[str, str] = {"01": "normal", "02": "strong"}
RAVDESS_STATEMENTS: dict[str, str] = {
    "01": "Kids are talking by the door",
    "02": "Dogs are sitting by the door",
}

SAVEE_EMOTION_CODES: dict[str, str] = {
    "a": "angry", "d": "disgust", "f": "fearful", "h": "happy",
    "n": "neutral", "sa": "sad", "su": "surprised",
}
SAVEE_SPEAKERS: tuple[str, ...] = ("DC", "JE", "JK", "KL")


def label_set(name: str) -> tuple[str, ...]:
    """Return the emotions of a named label set, in class-index order."""
    try:
        return LABEL_SETS[name]
    except KeyError:
        known = ", ".join(LABEL_SETS)
        raise ValueError(f"unknown label set {name!r}; choose one of: {known}") from None


CALM_POLICIES: tuple[str, ...] = ("drop", "neutral")
"""What :func:`map_emotion` does with ``calm`` for a label set that lacks it."""


def map_emotion(emotion: str, labels: str | tuple[str, ...], calm: str = "drop") -> str | None:
    """The class of label set ``labels`` that a corpus emotion counts as, or None (skip).

    ``emotion`` is a manifest emotion (the adapters already decode corpus codes: RAVDESS
    ``02`` -> ``calm``, SAVEE ``su`` -> ``surprised``, TESS ``ps`` -> ``surprised``, image
    folder ``fear`` -> ``fearful``); case and surrounding spaces are ignored. An emotion
    the set names maps to itself. RAVDESS ``calm``, which no other corpus has, is kept
    where the set names it; otherwise ``calm="drop"`` (default) skips the clip and
    ``calm="neutral"`` folds it into ``neutral`` (when the set names neutral). Anything
    else the set does not name (e.g. CK+ ``contempt``, ``disgust`` under ``six``) gives
    None, so a caller skips and counts the clip instead of mislabelling it.

    ``labels``: a label-set name, or the emotions themselves (a bundle fusing two
    branches names the emotions both share). Pure: no I/O. Raises :class:`ValueError`
    for an unknown label set or calm policy.
    """
    names = label_set(labels) if isinstance(labels, str) else tuple(labels)
    if calm not in CALM_POLICIES:
        raise ValueError(f"calm must be one of {', '.join(CALM_POLICIES)}, not {calm!r}")
    emotion = str(emotion).strip().lower()
    if emotion in names:
        return emotion
    if emotion == "calm" and calm == "neutral" and "neutral" in names:
        return "neutral"
    return None


def ravdess_emotion_code(emotion: str) -> str:
    """Two-digit RAVDESS code of an emotion name (inverse of RAVDESS_EMOTION_CODES)."""
    for code, name in RAVDESS_EMOTION_CODES.items():
        if name == emotion:
            return code
    raise ValueError(f"{emotion!r} is not a RAVDESS emotion")
