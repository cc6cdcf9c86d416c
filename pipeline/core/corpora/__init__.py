"""Corpus adapters: each ``scan(root) -> (Manifest, ScanSummary)``."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # pandas only where a corpus is scanned: the CLI's refusals stay fast
    import pandas as pd

    from pipeline.core.corpora.manifest import ScanSummary

CORPORA: tuple[str, ...] = ("ravdess", "savee", "tess", "emodb", "cremad", "images", "synthetic")


def scanner(corpus: str) -> Callable[[str | Path], tuple[pd.DataFrame, ScanSummary]]:
    """The scan function of a corpus; the synthetic corpus is read as RAVDESS."""
    if corpus in ("ravdess", "synthetic"):
        from pipeline.core.corpora.ravdess import scan
    elif corpus == "savee":
        from pipeline.core.corpora.savee import scan
    elif corpus == "tess":
        from pipeline.core.corpora.tess import scan
    elif corpus == "emodb":
        from pipeline.core.corpora.emodb import scan
    elif corpus == "cremad":
        from pipeline.core.corpora.cremad import scan
    elif corpus == "images":
        from pipeline.core.corpora.images import scan
    else:
        raise ValueError(f"unknown corpus {corpus!r}; choose one of: {', '.join(CORPORA)}")
    return scan


def scan(corpus: str, root: str | Path) -> tuple[pd.DataFrame, ScanSummary]:
    """Index a corpus folder into a Manifest (see :mod:`pipeline.core.corpora.manifest`)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"corpus folder not found: {root}" if not root.exists()
                                else f"{root} is a file, not a corpus folder")
    return scanner(corpus)(root)
