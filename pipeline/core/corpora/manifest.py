"""The Manifest: one table of every clip a corpus holds, whatever the corpus.

One row per *take* (for RAVDESS the audio-only, video-only and full-AV files of the
same performance are one clip), so a split by ``clip_id`` never lets a take straddle
train and test.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

COLUMNS: tuple[str, ...] = (
    "clip_id", "corpus", "actor", "gender", "emotion", "intensity", "channel",
    "statement", "repetition", "audio_path", "video_path", "landmarks_path",
)
"""Required columns. Paths are absolute strings; a missing modality is ``""``."""


class InvalidName(ValueError):
    """A file name an adapter cannot use; ``reason`` is its skip-reason key."""

    def __init__(self, reason: str, name: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.reason = reason


@dataclass
class ScanSummary:
    """What an adapter found and what it skipped (skips never raise)."""

    n_files_seen: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    modalities: dict[str, int] = field(default_factory=dict)
    """Rows that have each modality linked: ``{"audio": n, "video": n, "landmarks": n}``."""

    def skip(self, reason: str, path: str | os.PathLike[str]) -> None:
        """Count one skipped file under ``reason``, keeping a few example names."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < 3:
            shown.append(str(path))

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())


#: Skip reasons every adapter shares.
EMPTY = "empty file"
UNREADABLE = "unreadable file"


def has_content(entry: os.DirEntry, summary: ScanSummary) -> bool:
    """True for a file that can be stat-ed and is not empty; otherwise the file is counted
    in ``summary`` (``unreadable file`` / ``empty file``) and False is returned."""
    try:
        size = entry.stat().st_size
    except OSError:
        summary.skip(UNREADABLE, entry.path)
        return False
    if size == 0:
        summary.skip(EMPTY, entry.path)
        return False
    return True


def validate(manifest: pd.DataFrame) -> pd.DataFrame:
    """Check the Manifest contract; return the frame with columns in canonical order."""
    missing = [c for c in COLUMNS if c not in manifest.columns]
    if missing:
        raise ValueError(f"manifest lacks columns: {', '.join(missing)}")
    if manifest["clip_id"].duplicated().any():
        dupes = manifest.loc[manifest["clip_id"].duplicated(), "clip_id"].head(3).tolist()
        raise ValueError(f"manifest has duplicate clip ids, e.g. {dupes}")
    extra = [c for c in manifest.columns if c not in COLUMNS]
    out = manifest[list(COLUMNS) + extra].copy()
    for col in ("audio_path", "video_path", "landmarks_path"):
        out[col] = out[col].fillna("").astype(str)
    out["actor"] = out["actor"].astype(str)
    return out.reset_index(drop=True)


def from_rows(rows: list[dict], summary: ScanSummary) -> pd.DataFrame:
    """An adapter's rows as a validated Manifest; records the modality counts in ``summary``."""
    frame = validate(pd.DataFrame(rows, columns=list(COLUMNS)))
    summary.modalities = {m: int(has_modality(frame, m).sum()) for m in ("audio", "video", "landmarks")}
    return frame


def empty() -> pd.DataFrame:
    """A manifest with no rows and the canonical columns."""
    return pd.DataFrame({c: pd.Series(dtype=str) for c in COLUMNS})


def save(manifest: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write the manifest as CSV atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = validate(manifest)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a manifest CSV written by :func:`save`."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return validate(frame)


def has_modality(manifest: pd.DataFrame, modality: str) -> pd.Series:
    """Boolean mask of rows that have ``audio``, ``video`` or ``landmarks``."""
    return manifest[f"{modality}_path"].astype(str).str.len() > 0


def actor_key(actor: object) -> str:
    """An actor id as compared across manifests, runs and bundles: numbers without
    leading zeros (``"01"`` -> ``"1"``), anything else as written (SAVEE's ``"DC"``)."""
    text = str(actor).strip()
    return str(int(text)) if text.isdigit() else text


def sorted_actors(ids: "set[str] | list[str]") -> list[str]:
    """Actor keys in reading order: ``1, 2, ..., 10`` (shorter first), then by text."""
    return sorted(ids, key=lambda a: (len(a), a))
