"""The results store's read-only API: what the dashboard and ``report`` may use.

Layout (see docs/contracts.md)::

    <runs>/<experiment>/spec.yaml, summary.csv
    <runs>/<experiment>/<variant>/<fold>/config.yaml metrics.json history.csv
                                         predictions.csv model.keras|model.joblib

A fold folder holding ``metrics.json`` is complete (the writers in
:mod:`pipeline.research.results` rename it into place last). This module only reads:
it imports no training, export or experiment code, so the dashboard can depend on it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

SUMMARY_COLUMNS: tuple[str, ...] = (
    "experiment", "variant", "group", "branch", "model", "protocol", "n_folds",
    "accuracy_mean", "accuracy_std", "uar_mean", "uar_std", "macro_f1_mean",
    "macro_f1_std", "ece_mean", "ece_std",
)
METRICS = ("accuracy", "uar", "macro_f1", "ece")
#: Prefix of a fold folder still being written (never read).
TMP_PREFIX = ".tmp-"
#: The experiment folder ``python -m pipeline evaluate`` writes under a results root.
EVALUATE_EXPERIMENT = "evaluate"

PathLike = str | os.PathLike


def fold_done(fold_dir: PathLike) -> bool:
    """True when the fold folder is final (renamed into place) and holds metrics.json."""
    return (Path(fold_dir) / "metrics.json").is_file()


# --------------------------------------------------------------------------- reading
def list_experiments(root: PathLike) -> list[Path]:
    """Experiment folders under ``root`` (those with a spec.yaml or a finished fold)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")
             and ((p / "spec.yaml").is_file() or any(p.glob("*/*/metrics.json")))]
    return found


