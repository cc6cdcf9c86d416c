"""RAVDESS adapter: 7-part file names -> one manifest row per take.

RAVDESS ships each performance ("take") up to four times: audio-only ``.wav`` (03;
``.flac`` is accepted alike, for copies re-encoded losslessly to save space),
full audio-video ``.mp4`` (01), video-only ``.mp4`` (02) and, in the separate facial
landmark tracking release, an OpenFace ``.csv`` named like the video. All of them
describe the same take, so they become one row; splitting by row can then never let a
take straddle train and test.

The synthetic corpus uses the same layout and names; a ``SYNTHETIC.json`` file at its
root marks it, and its rows are labelled corpus ``synthetic``.

Nothing is decoded here: the scan reads names and sizes only, so indexing the full
corpus layout (7,356 media files + 2,452 landmark CSVs) takes about 0.25 s.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd

from pipeline.core.corpora.manifest import InvalidName, ScanSummary, from_rows, has_content
from pipeline.core.labels import (
    RAVDESS_CHANNEL_CODES,
    RAVDESS_EMOTION_CODES,
    RAVDESS_INTENSITY_CODES,
    RAVDESS_MODALITY_CODES,
    RAVDESS_STATEMENTS,
)

log = logging.getLogger(__name__)

SYNTHETIC_MARKER = "SYNTHETIC.json"
"""File the synthetic-corpus generator writes at its root."""

EXTENSIONS: dict[str, tuple[str, ...]] = {
    # extension -> modality codes a file of that kind may carry
    ".wav": ("03",),
    ".flac": ("03",),  # lossless re-encodings of the audio-only wav, same names
    ".mp4": ("01", "02"),
    ".csv": ("01", "02"),  # landmark tracks are named after the AV or video-only file
}
AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac")
"""Audio-only files (modality 03); a take's wav and flac copies are duplicates."""
REPETITIONS: tuple[str, ...] = ("01", "02")

_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
_ACTOR_DIR = re.compile(r"^Actor_(\d{1,2})$", re.IGNORECASE)

# Skip reasons (keys of ScanSummary.skipped), kept in one place for tests and reports.
BAD_NAME = "bad name"
UNKNOWN_CODE = "unknown code"
NEUTRAL_STRONG = "neutral with strong intensity"
EXTENSION = "unexpected extension"
MODALITY_MISMATCH = "modality does not match extension"
ACTOR_FOLDER = "actor differs from Actor_NN folder"
DUPLICATE = "duplicate file"
UNREADABLE_FOLDER = "unreadable folder"
NO_MEDIA = "landmarks without audio or video"


@dataclass(frozen=True)
class RavdessName:
    """The seven two-digit codes of a RAVDESS file name (``MM-VV-EE-II-SS-RR-AA``)."""

    modality: str
    channel: str
    emotion: str
    intensity: str
    statement: str
    repetition: str
    actor: str

    @property
    def take(self) -> str:
        """The six fields after the modality: identical for every file of one take."""
        return "-".join((self.channel, self.emotion, self.intensity, self.statement,
                         self.repetition, self.actor))

    def labels(self) -> dict[str, str]:
        """Decoded manifest fields (statement and repetition stay two-digit codes)."""
        return {
            "actor": self.actor,
            "gender": "male" if int(self.actor) % 2 else "female",
            "emotion": RAVDESS_EMOTION_CODES[self.emotion],
            "intensity": RAVDESS_INTENSITY_CODES[self.intensity],
            "channel": RAVDESS_CHANNEL_CODES[self.channel],
            "statement": self.statement,
            "repetition": self.repetition,
        }


def parse_name(name: str, *, any_actor: bool = False) -> RavdessName:
    """Parse a RAVDESS file name (with or without extension) into its codes.

    ``any_actor`` accepts actors 01-99 (the synthetic corpus may have more than 24).
    Raises :class:`InvalidName` whose ``reason`` says why the name is not usable.
    """
    stem = name.rsplit("/", 1)[-1]
    stem = stem.split(".", 1)[0] if "." in stem else stem
    match = _NAME.match(stem)
    if not match:
        raise InvalidName(BAD_NAME, name)
    parsed = RavdessName(*match.groups())
    actor = int(parsed.actor)
    actor_ok = 1 <= actor <= (99 if any_actor else 24)
    known = (parsed.modality in RAVDESS_MODALITY_CODES
             and parsed.channel in RAVDESS_CHANNEL_CODES
             and parsed.emotion in RAVDESS_EMOTION_CODES
             and parsed.intensity in RAVDESS_INTENSITY_CODES
             and parsed.statement in RAVDESS_STATEMENTS
             and parsed.repetition in REPETITIONS
             and actor_ok)
    if not known:
        raise InvalidName(UNKNOWN_CODE, name)
    if parsed.emotion == "01" and parsed.intensity == "02":
        raise InvalidName(NEUTRAL_STRONG, name)
    return parsed


