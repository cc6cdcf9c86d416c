"""Test-time augmentation and per-class recalibration of a trained face model, measured
on its validation split (research path).

``python -m pipeline tune-faces --model M.keras --root FER2013/train --out record/real_video
--base NAME`` rebuilds the training run's stratified validation split (same images, same
seed: :func:`pipeline.research.face_training.holdout_split`), answers every validation
image in each view of :data:`pipeline.core.face_views.VIEWS` once, and writes, for every
(view set x recalibration) asked for, a variant ``<base>+<views>[+<recalibration>]`` to the
results store: its ``metrics.json`` (accuracy, UAR, macro-F1, ECE, per-class recall and
per-class ECE, and the same figures before recalibration), ``predictions.csv``,
``config.yaml`` with a ``serving`` block (the view set and the fitted map) and a copy of
the model, so ``python -m pipeline export --video <out>/<variant>`` ships exactly what was
measured. The Results page then shows the ablation beside the training runs.

Recalibrated figures are out-of-fold (:func:`pipeline.research.recalibration.cross_fitted`:
5 stratified folds of the validation images); the map that ships is fitted on all of them.
The model's epoch was itself picked on this split, so every figure here is slightly
optimistic, the same way for every variant.
"""
from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from pipeline.core.preprocessing import Preprocessing

log = logging.getLogger(__name__)

CALIBRATIONS: tuple[str, ...] = ("none", "temperature", "vector")


@dataclasses.dataclass
class PosthocConfig:
    """What to measure: view sets x recalibrations, on which split."""

    base: str = "face_cnn"
    view_sets: tuple[str, ...] = ("none", "flip", "crops", "flip_crops")
    calibrations: tuple[str, ...] = ("none", "vector")
    val_fraction: float = 0.1
    split_seed: int = 13
    cv_folds: int = 5
    l2: float = 1e-3


def variant_name(base: str, views: str, calibration: str) -> str:
    """``<base>+<views>[+<calibration>]`` (``+none`` views: the crop alone; the
    recalibration part is left out when there is none), never the base run's own name."""
    from pipeline.core.paths import safe_name

    return safe_name("+".join([base, views, *([calibration] if calibration != "none" else [])]), "the variant (--base)")


