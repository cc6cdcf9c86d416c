"""Face image sets (FER2013, CK+ copies, ...): one folder per emotion holding images.

Layout: ``<root>/[any/levels/]<emotion>/<image>``; the emotion is the name of the image's
parent folder, matched case-insensitively against :data:`FOLDER_EMOTIONS` (the spellings
FER2013, CK+, AffectNet-style and KDEF-style copies use). Images in folders with other
names are skipped and counted (``unknown emotion folder``). Any size and colour: images
larger than a face crop go through the same face finder as video frames at feature time
(:func:`pipeline.core.video.image_crop`), small ones (FER2013's 48 x 48) are the crop.

Every image is one clip with one frame: ``video_path`` is the image, ``actor`` is empty
(FER2013 names no subjects), ``channel`` is ``image``.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from pipeline.core.corpora.manifest import EMPTY, UNREADABLE, ScanSummary, from_rows

#: Still-image extensions read as one-frame clips (lower case, with the dot).
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp")

#: Folder name (lower case) -> emotion of :data:`pipeline.core.labels.EMOTIONS` (or ``contempt``).
FOLDER_EMOTIONS: dict[str, str] = {
    "angry": "angry", "anger": "angry",
    "disgust": "disgust", "disgusted": "disgust",
    "fear": "fearful", "fearful": "fearful",
    "happy": "happy", "happiness": "happy",
    "neutral": "neutral",
    "sad": "sad", "sadness": "sad",
    "surprise": "surprised", "surprised": "surprised",
    "calm": "calm",
    "contempt": "contempt",
}


def scan(root: str | os.PathLike[str]) -> tuple[pd.DataFrame, ScanSummary]:
    """Index an image set into a Manifest, one row per image.

    Walks ``root`` recursively; non-image files and images outside a known emotion
    folder are skipped and counted, never raised. Rows are sorted by path.
    """
    root = Path(root)
    summary = ScanSummary()
    rows: list[dict] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        folder = Path(dirpath)
        for name in sorted(filenames):
            path = folder / name
            summary.n_files_seen += 1
            if name.startswith("."):
                summary.skip("hidden file", path)
                continue
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                summary.skip("not an image", path)
                continue
            emotion = FOLDER_EMOTIONS.get(folder.name.lower())
            if emotion is None:
                summary.skip("unknown emotion folder", path)
                continue
            try:
                size = path.stat().st_size
            except OSError:
                summary.skip(UNREADABLE, path)
                continue
            if size == 0:
                summary.skip(EMPTY, path)
                continue
            rel = path.relative_to(root).as_posix()
            rows.append({
                "clip_id": rel, "corpus": "images", "actor": "", "gender": "",
                "emotion": emotion, "intensity": "", "channel": "image", "statement": "",
                "repetition": "", "audio_path": "", "video_path": str(path.resolve()),
                "landmarks_path": "",
            })
    return from_rows(rows, summary), summary
