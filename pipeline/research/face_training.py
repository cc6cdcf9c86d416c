"""Train the per-frame facial-expression model on a face image set (research path).

``python -m pipeline train-faces --root FER2013/train --out runs/real_video`` indexes the
image set (:mod:`pipeline.core.corpora.images`), turns every image into the model's input with
the one crop-to-input function (:func:`pipeline.core.video.face_crops` ->
:func:`pipeline.core.video.face_input`, cached on disk by :mod:`pipeline.research.features`), holds out a
stratified validation split, and fits a registered face model (``face_cnn``) with:

- augmentation inside the model (flips, small rotations / zoom / shifts, contrast and
  brightness; :mod:`models.faces`);
- class weights ``(n / (k * n_c)) ** power`` (``power`` 0.5 by default: a square-root
  balancing, so ``disgust``, 1.5% of FER2013, is not drowned out without trading the
  frequent classes' accuracy away);
- optionally label smoothing, Gaussian blur and occlusion patches (``hparams``
  ``label_smoothing``, ``blur``, ``erase``);
- a cosine-decayed learning rate, the epoch with the best validation accuracy kept;
- an epoch checkpoint (``keras.callbacks.BackupAndRestore``), so an interrupted run
  resumes at the epoch it reached.

The validation split depends on ``split_seed`` only (13, the shipped model's), so runs
with other training seeds (``seed``: weights, shuffling, augmentation) are scored on the
same images and never train on them. The finished run is written to the results store
as ``<out>/<variant>/holdout-1/`` (``holdout-seed<N>`` for a training seed other than
``split_seed``: a variant's seeds are its folds, summarised as mean +- std)
(``config.yaml``, ``metrics.json`` with per-class recall, ``history.csv``,
``predictions.csv`` for every validation image, ``model.keras``), which
``python -m pipeline export`` turns into a bundle's video branch.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.core.preprocessing import Preprocessing
from pipeline.core.paths import safe_name

log = logging.getLogger(__name__)

#: The file in a fold's work folder recording the settings its checkpoint was trained with.
WORK_SETTINGS = "settings.json"

#: The Preprocessing of the real face model: FER2013's 48 x 48 greyscale faces. FER2013
#: faces are framed tightly (brows to chin, part of the forehead cut); an MTCNN box with
#: a margin of -0.1 (the square shrunk by a fifth) frames served faces the same way,
#: checked on the 24 RAVDESS stills beside FER2013 images (docs/real_models.md). The
#: margin does not touch training: 48 px images are taken whole as the crop.
FER_PARAMS = Preprocessing(crop_size=48, color="gray", labels="seven", n_frames=15, crop_margin=-0.1)


@dataclasses.dataclass
class FaceTrainingConfig:
    """Hyperparameters of one face-model run (saved as its ``config.yaml``)."""

    model: str = "face_cnn"
    hparams: dict[str, Any] = dataclasses.field(default_factory=dict)
    epochs: int = 40
    batch_size: int = 64
    learning_rate: float = 2e-3
    val_fraction: float = 0.1
    class_weight_power: float = 0.5
    #: Training seed (initial weights, shuffling, augmentation).
    seed: int = 13
    #: Seed of the stratified validation split: keep 13 to compare with (and warm-start
    #: from) the shipped model without training on its validation images.
    split_seed: int = 13
    variant: str = "face_cnn"
    #: A ``model.keras`` of the same architecture to start from (warm start: a second
    #: learning-rate cycle on a finished run); "" trains from scratch.
    init_from: str = ""


def class_weights(y: np.ndarray, n_classes: int, power: float = 0.5) -> dict[int, float]:
    """``{class: (n / (k * n_c)) ** power}`` over the classes present (0 = unweighted,
    1 = fully balanced); absent classes get weight 1."""
    counts = np.bincount(y, minlength=n_classes).astype(float)
    present = counts > 0
    weights = np.ones(n_classes)
    weights[present] = (len(y) / (present.sum() * counts[present])) ** power
    return {i: float(w) for i, w in enumerate(weights)}


def labelled(manifest: pd.DataFrame, classes: tuple[str, ...]) -> tuple[pd.DataFrame, dict[str, int]]:
    """Rows whose emotion the label set names, and how many of each other emotion were left out."""
    known = manifest["emotion"].isin(classes)
    skipped = manifest.loc[~known, "emotion"].value_counts().to_dict()
    return manifest.loc[known].reset_index(drop=True), {str(k): int(v) for k, v in skipped.items()}


def fold_name(config: FaceTrainingConfig) -> str:
    """``holdout-1`` for the split's own seed, else ``holdout-seed<seed>``."""
    return "holdout-1" if config.seed == config.split_seed else f"holdout-seed{config.seed}"


