"""EmoDB adapter (Berlin Database of Emotional Speech): speaker, text and emotion from the
file name.

Burkhardt, Paeschke, Rolfes, Sendlmeier & Weiss 2005, "A database of German emotional
speech" (Interspeech): ten actors (five female, five male) speak ten everyday German
sentences in seven emotions, 535 wav files at 16 kHz in ``wav/``. A name such as
``03a01Fa.wav`` reads (the corpus documentation, "Information about the database"):

- characters 1-2, the speaker: ``03`` male 31, ``08`` female 34, ``09`` female 21,
  ``10`` male 32, ``11`` male 26, ``12`` male 30, ``13`` female 32, ``14`` female 35,
  ``15`` male 25, ``16`` female 31 (:data:`SPEAKERS`);
- characters 3-5, the text (``a01``-``a07``, ``b01``-``b03``, ``b09``, ``b10``);
- character 6, the emotion, a German initial (:data:`EMOTION_LETTERS`): ``W`` Ärger
  (anger), ``L`` Langeweile (boredom), ``E`` Ekel (disgust), ``A`` Angst (fear), ``F``
  Freude (happiness), ``T`` Trauer (sadness), ``N`` neutral;
- character 7 and on, the version (``a``, ``b``, ...).

Boredom is no emotion of this project's vocabulary: those clips are skipped and counted
("emotion not in the vocabulary: boredom"), as are names that do not parse. Rows:
``actor`` = speaker, ``statement`` = text code, ``repetition`` = version,
``intensity`` ``normal``, ``channel`` ``speech``.
"""
from __future__ import annotations

import os
import re

import pandas as pd

from pipeline.core.corpora.manifest import InvalidName, ScanSummary
from pipeline.core.corpora.named import scan_named

#: Speaker code -> gender (the corpus documentation's speaker table).
SPEAKERS: dict[str, str] = {"03": "male", "08": "female", "09": "female", "10": "male", "11": "male",
                            "12": "male", "13": "female", "14": "female", "15": "male", "16": "female"}
#: Emotion letter (German initial) -> project emotion; ``None``: outside the vocabulary.
EMOTION_LETTERS: dict[str, str | None] = {"W": "angry", "L": None, "E": "disgust", "A": "fearful",
                                          "F": "happy", "T": "sad", "N": "neutral"}
AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac")

BAD_NAME = "bad name"
UNKNOWN_SPEAKER = "unknown speaker"
UNKNOWN_EMOTION = "unknown emotion"
BOREDOM = "emotion not in the vocabulary: boredom"

_NAME = re.compile(r"^(\d\d)([ab]\d\d)([A-Z])([a-z]+)$")


def parse_name(name: str) -> dict[str, str]:
    """Manifest fields of an EmoDB file name: ``03a01Fa.wav`` -> actor ``03``, gender
    ``male``, statement ``a01``, emotion ``happy``, repetition ``a`` (plus ``take``, the
    stem). Raises :class:`InvalidName` (bad name, unknown speaker or emotion, boredom)."""
    stem = os.path.splitext(os.path.basename(name))[0]
    match = _NAME.match(stem)
    if not match:
        raise InvalidName(BAD_NAME, name)
    speaker, text, letter, version = match.groups()
    if speaker not in SPEAKERS:
        raise InvalidName(UNKNOWN_SPEAKER, name)
    if letter not in EMOTION_LETTERS:
        raise InvalidName(UNKNOWN_EMOTION, name)
    emotion = EMOTION_LETTERS[letter]
    if emotion is None:
        raise InvalidName(BOREDOM, name)
    return {"take": stem, "actor": speaker, "gender": SPEAKERS[speaker], "emotion": emotion,
            "intensity": "normal", "channel": "speech", "statement": text, "repetition": version}


def scan(root: str | os.PathLike[str]) -> tuple[pd.DataFrame, ScanSummary]:
    """Index an EmoDB folder (any layout: ``wav/`` or flat) into a Manifest."""
    return scan_named(root, "emodb", AUDIO_EXTENSIONS, parse_name)
