"""Fit one model on one fold and predict its test side, Keras or scikit-learn alike.

Models come from the registry (``models.build(name, input_shape, n_classes, **hp)``).
Keras models train with early stopping on the validation loss (best weights
restored) and keep their history; scikit-learn estimators have nothing to stop early,
so they learn from the training and validation clips together. ``uint8`` inputs (video
frames) are fed as they are (the video models rescale to [0, 1] in their first layer)
and converted to float32 one batch at a time, so a whole corpus of frames is never
turned into float32 at once.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.core.preprocessing import model_input  # the one conversion; serving uses it too

log = logging.getLogger(__name__)

HISTORY_COLUMNS: tuple[str, ...] = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")
DEFAULT_TRAINING: dict[str, Any] = {"epochs": 100, "batch_size": 32, "patience": 10, "seed": 42,
                                     "early_stopping": True}


def framework_of(model_name: str) -> str:
    """``keras`` or ``sklearn``, from the model registry."""
    import models

    return models.spec(model_name).framework


def _batches(x: np.ndarray, y: np.ndarray | None, batch_size: int, shuffle: bool, seed: int):
    """A Keras ``PyDataset`` converting each batch with :func:`model_input` (memory-bounded)."""
    from pipeline.core.native import load_tensorflow

    load_tensorflow()
    import keras

    class _Batches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.order = np.arange(len(x))
            self.rng = np.random.default_rng(seed)
            if shuffle:
                self.rng.shuffle(self.order)

        def __len__(self) -> int:
            return int(np.ceil(len(x) / batch_size))

        def __getitem__(self, idx: int):
            rows = np.sort(self.order[idx * batch_size:(idx + 1) * batch_size])
            xb = model_input(x[rows])
            return xb if y is None else (xb, y[rows])

        def on_epoch_end(self) -> None:
            if shuffle:
                self.rng.shuffle(self.order)

    return _Batches()


def _epoch_bar(epochs: int, progress: bool):
    """A Keras callback advancing a tqdm bar per epoch (no-op when ``progress`` is off)."""
    from pipeline.core.native import load_tensorflow

    load_tensorflow()
    import keras
    from tqdm.auto import tqdm

    class _Bar(keras.callbacks.Callback):
        def on_train_begin(self, logs=None) -> None:
            self.bar = tqdm(total=epochs, desc="epochs", leave=False, disable=not progress)

        def on_epoch_end(self, epoch, logs=None) -> None:
            logs = logs or {}
            self.bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items() if "loss" in k})
            self.bar.update(1)

        def on_train_end(self, logs=None) -> None:
            self.bar.close()

    return _Bar()


def history_frame(history: dict[str, list[float]]) -> pd.DataFrame:
    """Keras ``History.history`` -> ``epoch, loss, accuracy, val_loss, val_accuracy``."""
    n = max((len(v) for v in history.values()), default=0)
    frame = pd.DataFrame({"epoch": np.arange(1, n + 1)})
    for key in HISTORY_COLUMNS[1:]:
        values = history.get(key)
        frame[key] = values if values is not None and len(values) == n else np.nan
    extra = {k: v for k, v in history.items() if k not in HISTORY_COLUMNS and len(v) == n}
    return frame.assign(**extra) if extra else frame


def fit_keras(model_name: str, params: dict[str, Any], training: dict[str, Any], n_classes: int,
              X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray,
              *, progress: bool = False) -> tuple[Any, pd.DataFrame]:
    """Build, then fit with ``EarlyStopping(restore_best_weights=True)``; returns
    (model, history). Monitors ``val_loss``, or ``loss`` when there is no validation side.

    ``training.early_stopping: false`` trains all ``epochs`` and keeps the last weights:
    for tiny runs whose one validation actor is too few clips to choose an epoch by.
    """
    from pipeline.core.native import load_tensorflow

    load_tensorflow()
    import keras
    import models

    cfg = {**DEFAULT_TRAINING, **training}
    keras.utils.set_random_seed(int(cfg["seed"]))
    model = models.build(model_name, tuple(X_train.shape[1:]), n_classes, **params)
    has_val = len(X_val) > 0
    stop = keras.callbacks.EarlyStopping(monitor="val_loss" if has_val else "loss",
                                         patience=int(cfg["patience"]), restore_best_weights=True)
    batch = int(cfg["batch_size"])
    callbacks = [_epoch_bar(int(cfg["epochs"]), progress)]
    if cfg.get("early_stopping", True):
        callbacks.insert(0, stop)
    if X_train.dtype == np.uint8:
        fit = model.fit(_batches(X_train, y_train, batch, True, int(cfg["seed"])),
                        validation_data=_batches(X_val, y_val, batch, False, 0) if has_val else None,
                        epochs=int(cfg["epochs"]), callbacks=callbacks, verbose=0)
    else:
        fit = model.fit(model_input(X_train), y_train, batch_size=batch, shuffle=True,
                        validation_data=(model_input(X_val), y_val) if has_val else None,
                        epochs=int(cfg["epochs"]), callbacks=callbacks, verbose=0)
    return model, history_frame(fit.history)


def predict_proba(model: Any, X: np.ndarray, batch_size: int = 64,
                  n_classes: int | None = None) -> np.ndarray:
    """(n, n_classes) probabilities from a fitted Keras model or scikit-learn estimator.

    A scikit-learn model fitted on a fold that lacked a class returns fewer columns;
    with ``n_classes`` they are spread back to their class indices (absent ones get 0).
    """
    if len(X) == 0:
        raise ValueError("nothing to predict: empty input")
    if hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(X.reshape(len(X), -1)), dtype=np.float64)
        seen = np.asarray(getattr(model, "classes_", np.arange(proba.shape[1])), dtype=int)
        if n_classes is None or (proba.shape[1] == n_classes and np.array_equal(seen, np.arange(n_classes))):
            return proba
        full = np.zeros((len(proba), int(n_classes)))
        full[:, seen] = proba
        return full
    if X.dtype == np.uint8:
        return np.asarray(model.predict(_batches(X, None, batch_size, False, 0), verbose=0), dtype=np.float64)
    return np.asarray(model.predict(model_input(X), batch_size=batch_size, verbose=0), dtype=np.float64)


def builder_parameters(model_name: str) -> list[str] | None:
    """The keyword parameters the registered builder of ``model_name`` takes (beyond
    ``input_shape`` and ``n_classes``); None when it takes any (``**kwargs``)."""
    import inspect

    import models

    parameters = inspect.signature(models.spec(model_name).builder).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return None
    return [n for n, p in parameters.items() if p.kind is p.KEYWORD_ONLY]


def accepts(model_name: str, keyword: str) -> bool:
    """Whether the registered builder takes ``keyword`` (or any ``**kwargs``)."""
    names = builder_parameters(model_name)
    return names is None or keyword in names


def fit_sklearn(model_name: str, params: dict[str, Any], n_classes: int,
                X_train: np.ndarray, y_train: np.ndarray, sample_weight: np.ndarray | None = None,
                groups: np.ndarray | None = None) -> Any:
    """Build and fit a registered scikit-learn estimator on flattened features (a face
    model is built for its (size, size, channels) frames, then fed them flattened).
    ``sample_weight`` goes to the pipeline's last step; ``groups`` (the speaker of each
    row) to a ``speakers`` step (:class:`models.nuisance.SpeakerSubspaceRemoval`), which
    raises ValueError without them."""
    import models

    images = models.spec(model_name).input_kind == "faces"
    shape = tuple(X_train.shape[1:]) if images else (int(np.prod(X_train.shape[1:])),)
    model = models.build(model_name, shape, n_classes, **params)
    steps = dict(getattr(model, "steps", []))
    kwargs = {}
    if sample_weight is not None:
        last = model.steps[-1][0] if steps else None
        kwargs[f"{last}__sample_weight" if last else "sample_weight"] = np.asarray(sample_weight)
    if "speakers" in steps:
        kwargs["speakers__groups"] = groups
    model.fit(model_input(X_train).reshape(len(X_train), -1), y_train, **kwargs)
    return model


def fit_predict(spec: dict[str, Any], X_train: np.ndarray, y_train: np.ndarray,
                X_val: np.ndarray, y_val: np.ndarray, X_test: np.ndarray, *,
                n_classes: int | None = None, progress: bool = False,
                sample_weight: tuple[np.ndarray, np.ndarray] | None = None,
                groups: tuple[np.ndarray, np.ndarray] | None = None
                ) -> tuple[np.ndarray, pd.DataFrame, Any]:
    """Train ``spec['model']`` on one fold and predict its test side.

    ``spec`` is a resolved experiment spec (``model {name, params}``, ``training``,
    ``labels``). ``y_*`` are class indices. ``sample_weight``: (train, validation)
    weights for scikit-learn models (Keras models ignore them); ``groups``: (train,
    validation) speakers of the rows, for a model that removes the training speakers'
    subspace. Returns ``(probs
    (n_test, n_classes), history (empty for scikit-learn), fitted model)``.
    """
    from pipeline.core.labels import label_set

    name = spec["model"]["name"]
    params = dict(spec["model"].get("params") or {})
    training = dict(spec.get("training") or {})
    n_classes = int(n_classes or len(label_set(spec.get("labels", "six"))))
    if len(X_train) == 0:
        raise ValueError("the training side is empty")
    pooled = per_frame(name, X_train)
    n_clips = len(X_test)
    if pooled:
        # a per-frame face model on clips: every frame is a training row with its clip's
        # label; a test clip's answer pools its frames (pipeline.core.video.pool_frames)
        y_train = np.repeat(y_train, X_train.shape[1])
        y_val = np.repeat(y_val, X_val.shape[1] if len(X_val) else 0)
        X_train, X_val, X_test = _frames_of(X_train), _frames_of(X_val), _frames_of(X_test)
    if framework_of(name) == "keras":
        model, history = fit_keras(name, params, training, n_classes, X_train, y_train,
                                   X_val, y_val, progress=progress)
    else:
        if "random_state" not in params and "seed" in training and accepts(name, "random_state"):
            params["random_state"] = int(training["seed"])
        X_fit = np.concatenate([X_train, X_val]) if len(X_val) else X_train
        y_fit = np.concatenate([y_train, y_val]) if len(y_val) else y_train
        w_fit = None if sample_weight is None else np.concatenate(sample_weight)[: len(y_fit)]
        g_fit = None if groups is None else np.concatenate(groups)[: len(y_fit)]
        model, history = fit_sklearn(name, params, n_classes, X_fit, y_fit, w_fit, g_fit), pd.DataFrame()
    probs = predict_proba(model, X_test, n_classes=n_classes)
    return (pool_clips(probs, n_clips) if pooled else probs), history, model


def per_frame(model_name: str, X: np.ndarray) -> bool:
    """True for a per-frame face model (input kind ``faces``) fed whole clips
    ``(n_clips, n_frames, size, size, channels)``."""
    import models

    return models.spec(model_name).input_kind == "faces" and np.asarray(X).ndim == 5


def _frames_of(X: np.ndarray) -> np.ndarray:
    """(n_clips, n_frames, ...) -> (n_clips * n_frames, ...), clip-major."""
    X = np.asarray(X)
    return X.reshape((-1, *X.shape[2:])) if X.ndim == 5 else X


def pool_clips(frame_proba: np.ndarray, n_clips: int) -> np.ndarray:
    """(n_clips * n_frames, C) per-frame probabilities -> (n_clips, C) clip probabilities,
    pooled with :func:`pipeline.core.video.pool_frames` (mean of log-probabilities)."""
    from pipeline.core.video import pool_frames

    frame_proba = np.asarray(frame_proba)
    per_clip = frame_proba.reshape(n_clips, -1, frame_proba.shape[-1])
    return np.stack([pool_frames(p) for p in per_clip])


def save_model(model: Any, folder: str | Path) -> Path:
    """Write ``model.keras`` (Keras) or ``model.joblib`` (scikit-learn) into ``folder``."""
    folder = Path(folder)
    if hasattr(model, "save") and not hasattr(model, "predict_proba"):
        path = folder / "model.keras"
        model.save(path)
    else:
        import joblib

        path = folder / "model.joblib"
        joblib.dump(model, path)
    return path


def load_model(folder: str | Path) -> Any:
    """Load the model a fold folder holds (``model.keras`` or ``model.joblib``)."""
    folder = Path(folder)
    if (folder / "model.keras").is_file():
        from pipeline.core.native import load_tensorflow

        load_tensorflow()
        import keras

        return keras.models.load_model(folder / "model.keras")
    if (folder / "model.joblib").is_file():
        import joblib

        return joblib.load(folder / "model.joblib")
    raise FileNotFoundError(f"no model.keras or model.joblib in {folder}")
