"""The results store's writers: ``runs/<experiment>/<variant>/<fold>/`` folders and a summary.

Layout (see docs/contracts.md)::

    runs/<experiment>/spec.yaml, summary.csv
    runs/<experiment>/<variant>/<fold>/config.yaml metrics.json history.csv
                                       predictions.csv model.keras|model.joblib

A fold is written into a temporary sibling folder and renamed into place, so a fold
folder with ``metrics.json`` is always complete; an interrupted run leaves at most a
``.tmp-*`` folder that the next run removes. Reading is :mod:`pipeline.research.store`.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from pipeline.research.staging import staged_dir
from pipeline.research.store import TMP_PREFIX, PathLike, summarise

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- writing
def _dump_yaml(data: Any, path: Path) -> None:
    import yaml

    path.write_text(yaml.safe_dump(_plain(data), sort_keys=False), encoding="utf-8")


def _plain(value: Any) -> Any:
    """Numpy scalars/arrays and tuples -> plain Python, for YAML/JSON."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def atomic_write_text(path: PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temp file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TMP_PREFIX, suffix=path.suffix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def clean_partial(exp_dir: PathLike) -> int:
    """Remove temp folders an interrupted run left behind; returns how many."""
    removed = 0
    for tmp in Path(exp_dir).glob(f"*/{TMP_PREFIX}*"):
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
            removed += 1
    return removed


#: Files of a fold folder: an existing folder holding any of them (a finished fold, or
#: one an older writer left half-written) is a fold this store may replace.
FOLD_FILES: tuple[str, ...] = ("metrics.json", "config.yaml", "predictions.csv", "history.csv")


def write_fold(fold_dir: PathLike, *, config: dict[str, Any], metrics: dict[str, Any],
               predictions: pd.DataFrame, history: pd.DataFrame | None = None,
               save_model: Callable[[Path], None] | None = None) -> Path:
    """Write one finished fold atomically and return its final folder.

    ``save_model(folder)`` writes the model file(s) into the temp folder (e.g.
    ``model.keras``). Everything goes to ``<variant>/.tmp-<fold>-XXXX`` first and is
    renamed to ``<variant>/<fold>`` last, so readers never see half a fold.
    """
    fold_dir = Path(fold_dir)
    with staged_dir(fold_dir, prefix=f"{TMP_PREFIX}{fold_dir.name}-", marker=FOLD_FILES) as tmp:
        _dump_yaml(config, tmp / "config.yaml")
        (tmp / "metrics.json").write_text(json.dumps(_plain(metrics), indent=2), encoding="utf-8")
        predictions.to_csv(tmp / "predictions.csv", index=False)
        if history is not None and len(history):
            history.to_csv(tmp / "history.csv", index=False)
        if save_model is not None:
            save_model(tmp)
    return fold_dir


def write_spec(exp_dir: PathLike, spec: dict[str, Any]) -> Path:
    """Save the resolved spec that ran as ``spec.yaml`` (atomically)."""
    import yaml

    return atomic_write_text(Path(exp_dir) / "spec.yaml", yaml.safe_dump(_plain(spec), sort_keys=False))


def write_summary(exp_dir: PathLike) -> pd.DataFrame:
    """Recompute ``summary.csv`` from every finished fold and write it atomically."""
    frame = summarise(exp_dir)
    atomic_write_text(Path(exp_dir) / "summary.csv", frame.to_csv(index=False))
    return frame
