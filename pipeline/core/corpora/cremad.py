"""CREMA-D adapter (Crowd-sourced Emotional Multimodal Actors Dataset): actor, sentence,
emotion and level from the file name.

Cao, Cooper, Keutmann, Gur, Nenkova & Verma 2014, IEEE Transactions on Affective
Computing 5(4): 91 actors (48 male, 43 female, 20-74 years) speak 12 sentences in six
emotions, 7,442 clips (``AudioWAV/``, 16 kHz). A name such as ``1001_DFA_ANG_XX.wav``
reads (the corpus README):

- the actor id, ``1001``-``1091``;
- the sentence code (:data:`SENTENCES`: ``DFA`` "Don't forget a jacket", ``IEO`` "It's
  eleven o'clock", ...);
- the emotion (:data:`EMOTION_CODES`): ``ANG`` anger, ``DIS`` disgust, ``FEA`` fear,
  ``HAP`` happy, ``NEU`` neutral, ``SAD`` sad;
- the level (:data:`LEVELS`): ``LO`` low, ``MD`` medium, ``HI`` high, ``XX`` unspecified.

Gender is not in the name: it comes from the corpus's ``VideoDemographics.csv``
(columns ``ActorID``, ``Sex``) when that file lies anywhere under the root, else it is
``unknown``. Rows: ``intensity`` = level (``low``/``medium``/``high``/``unspecified``),
``channel`` ``speech``, ``repetition`` ``01``.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pandas as pd

from pipeline.core.corpora.manifest import InvalidName, ScanSummary
from pipeline.core.corpora.named import scan_named

log = logging.getLogger(__name__)

EMOTION_CODES: dict[str, str] = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy",
                                 "NEU": "neutral", "SAD": "sad"}
LEVELS: dict[str, str] = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
SENTENCES: dict[str, str] = {
    "IEO": "It's eleven o'clock", "TIE": "That is exactly what happened", "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about", "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold", "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment", "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before", "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes"}
AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".mp3")
DEMOGRAPHICS = "VideoDemographics.csv"

BAD_NAME = "bad name"
UNKNOWN_SENTENCE = "unknown sentence"
UNKNOWN_EMOTION = "unknown emotion"
UNKNOWN_LEVEL = "unknown level"

_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def parse_name(name: str) -> dict[str, str]:
    """Manifest fields of a CREMA-D file name: ``1001_DFA_ANG_XX.wav`` -> actor ``1001``,
    statement ``DFA``, emotion ``angry``, intensity ``unspecified`` (gender ``unknown``:
    :func:`scan` fills it from the demographics table). Raises :class:`InvalidName`."""
    stem = os.path.splitext(os.path.basename(name))[0]
    match = _NAME.match(stem.upper())
    if not match:
        raise InvalidName(BAD_NAME, name)
    actor, sentence, emotion, level = match.groups()
    if sentence not in SENTENCES:
        raise InvalidName(UNKNOWN_SENTENCE, name)
    if emotion not in EMOTION_CODES:
        raise InvalidName(UNKNOWN_EMOTION, name)
    if level not in LEVELS:
        raise InvalidName(UNKNOWN_LEVEL, name)
    return {"take": stem.upper(), "actor": actor, "gender": "unknown", "emotion": EMOTION_CODES[emotion],
            "intensity": LEVELS[level], "channel": "speech", "statement": sentence, "repetition": "01"}


def genders(root: str | os.PathLike[str]) -> dict[str, str]:
    """Actor id -> ``male``/``female`` from the first ``VideoDemographics.csv`` under
    ``root`` (empty when there is none or it cannot be read)."""
    for path in sorted(Path(root).rglob(DEMOGRAPHICS)):
        try:
            table = pd.read_csv(path, dtype=str)
            return {str(a).strip(): str(s).strip().lower() for a, s in zip(table["ActorID"], table["Sex"])
                    if str(s).strip().lower() in ("male", "female")}
        except (OSError, KeyError, ValueError, pd.errors.ParserError) as err:
            log.warning("cannot read %s (%s): genders unknown", path, err)
    return {}


def scan(root: str | os.PathLike[str]) -> tuple[pd.DataFrame, ScanSummary]:
    """Index a CREMA-D folder (any layout) into a Manifest; genders from its demographics."""
    frame, summary = scan_named(root, "cremad", AUDIO_EXTENSIONS, parse_name)
    known = genders(root)
    if known and len(frame):
        frame["gender"] = frame["actor"].map(known).fillna("unknown")
    return frame, summary
