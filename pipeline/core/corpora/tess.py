"""TESS adapter: speaker + word + emotion in the file name -> one manifest row per clip.

The Toronto emotional speech set (Dupuis & Pichora-Fuller, 2010, University of
Toronto, CC BY-NC-ND 4.0): two female speakers, ``OAF`` (older, 64) and ``YAF``
(younger, 26), each saying "Say the word ___" with 200 target words in 7 emotions:
2,800 wav files named ``OAF_back_angry.wav``, ``YAF_youth_ps.wav``.

Downloads differ in their folders (``OAF_angry``, ``OAF_Pleasant_surprise``,
``YAF_pleasant_surprised``, ``TESS Toronto emotional speech set data/...``, flat), so
the folders are ignored: every clip is identified by its file name alone,
case-insensitively, tolerating repeated underscores or spaces between the parts and an
upper-case extension (``YAF__date_Fear.WAV``). Emotion tokens: ``angry``, ``disgust``,
``fear``, ``happy``, ``neutral``, ``sad`` and, for pleasant surprise, ``ps``,
``pleasant_surprise`` or ``pleasant_surprised`` (:data:`EMOTION_TOKENS`). Files that
do not parse are skipped and counted, never raised.

Rows: ``actor`` = speaker (``OAF``/``YAF``), ``gender`` = female, ``statement`` = the
target word, ``intensity`` ``normal``, ``channel`` ``speech``, ``repetition`` ``01``;
every clip is its own take.
"""
from __future__ import annotations

import logging
import os
import re

import pandas as pd

from pipeline.core.corpora.manifest import InvalidName, ScanSummary, from_rows, has_content
from pipeline.core.corpora.ravdess import iter_files

log = logging.getLogger(__name__)

SPEAKERS: tuple[str, ...] = ("OAF", "YAF")
"""Older and younger adult female speaker."""

#: Emotion token of a file name (lower case, parts joined by ``_``) -> project emotion.
EMOTION_TOKENS: dict[str, str] = {
    "angry": "angry",
    "disgust": "disgust",
    "fear": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "ps": "surprised",
    "pleasant_surprise": "surprised",
    "pleasant_surprised": "surprised",
}

AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac")

_SEP = re.compile(r"[_\s]+")

BAD_NAME = "bad name"
UNKNOWN_SPEAKER = "unknown speaker"
UNKNOWN_EMOTION = "unknown emotion"
HIDDEN = "hidden file"
EXTENSION = "unexpected extension"
DUPLICATE = "duplicate file"
UNREADABLE_FOLDER = "unreadable folder"


def parse_name(name: str) -> tuple[str, str, str]:
    """``(speaker, word, emotion)`` of a TESS file name (with or without extension).

    ``OAF_back_angry.wav`` -> ``("OAF", "back", "angry")``; ``yaf__youth_PS.WAV`` ->
    ``("YAF", "youth", "surprised")``. The emotion is the project's name (``fear`` ->
    ``fearful``, ``ps`` -> ``surprised``), the word is lower case. Raises
    :class:`InvalidName` (reason: bad name, unknown speaker, unknown emotion).
    """
    base = os.path.basename(name)
    stem, ext = os.path.splitext(base)
    if ext.lower() not in AUDIO_EXTENSIONS:
        stem = base  # no (known) extension: the whole name is the stem
    parts = [p for p in _SEP.split(stem.strip().lower()) if p]
    if len(parts) < 3:
        raise InvalidName(BAD_NAME, name)
    speaker, word, token = parts[0].upper(), parts[1], "_".join(parts[2:])
    if speaker not in SPEAKERS:
        raise InvalidName(UNKNOWN_SPEAKER, name)
    if not word.isalpha():
        raise InvalidName(BAD_NAME, name)
    if token not in EMOTION_TOKENS:
        raise InvalidName(UNKNOWN_EMOTION, name)
    return speaker, word, EMOTION_TOKENS[token]


def clip_id(speaker: str, word: str, emotion: str) -> str:
    """Manifest id of a TESS clip, e.g. ``tess:OAF:back:angry`` (project emotion name)."""
    return f"tess:{speaker}:{word}:{emotion}"


def scan(root: str | os.PathLike[str]) -> tuple[pd.DataFrame, ScanSummary]:
    """Index a TESS folder (any layout) into a Manifest, one row per clip.

    Walks ``root`` recursively; hidden files (e.g. macOS ``._`` forks), non-audio
    files, names that do not parse, empty files and second copies of a clip (the same
    speaker, word and emotion, e.g. ``ps`` and ``pleasant_surprise`` spellings or two
    unpacked archives; the first in sorted path order wins) are skipped and counted in
    the returned :class:`ScanSummary`. Rows are sorted by speaker, emotion, word.
    """
    summary = ScanSummary()
    clips: dict[tuple[str, str, str], str] = {}
    for entry in iter_files(root, lambda path: summary.skip(UNREADABLE_FOLDER, path)):
        summary.n_files_seen += 1
        name = entry.name
        if name.startswith("."):
            summary.skip(HIDDEN, entry.path)
            continue
        if os.path.splitext(name)[1].lower() not in AUDIO_EXTENSIONS:
            summary.skip(EXTENSION, entry.path)
            continue
        try:
            key = parse_name(name)
        except InvalidName as err:
            summary.skip(err.reason, entry.path)
            continue
        if not has_content(entry, summary):
            continue
        if key in clips:
            summary.skip(DUPLICATE, entry.path)
            continue
        clips[key] = os.path.abspath(entry.path)

    rows = []
    for speaker, word, emotion in sorted(clips, key=lambda k: (k[0], k[2], k[1])):
        rows.append({
            "clip_id": clip_id(speaker, word, emotion),
            "corpus": "tess",
            "actor": speaker,
            "gender": "female",
            "emotion": emotion,
            "intensity": "normal",
            "channel": "speech",
            "statement": word,
            "repetition": "01",
            "audio_path": clips[(speaker, word, emotion)],
            "video_path": "",
            "landmarks_path": "",
        })
    frame = from_rows(rows, summary)
    log.info("%s: %d TESS clips from %d files (%d skipped)", root, len(frame),
             summary.n_files_seen, summary.n_skipped)
    return frame, summary
