"""SAVEE adapter: speaker + emotion code + index -> one manifest row per clip.

SAVEE downloads come in several trees (``AudioData/DC/sa03.wav``,
``AudioVisualClip/KL/n12.avi``, flat ``ALL/DC_sa03.wav``, ...), so files are
discovered anywhere under the root and identified by name alone: the speaker from a
``DC_`` prefix or the nearest ``DC|JE|JK|KL`` parent folder, then an emotion code
(``a d f h n sa su``) and a two-digit sentence index. The audio-only wav and the
video of the same clip become one row.

SAVEE has no intensity, channel or repetition; rows carry ``normal``, ``speech`` and
``01``, and ``statement`` holds the sentence index, so every clip is its own take.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pandas as pd

from pipeline.core.corpora.manifest import InvalidName, ScanSummary, from_rows, has_content
from pipeline.core.corpora.ravdess import iter_files
from pipeline.core.labels import SAVEE_EMOTION_CODES, SAVEE_SPEAKERS

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS: tuple[str, ...] = (".wav",)
VIDEO_EXTENSIONS: tuple[str, ...] = (".avi", ".mp4")
MAX_INDEX: dict[str, int] = {code: 30 if code == "n" else 15 for code in SAVEE_EMOTION_CODES}
"""15 sentences per emotion, 30 for neutral."""

_NAME = re.compile(r"^(?:(?P<speaker>[A-Za-z]{2})_)?(?P<code>[A-Za-z]{1,2})(?P<index>\d{2})$")

BAD_NAME = "bad name"
UNKNOWN_CODE = "unknown code"
UNKNOWN_SPEAKER = "unknown speaker"
SPEAKER_FOLDER = "speaker differs from folder"
INDEX_RANGE = "sentence index out of range"
EXTENSION = "unexpected extension"
DUPLICATE = "duplicate file"
UNREADABLE_FOLDER = "unreadable folder"


def _folder_speaker(path: str | os.PathLike[str]) -> str | None:
    """The nearest ancestor folder named like a SAVEE speaker (``DC``, ``JE``...)."""
    for part in reversed(Path(path).parent.parts):
        if part.upper() in SAVEE_SPEAKERS:
            return part.upper()
    return None


def parse_name(path: str | os.PathLike[str]) -> tuple[str, str, str]:
    """``(speaker, emotion code, two-digit index)`` of a SAVEE file path.

    Accepts ``DC/sa03.wav``, ``DC_sa03.wav`` and ``AudioData/dc/SA03.wav``. Raises
    :class:`InvalidName` (reason: bad name, unknown code, unknown speaker, speaker
    differs from folder, sentence index out of range).
    """
    path = Path(path)
    match = _NAME.match(path.stem)
    if not match:
        raise InvalidName(BAD_NAME, str(path))
    code = match["code"].lower()
    if code not in SAVEE_EMOTION_CODES:
        raise InvalidName(UNKNOWN_CODE, str(path))
    folder = _folder_speaker(path)
    prefix = match["speaker"].upper() if match["speaker"] else None
    if prefix is not None and prefix not in SAVEE_SPEAKERS:
        raise InvalidName(UNKNOWN_SPEAKER, str(path))
    if prefix and folder and prefix != folder:
        raise InvalidName(SPEAKER_FOLDER, str(path))
    speaker = prefix or folder
    if speaker is None:
        raise InvalidName(UNKNOWN_SPEAKER, str(path))
    index = int(match["index"])
    if not 1 <= index <= MAX_INDEX[code]:
        raise InvalidName(INDEX_RANGE, str(path))
    return speaker, code, match["index"]


def clip_id(speaker: str, code: str, index: str) -> str:
    """Manifest id of a SAVEE clip, e.g. ``savee:DC:sa03``."""
    return f"savee:{speaker}:{code}{index}"


def scan(root: str | os.PathLike[str]) -> tuple[pd.DataFrame, ScanSummary]:
    """Index a SAVEE folder (any layout) into a Manifest, one row per clip.

    ``audio_path`` = the wav, else the video (it has a sound track); ``video_path``
    = the avi/mp4. Files that are not SAVEE clips are skipped and counted.
    """
    summary = ScanSummary()
    clips: dict[tuple[str, str, str], dict[str, str]] = {}
    base = os.path.dirname(os.path.abspath(root))
    for entry in iter_files(root, lambda path: summary.skip(UNREADABLE_FOLDER, path)):
        summary.n_files_seen += 1
        ext = os.path.splitext(entry.name)[1].lower()
        if ext in AUDIO_EXTENSIONS:
            role = "audio"
        elif ext in VIDEO_EXTENSIONS:
            role = "video"
        else:
            summary.skip(EXTENSION, entry.path)
            continue
        try:
            # relative to root's parent, so a root that *is* a speaker folder counts
            key = parse_name(os.path.relpath(os.path.abspath(entry.path), base))
        except InvalidName as err:
            summary.skip(err.reason, entry.path)
            continue
        if not has_content(entry, summary):
            continue
        slots = clips.setdefault(key, {})
        if role in slots:
            summary.skip(DUPLICATE, entry.path)
            continue
        slots[role] = os.path.abspath(entry.path)

    rows = []
    for (speaker, code, index) in sorted(clips):
        slots = clips[(speaker, code, index)]
        rows.append({
            "clip_id": clip_id(speaker, code, index),
            "corpus": "savee",
            "actor": speaker,
            "gender": "male",
            "emotion": SAVEE_EMOTION_CODES[code],
            "intensity": "normal",
            "channel": "speech",
            "statement": index,
            "repetition": "01",
            "audio_path": slots.get("audio") or slots.get("video", ""),
            "video_path": slots.get("video", ""),
            "landmarks_path": "",
        })
    frame = from_rows(rows, summary)
    log.info("%s: %d SAVEE clips from %d files (%d skipped)", root, len(frame),
             summary.n_files_seen, summary.n_skipped)
    return frame, summary