def face_images(manifest: pd.DataFrame, params: Preprocessing, *, cache_dir: str | Path | None = None,
                n_jobs: int = 2, progress: bool = True) -> tuple[pd.DataFrame, np.ndarray, np.ndarray,
                                                                 dict[str, int], int]:
    """The model inputs of an image manifest, as training sees them.

    Returns ``(rows, X, y, skipped, unreadable)``: the usable rows, X (n, size, size,
    channels) uint8 through the one crop-to-input path (cached on disk), y (n,) class
    indices in ``params.classes`` order, emotions outside the label set by count, and
    how many images could not be read. Raises ValueError when fewer than two classes remain.
    """
    from pipeline.core import paths
    from pipeline.research import features

    classes = params.classes
    rows, skipped = labelled(manifest, classes)
    if rows["emotion"].nunique() < 2:
        raise ValueError("need images of at least two emotions of the label set")
    failed: list[tuple[str, str]] = []
    X = features.extract(rows, "faces", params, cache_dir or paths.cache_dir(), n_jobs=n_jobs,
                         progress=progress, failed=failed)
    rows = features.drop_failed(rows, failed)
    X = np.asarray(X)[:, 0]  # one frame per image: (n, size, size, channels)
    y = rows["emotion"].map({c: i for i, c in enumerate(classes)}).to_numpy(dtype=np.int64)
    return rows, X, y, skipped, len(failed)


def holdout_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, validation) index arrays (scikit-learn ``train_test_split``)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    train, val = train_test_split(idx, test_size=fraction, stratify=y, random_state=seed)
    return np.sort(train), np.sort(val)


def _cosine(base: float, epochs: int):
    def schedule(epoch: int, lr: float) -> float:  # noqa: ARG001 - Keras signature
        return float(base * 0.5 * (1.0 + np.cos(np.pi * min(epoch, epochs) / max(epochs, 1))) + 1e-6)

    return schedule