def _spec_order(exp_dir: Path) -> list[str]:
    """Variant names in the order the spec lists them (empty when unknown)."""
    import yaml

    spec_file = exp_dir / "spec.yaml"
    if not spec_file.is_file():
        return []
    try:
        spec = yaml.safe_load(spec_file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        return []
    return [str(v.get("name")) for v in spec.get("variants") or [] if isinstance(v, dict)]


def variants(exp_dir: PathLike) -> list[str]:
    """Variants with at least one finished fold, in spec order, then by name."""
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        return []
    done = {p.parent.parent.name for p in exp_dir.glob("*/*/metrics.json")
            if not p.parent.name.startswith(TMP_PREFIX)}
    order = _spec_order(exp_dir)
    return [v for v in order if v in done] + sorted(done - set(order))


def _fold_key(name: str) -> tuple[str, int]:
    protocol, _, number = name.partition("-")
    return protocol, int(number) if number.isdigit() else 0


def folds(exp_dir: PathLike, variant: str) -> list[str]:
    """Finished fold names of a variant (``speaker-0``..., ``random-SEED``...)."""
    base = Path(exp_dir) / variant
    if not base.is_dir():
        return []
    names = [p.name for p in base.iterdir()
             if p.is_dir() and not p.name.startswith(TMP_PREFIX) and fold_done(p)]
    return sorted(names, key=_fold_key)


def load_metrics(exp_dir: PathLike, variant: str) -> list[dict[str, Any]]:
    """metrics.json of every finished fold of a variant."""
    out = []
    for fold in folds(exp_dir, variant):
        path = Path(exp_dir) / variant / fold / "metrics.json"
        out.append(json.loads(path.read_text(encoding="utf-8")))
    return out


def load_config(exp_dir: PathLike, variant: str, fold: str) -> dict[str, Any]:
    """The resolved config.yaml one fold ran with."""
    import yaml

    path = Path(exp_dir) / variant / fold / "config.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def _concat_csv(exp_dir: PathLike, variant: str, filename: str) -> pd.DataFrame:
    frames = []
    for fold in folds(exp_dir, variant):
        path = Path(exp_dir) / variant / fold / filename
        if path.is_file():
            frame = pd.read_csv(path, dtype={"actor": str, "clip_id": str})
            if "fold" not in frame.columns:
                frame.insert(0, "fold", fold)
            frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def load_predictions(exp_dir: PathLike, variant: str) -> pd.DataFrame:
    """predictions.csv of every finished fold (``clip_id, actor, fold, true, pred, p_*``)."""
    return _concat_csv(exp_dir, variant, "predictions.csv")


def load_history(exp_dir: PathLike, variant: str) -> pd.DataFrame:
    """history.csv of every finished fold, with a ``fold`` column (empty for sklearn)."""
    return _concat_csv(exp_dir, variant, "history.csv")


def _finished_metrics(exp_dir: Path) -> Iterable[tuple[str, dict[str, Any]]]:
    for variant in variants(exp_dir):
        for metrics in load_metrics(exp_dir, variant):
            yield variant, metrics


def summarise(exp_dir: PathLike) -> pd.DataFrame:
    """One row per (variant, protocol): mean and sample std over finished folds."""
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise FileNotFoundError(f"no experiment folder {exp_dir}")
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for variant, metrics in _finished_metrics(exp_dir):
        rows.setdefault((variant, str(metrics.get("protocol", ""))), []).append(metrics)
    records = []
    for (variant, protocol), items in rows.items():
        first = items[0]
        record: dict[str, Any] = {
            "experiment": first.get("experiment", exp_dir.name), "variant": variant,
            "group": first.get("group", ""), "branch": first.get("branch", ""),
            "model": first.get("model", ""), "protocol": protocol, "n_folds": len(items)}
        for key in METRICS:
            values = np.array([float(m.get(key, np.nan)) for m in items], dtype=float)
            record[f"{key}_mean"] = float(np.nanmean(values)) if np.isfinite(values).any() else np.nan
            record[f"{key}_std"] = float(np.nanstd(values, ddof=1)) if np.isfinite(values).sum() > 1 else 0.0
        records.append(record)
    return pd.DataFrame(records, columns=list(SUMMARY_COLUMNS))


def travel(exp_dir: PathLike) -> pd.DataFrame:
    """How each variant travels: one row per (variant, test side) with ``test`` =
    ``speaker-independent`` (mean over the speaker folds) or ``held-out corpus: NAME``
    (each leave-one-corpus-out fold on its own), ``accuracy``, ``uar`` (fractions),
    ``n_folds``. Empty when no variant ran the ``corpus`` protocol."""
    exp_dir = Path(exp_dir)
    rows = []
    for variant, metrics in _finished_metrics(exp_dir):
        fold = str(metrics.get("fold", ""))
        if fold.startswith("corpus-"):
            rows.append({"variant": variant, "test": f"held-out corpus: {fold.split('-', 1)[1]}",
                         "accuracy": metrics.get("accuracy"), "uar": metrics.get("uar"), "fold": fold})
        elif fold.startswith("speaker-"):
            rows.append({"variant": variant, "test": "speaker-independent", "accuracy": metrics.get("accuracy"),
                         "uar": metrics.get("uar"), "fold": fold})
    frame = pd.DataFrame(rows, columns=["variant", "test", "accuracy", "uar", "fold"])
    if frame.empty or not frame["fold"].str.startswith("corpus-").any():
        return pd.DataFrame(columns=["variant", "test", "accuracy", "uar", "n_folds"])
    order = list(dict.fromkeys(frame["variant"]))
    out = (frame.groupby(["variant", "test"], sort=False)
           .agg(accuracy=("accuracy", "mean"), uar=("uar", "mean"), n_folds=("fold", "count")).reset_index())
    out["variant"] = pd.Categorical(out["variant"], order, ordered=True)
    return out.sort_values(["variant", "test"]).reset_index(drop=True).assign(variant=lambda f: f["variant"].astype(str))


def format_summary(frame: pd.DataFrame) -> str:
    """A readable table: percentages as ``mean ± std`` per variant and protocol."""
    if frame.empty:
        return "no finished folds yet"
    table = pd.DataFrame({
        "variant": frame["variant"], "group": frame["group"], "model": frame["model"],
        "protocol": frame["protocol"], "folds": frame["n_folds"]})
    for key, title in (("accuracy", "accuracy %"), ("uar", "UAR %"), ("macro_f1", "macro-F1 %"),
                       ("ece", "ECE %")):
        table[title] = [f"{100 * m:5.1f} ± {100 * s:4.1f}"
                        for m, s in zip(frame[f"{key}_mean"], frame[f"{key}_std"])]
    experiment = str(frame["experiment"].iloc[0])
    return f"experiment: {experiment}\n" + table.to_string(index=False)
