"""Plain-text description of a scanned corpus, for ``python -m pipeline index``."""
from __future__ import annotations

import os

import pandas as pd

from pipeline.core.corpora.manifest import ScanSummary, has_modality
from pipeline.core.labels import EMOTIONS

MODALITIES: tuple[str, ...] = ("audio", "video", "landmarks")


def _counts_line(counts: pd.Series, order: list[str] | None = None) -> str:
    """``name n, name n, ...`` in the given order (others appended, sorted)."""
    counts = counts.astype(int)
    keys = [k for k in (order or []) if k in counts.index]
    keys += sorted(k for k in counts.index if k not in keys)
    return ", ".join(f"{k} {counts[k]}" for k in keys) or "-"


def modality_counts(manifest: pd.DataFrame) -> dict[str, int]:
    """Rows with each modality linked (``audio``, ``video``, ``landmarks``)."""
    if manifest.empty:
        return {m: 0 for m in MODALITIES}
    return {m: int(has_modality(manifest, m).sum()) for m in MODALITIES}


def describe(manifest: pd.DataFrame, summary: ScanSummary, corpus: str,
             root: str | os.PathLike[str]) -> str:
    """A readable block: totals, counts per emotion/actor/channel/modality, skips.

    Emotions are listed in the label vocabulary's order, actors sorted, so two scans
    of the same folder print identically.
    """
    n = len(manifest)
    corpora = sorted(manifest["corpus"].unique()) if n else [corpus]
    lines = [
        f"corpus {', '.join(corpora)} at {root}",
        f"{n} clips over {manifest['actor'].nunique() if n else 0} actors and "
        f"{manifest['emotion'].nunique() if n else 0} emotions "
        f"({summary.n_files_seen} files seen, {summary.n_skipped} skipped)",
    ]
    if n:
        lines += [
            "emotions:   " + _counts_line(manifest["emotion"].value_counts(), list(EMOTIONS)),
            "actors:     " + _counts_line(manifest["actor"].value_counts()),
            "genders:    " + _counts_line(manifest["gender"].value_counts()),
            "channels:   " + _counts_line(manifest["channel"].value_counts(), ["speech", "song"]),
        ]
    mods = modality_counts(manifest)
    lines.append("modalities: " + ", ".join(f"{m} {mods[m]}/{n}" for m in MODALITIES)
                 + " clips linked")
    if summary.n_skipped:
        lines.append(f"skipped {summary.n_skipped} files:")
        for reason, count in sorted(summary.skipped.items(), key=lambda kv: (-kv[1], kv[0])):
            examples = ", ".join(os.path.basename(p) or p for p in summary.examples.get(reason, []))
            lines.append(f"  {reason}: {count}" + (f" (e.g. {examples})" if examples else ""))
    else:
        lines.append("skipped 0 files")
    if not n:
        lines.append("no clips found: is this the right --corpus and --root?")
    return "\n".join(lines)