def per_class_ece(y: np.ndarray, proba: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    """Top-label ECE (15 bins) among the images predicted as each class: whether "80 %
    sure it is fear" is right as often as "80 % sure it is joy". Classes never predicted
    are left out."""
    from pipeline.research.evaluation import expected_calibration_error

    pred = proba.argmax(axis=1)
    return {c: float(expected_calibration_error(y[pred == i], proba[pred == i]))
            for i, c in enumerate(classes) if (pred == i).any()}


def score(y: np.ndarray, proba: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """:func:`pipeline.research.evaluation.evaluate` plus per-class recall and per-class ECE."""
    from pipeline.research.evaluation import evaluate

    metrics = evaluate(y, proba, classes)
    metrics["per_class_recall"] = {c: metrics["report"][c]["recall"] for c in classes}
    metrics["per_class_ece"] = per_class_ece(y, proba, classes)
    return metrics


def view_probabilities(model: Any, X: np.ndarray, views: Sequence[str], batch_size: int = 256) -> dict[str, np.ndarray]:
    """{view: (n, C) probabilities} of a Keras model for each view of X (uint8 inputs)."""
    from pipeline.core.face_views import view
    from pipeline.core.preprocessing import model_input

    return {v: np.asarray(model.predict(model_input(view(X, v)), batch_size=batch_size, verbose=0), np.float64)
            for v in views}


def tune_faces(model_file: str | Path | Sequence[str | Path], manifest: pd.DataFrame, out: str | Path, *,
               params: Preprocessing, config: PosthocConfig | None = None, cache_dir: str | Path | None = None,
               n_jobs: int = 2, progress: bool = True, corpus: str = "images", root: str = "",
               model_name: str = "face_cnn") -> list[Path]:
    """Measure view sets x recalibrations of ``model_file`` on the validation split of
    ``manifest``; write one results-store variant each; return their fold folders.

    Several model files are measured as an ensemble (the mean of their probabilities,
    view by view); an ensemble's variants hold no model file, so they cannot be exported
    (a bundle serves one model per branch).

    Raises ValueError for an unknown view set or recalibration, or fewer than two classes.
    """
    from pipeline.core.face_views import view_names
    from pipeline.core.native import load_tensorflow
    from pipeline.research import recalibration, results, store
    from pipeline.research.face_training import face_images, holdout_split

    config = config or PosthocConfig()
    for cal in config.calibrations:
        if cal not in CALIBRATIONS:
            raise ValueError(f"unknown recalibration {cal!r}; choose from: {', '.join(CALIBRATIONS)}")
    sets = {name: view_names(name) for name in config.view_sets}
    classes = params.classes
    rows, X, y, _, _ = face_images(manifest, params, cache_dir=cache_dir, n_jobs=n_jobs, progress=progress)
    _, val = holdout_split(y, config.val_fraction, config.split_seed)
    load_tensorflow()
    import keras

    files = [Path(model_file)] if isinstance(model_file, (str, Path)) else [Path(f) for f in model_file]
    if not files:
        raise ValueError("no model file to measure")
    needed = sorted({v for names in sets.values() for v in names})
    each = [view_probabilities(keras.models.load_model(f, compile=False), X[val], needed) for f in files]
    by_view = {v: np.mean([probs[v] for probs in each], axis=0) for v in needed}
    y_val = y[val]
    written = []
    for set_name, names in sets.items():
        plain = np.mean([by_view[v] for v in names], axis=0)
        for cal in config.calibrations:
            variant = variant_name(config.base, set_name, cal)
            serving: dict[str, Any] = {"views": set_name}
            if cal == "none":
                proba, metrics = plain, score(y_val, plain, classes)
            else:
                proba = recalibration.cross_fitted(plain, y_val, cal, folds=config.cv_folds, l2=config.l2)
                metrics = score(y_val, proba, classes)
                before = score(y_val, plain, classes)
                metrics["before_recalibration"] = {k: before[k] for k in
                                                   ("accuracy", "uar", "macro_f1", "ece", "per_class_recall",
                                                    "per_class_ece")}
                serving["scaling"] = recalibration.fit(plain, y_val, cal, l2=config.l2).to_dict()
            fold_dir = Path(out) / variant / "holdout-1"
            if (fold_dir / "config.yaml").is_file() and "posthoc" not in (store.load_config(out, variant, fold_dir.name)
                                                                           or {}):
                raise ValueError(f"{fold_dir} holds a training run; pick another --base")
            metrics.update(fold=fold_dir.name, variant=variant, group="real", protocol="holdout",
                           experiment=Path(out).name, branch="video", model=model_name, feature="faces",
                           n_val=int(len(val)), views=list(names), recalibration=cal,
                           recalibration_protocol=(f"out-of-fold: {config.cv_folds} stratified folds of the "
                                                   f"validation images" if cal != "none" else ""))
            predictions = pd.DataFrame({"clip_id": rows["clip_id"].iloc[val].to_numpy(), "actor": "",
                                        "fold": fold_dir.name, "true": [classes[i] for i in y_val],
                                        "pred": [classes[i] for i in proba.argmax(axis=1)]})
            for i, c in enumerate(classes):
                predictions[f"p_{c}"] = proba[:, i]
            fold_config = {
                "experiment": Path(out).name, "variant": variant, "fold": fold_dir.name, "branch": "video",
                "corpus": {"name": corpus, "root": root}, "labels": params.labels,
                "protocol": {"kind": "holdout", "fraction": config.val_fraction, "stratified": True,
                             "seed": config.split_seed},
                "model": {"name": model_name, "params": {}}, "framework": "keras", "feature_kind": "faces",
                "features": {"kind": "faces", "pooling": "mean_log"},
                "posthoc": {"base": config.base, "model_files": [f.name for f in files], "views": list(names),
                            "recalibration": cal, "cv_folds": config.cv_folds, "l2": config.l2},
                "serving": serving, "preprocessing_params": params.to_dict(),
            }
            results.write_fold(fold_dir, config=fold_config, metrics=metrics, predictions=predictions,
                               save_model=(lambda folder: shutil.copy2(files[0], folder / "model.keras"))
                               if len(files) == 1 else None)
            log.info("%s: accuracy %.3f UAR %.3f ECE %.3f", variant, metrics["accuracy"], metrics["uar"],
                     metrics["ece"])
            written.append(fold_dir)
    results.write_summary(Path(out))
    return written
