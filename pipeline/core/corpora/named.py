"""The scan loop shared by corpora whose file names alone say who speaks and what:
walk the folder, skip and count what does not parse, one manifest row per clip.

Used by the EmoDB and CREMA-D adapters (:mod:`pipeline.core.corpora.emodb`,
:mod:`pipeline.core.corpora.cremad`): each supplies a ``parse(name) -> row fields``
that raises :class:`~pipeline.core.corpora.manifest.InvalidName` for names it cannot use.
"""
from __future__ import annotations

import logging
import os
from typing import Callable

import pandas as pd

from pipeline.core.corpora.manifest import InvalidName, ScanSummary, from_rows, has_content
from pipeline.core.corpora.ravdess import iter_files

log = logging.getLogger(__name__)

HIDDEN = "hidden file"
EXTENSION = "unexpected extension"
DUPLICATE = "duplicate file"
UNREADABLE_FOLDER = "unreadable folder"


def scan_named(root: str | os.PathLike[str], corpus: str, extensions: tuple[str, ...],
               parse: Callable[[str], dict[str, str]]) -> tuple[pd.DataFrame, ScanSummary]:
    """Index ``root`` recursively: every file whose extension is in ``extensions`` and
    whose name ``parse`` accepts becomes a row (``parse`` returns every manifest field but
    ``corpus``, ``audio_path``, ``video_path`` and ``landmarks_path``; ``clip_id`` is
    ``<corpus>:<file stem>``). Hidden files, other extensions, names ``parse`` rejects
    (its reason), empty files and second copies of a clip id are skipped and counted.
    Rows are sorted by clip id."""
    summary = ScanSummary()
    clips: dict[str, tuple[dict[str, str], str]] = {}
    for entry in iter_files(root, lambda path: summary.skip(UNREADABLE_FOLDER, path)):
        summary.n_files_seen += 1
        if entry.name.startswith("."):
            summary.skip(HIDDEN, entry.path)
            continue
        stem, ext = os.path.splitext(entry.name)
        if ext.lower() not in extensions:
            summary.skip(EXTENSION, entry.path)
            continue
        try:
            fields = parse(entry.name)
        except InvalidName as err:
            summary.skip(err.reason, entry.path)
            continue
        if not has_content(entry, summary):
            continue
        clip = f"{corpus}:{fields.pop('take', stem)}"
        if clip in clips:
            summary.skip(DUPLICATE, entry.path)
            continue
        clips[clip] = (fields, os.path.abspath(entry.path))
    rows = [{**fields, "clip_id": clip, "corpus": corpus, "audio_path": path, "video_path": "",
             "landmarks_path": ""} for clip, (fields, path) in sorted(clips.items())]
    frame = from_rows(rows, summary)
    log.info("%s: %d %s clips from %d files (%d skipped)", root, len(frame), corpus,
             summary.n_files_seen, summary.n_skipped)
    return frame, summary