def is_synthetic(root: str | os.PathLike[str]) -> bool:
    """True when ``root`` holds the synthetic generator's marker file."""
    return (Path(root) / SYNTHETIC_MARKER).is_file()


def iter_files(root: str | os.PathLike[str],
               on_error: Callable[[str], None] | None = None) -> Iterator[os.DirEntry[str]]:
    """Every regular file under ``root`` (recursively, sorted, hidden folders skipped).

    Hidden folders (``.fetch/`` download state, ``.git``) never hold corpus files.
    Symlinked folders are followed once (a link cycle cannot loop). Sorting makes
    "first of two duplicates wins" deterministic. A folder that cannot be listed is
    reported to ``on_error`` and skipped.
    """
    stack = [str(root)]
    visited: set[str] = set()
    while stack:
        folder = stack.pop()
        real = os.path.realpath(folder)
        if real in visited:
            continue
        visited.add(real)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as err:
            log.warning("cannot list %s: %s", folder, err)
            if on_error is not None:
                on_error(folder)
            continue
        subdirs = []
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                if not entry.name.startswith("."):
                    subdirs.append(entry.path)
                continue
            yield entry
        stack.extend(reversed(subdirs))


def _folder_actor(path: str) -> int | None:
    """Actor number of the enclosing ``Actor_NN`` folder, if the parent is one."""
    match = _ACTOR_DIR.match(os.path.basename(os.path.dirname(path)))
    return int(match.group(1)) if match else None


def _role(ext: str, modality: str) -> str:
    """Which slot of a take a file fills: ``wav`` (wav or flac), ``av``, ``vo`` or ``lm``."""
    if ext == ".csv":
        return "lm"
    if ext in AUDIO_EXTENSIONS:
        return "wav"
    return "av" if modality == "01" else "vo"


def scan(root: str | os.PathLike[str]) -> tuple[pd.DataFrame, ScanSummary]:
    """Index a RAVDESS-layout folder into a Manifest (one row per take).

    Walks ``root`` recursively (``Actor_NN`` folders or any other unpacked layout).
    Per take: ``audio_path`` = the audio-only wav or flac, else the full-AV mp4;
    ``video_path`` = the full-AV mp4, else the video-only mp4; ``landmarks_path`` =
    the landmark CSV of the take. Stray, malformed or empty files are skipped and
    counted in the returned :class:`ScanSummary`, never raised.
    """
    root = Path(root)
    synthetic = is_synthetic(root)
    corpus = "synthetic" if synthetic else "ravdess"
    summary = ScanSummary()
    takes: dict[str, dict[str, str]] = {}
    parsed_by_take: dict[str, RavdessName] = {}
    marker = (root / SYNTHETIC_MARKER).resolve()

    for entry in iter_files(root, lambda path: summary.skip(UNREADABLE_FOLDER, path)):
        if synthetic and Path(entry.path).resolve() == marker:
            continue
        summary.n_files_seen += 1
        name = entry.name
        ext = os.path.splitext(name)[1].lower()
        if ext not in EXTENSIONS:
            summary.skip(EXTENSION, entry.path)
            continue
        try:
            parsed = parse_name(name[: -len(ext)], any_actor=synthetic)
        except InvalidName as err:
            summary.skip(err.reason, entry.path)
            continue
        if parsed.modality not in EXTENSIONS[ext]:
            summary.skip(MODALITY_MISMATCH, entry.path)
            continue
        folder_actor = _folder_actor(entry.path)
        if folder_actor is not None and folder_actor != int(parsed.actor):
            summary.skip(ACTOR_FOLDER, entry.path)
            continue
        if not has_content(entry, summary):
            continue
        role = _role(ext, parsed.modality)
        slots = takes.setdefault(parsed.take, {})
        if role in slots:
            # e.g. the same archive unpacked twice, or a csv named 01 and 02
            summary.skip(DUPLICATE, entry.path)
            continue
        slots[role] = os.path.abspath(entry.path)
        parsed_by_take.setdefault(parsed.take, parsed)

    rows = []
    for take in sorted(takes):
        slots = takes[take]
        audio = slots.get("wav") or slots.get("av", "")
        video = slots.get("av") or slots.get("vo", "")
        if not (audio or video):
            summary.skip(NO_MEDIA, slots["lm"])
            continue
        rows.append({
            "clip_id": f"{corpus}:{take}",
            "corpus": corpus,
            **parsed_by_take[take].labels(),
            "audio_path": audio,
            "video_path": video,
            "landmarks_path": slots.get("lm", ""),
        })
    frame = from_rows(rows, summary)
    log.info("%s: %d clips from %d files (%d skipped)", root, len(frame),
             summary.n_files_seen, summary.n_skipped)
    return frame, summary
