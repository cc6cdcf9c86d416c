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


def ravdess_emotion_code(emotion: str) -> str:
    """Two-digit RAVDESS code of an emotion name (inverse of RAVDESS_EMOTION_CODES)."""
    for code, name in RAVDESS_EMOTION_CODES.items():
        if name == emotion:
            return code
    raise ValueError(f"{emotion!r} is not a RAVDESS emotion")