def _settings(config: FaceTrainingConfig) -> dict[str, Any]:
    """What decides the weights of a run (a rerun or a resume must match it): the
    config as plain JSON values."""
    import json

    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def _changed(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The settings that differ between two runs, comma-separated."""
    return ", ".join(sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k)))


def _check_same_settings(fold_dir: Path, settings: dict[str, Any]) -> None:
    """Refuse (``ValueError``) to report a finished fold as the result of other settings."""
    import yaml

    try:
        old = (yaml.safe_load((fold_dir / "config.yaml").read_text(encoding="utf-8")) or {}).get("settings")
    except (OSError, yaml.YAMLError):
        old = None
    if old is not None and old != settings:
        raise ValueError(f"{fold_dir} was trained with other settings ({_changed(old, settings)}); "
                         "use another --variant or --out, or delete that folder to train again")


def _check_resumable(work: Path, settings: dict[str, Any]) -> None:
    """A checkpoint in ``work`` is resumed only with the settings it was trained with
    (recorded in :data:`WORK_SETTINGS`); otherwise ``ValueError`` saying what to delete."""
    import json

    from pipeline.research.results import atomic_write_text

    record = work / WORK_SETTINGS
    if (work / "backup").exists() and record.is_file():
        try:
            old = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
        if old is not None and old != settings:
            raise ValueError(f"the interrupted run in {work} was trained with other settings "
                             f"({_changed(old, settings)}); "
                             f"rerun with those, or delete {work} to start over")
    atomic_write_text(record, json.dumps(settings, indent=1))


def _usable_backup(model: Any, backup: Path) -> None:
    """Make sure Keras's epoch checkpoint in ``backup`` can be read before ``fit``
    restores it: an interruption while it was written leaves a torn file. The previous
    epoch's copy (``double_checkpoint``) takes its place if it reads; when neither
    does, the checkpoint is removed with a warning and training starts again (the
    run's best weights so far stay in ``best.keras``)."""
    import shutil

    latest = backup / "latest.weights.h5"
    previous = backup / "latest.weights.h5.bkp"
    if not latest.exists():
        return
    for attempt in ("latest", "previous"):
        if attempt == "previous":
            if not previous.is_file():
                break
            shutil.copyfile(previous, latest)  # Keras reads only a *.weights.h5 name; the torn one goes
            if (backup / "training_metadata.json.bkp").is_file():
                shutil.copyfile(backup / "training_metadata.json.bkp", backup / "training_metadata.json")
        try:
            if model.optimizer is not None and not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
            model.load_weights(str(latest))
        except Exception as err:  # h5py / Keras raise several kinds for a torn file
            log.warning("the %s epoch checkpoint in %s cannot be read (%s)", attempt, backup,
                        str(err).splitlines()[0])
            continue
        if attempt == "previous":
            log.warning("resuming from the epoch before the interruption (the last checkpoint was torn)")
        return
    log.warning("no readable epoch checkpoint in %s: training starts from the first epoch", backup)
    shutil.rmtree(backup, ignore_errors=True)


def train_faces(manifest: pd.DataFrame, out: str | Path, *, params: Preprocessing = FER_PARAMS,
                config: FaceTrainingConfig | None = None, cache_dir: str | Path | None = None,
                n_jobs: int = 2, progress: bool = True, corpus: str = "images",
                root: str = "", callbacks: tuple[Any, ...] = ()) -> Path:
    """Fit the per-frame face model on an image manifest; write the run; return its fold folder.

    ``manifest``: rows with ``video_path`` images and ``emotion`` (images outside the
    label set are left out and counted). A finished run (``metrics.json`` present) is
    not retrained; an interrupted one resumes at its last finished epoch. ``callbacks``:
    extra Keras callbacks, run after the checkpointing ones. Raises ValueError when
    fewer than two classes remain.
    """
    from pipeline.research import results
    from pipeline.research import store
    from pipeline.research.evaluation import evaluate

    config = config or FaceTrainingConfig()
    classes = params.classes
    safe_name(config.variant, "the variant")
    fold_dir = Path(out) / config.variant / fold_name(config)
    settings = _settings(config)
    if store.fold_done(fold_dir):
        _check_same_settings(fold_dir, settings)
        log.info("%s is finished; skipping", fold_dir)
        return fold_dir
    rows, X, y, skipped, unreadable = face_images(manifest, params, cache_dir=cache_dir, n_jobs=n_jobs,
                                                  progress=progress)
    train, val = holdout_split(y, config.val_fraction, config.split_seed)
    log.info("%d training and %d validation images (%d left out, %d unreadable)",
             len(train), len(val), sum(skipped.values()), unreadable)

    from pipeline.core.native import load_tensorflow

    load_tensorflow()
    import keras

    import models

    keras.utils.set_random_seed(config.seed)
    model = models.build(config.model, X.shape[1:], len(classes),
                         **{"learning_rate": config.learning_rate, **config.hparams})
    if config.init_from:
        start = keras.models.load_model(config.init_from, compile=False)
        try:
            model.set_weights(start.get_weights())
        except ValueError as err:
            raise ValueError(f"{config.init_from} is not a {config.model} of this shape ({err})") from None
        log.info("starting from the weights of %s", config.init_from)
    work = Path(out) / config.variant / ".work" / fold_dir.name
    work.mkdir(parents=True, exist_ok=True)
    _check_resumable(work, settings)
    _usable_backup(model, work / "backup")
    best_path = work / "best.keras"
    callbacks = [
        # double_checkpoint: the previous epoch's copy survives an interruption mid-write
        keras.callbacks.BackupAndRestore(str(work / "backup"), double_checkpoint=True),
        keras.callbacks.LearningRateScheduler(_cosine(config.learning_rate, config.epochs)),
        keras.callbacks.ModelCheckpoint(str(best_path), monitor="val_accuracy", mode="max", save_best_only=True),
        keras.callbacks.CSVLogger(str(work / "history.csv"), append=True),
        *callbacks,
    ]
    started = time.perf_counter()
    model.fit(X[train].astype(np.float32), y[train], validation_data=(X[val].astype(np.float32), y[val]),
              epochs=config.epochs, batch_size=config.batch_size, shuffle=True,
              class_weight=class_weights(y[train], len(classes), config.class_weight_power),
              callbacks=callbacks, verbose=2 if progress else 0)
    seconds = time.perf_counter() - started
    best = keras.models.load_model(best_path, compile=False)  # served without the optimizer's state (1/3 the size)
    probs = best.predict(X[val].astype(np.float32), batch_size=256, verbose=0)
    metrics = evaluate(y[val], probs, classes)
    metrics["per_class_recall"] = {c: metrics["report"][c]["recall"] for c in classes}
    metrics.update(train_seconds_this_session=round(seconds, 1), n_train=int(len(train)),
                   n_val=int(len(val)), skipped_emotions=skipped, unreadable=unreadable,
                   fold=fold_dir.name, variant=config.variant, group="real", protocol="holdout",
                   experiment=Path(out).name, branch="video", model=config.model, feature="faces")
    history = pd.read_csv(work / "history.csv").drop_duplicates("epoch", keep="last")
    predictions = pd.DataFrame({"clip_id": rows["clip_id"].iloc[val].to_numpy(), "actor": "",
                                "fold": fold_dir.name, "true": [classes[i] for i in y[val]],
                                "pred": [classes[i] for i in probs.argmax(axis=1)]})
    for i, c in enumerate(classes):
        predictions[f"p_{c}"] = probs[:, i]
    fold_config = {
        "experiment": Path(out).name, "variant": config.variant, "fold": fold_dir.name, "branch": "video",
        "corpus": {"name": corpus, "root": root}, "labels": params.labels, "protocol": {"kind": "holdout",
        "fraction": config.val_fraction, "stratified": True, "seed": config.split_seed},
        "model": {"name": config.model, "params": config.hparams}, "framework": "keras",
        "feature_kind": "faces", "features": {"kind": "faces", "pooling": "mean_log"},
        "training": {k: v for k, v in dataclasses.asdict(config).items() if k not in ("model", "hparams", "variant")},
        "preprocessing_params": params.to_dict(),
    }
    fold_config["settings"] = settings
    results.write_fold(fold_dir, config=fold_config, metrics=metrics, predictions=predictions,
                       history=history, save_model=lambda folder: best.save(folder / "model.keras"))
    results.write_summary(Path(out))
    return fold_dir
