"""Model bundles: everything ``predict`` and the dashboard need to answer, in one folder.

Layout::

    <bundle>/
      bundle.json           id, name, created, classes, label set, per branch: model name,
                            framework, input kind, Preprocessing, metrics (mean +- std of
                            the run it came from), protocol, which fold serves, source run
      audio/model.keras | audio/model.joblib  (+ optional audio/scaler.joblib)
      video/model.keras | video/model.joblib
      fusion/model.joblib   a fitted :class:`pipeline.serve.fusion.LateFusion`

The Preprocessing saved per branch is the one the model was trained with, and
:mod:`pipeline.serve.inference` featurizes with exactly it, so serving cannot drift from
training. Each branch's model is loaded once, on the branch's first use
(:meth:`BranchModel.loaded`): an audio-only clip never loads the face model (nor
TensorFlow), a silent film never loads the voice model.

This module is on the prediction path: it reads the folder. Writing one (choosing folds
and fusers from finished runs, ``python -m pipeline export``) is the research side's job,
:mod:`pipeline.research.export`; this module never imports it.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pipeline.core.preprocessing import Preprocessing

log = logging.getLogger(__name__)

BUNDLE_FILE = "bundle.json"
FORMAT_VERSION = 1
BRANCHES: tuple[str, ...] = ("audio", "video")
#: Most rows one model call sees (:meth:`BranchModel.predict_proba`): bounds memory.
PREDICT_BATCH: int = 128


class BundleError(ValueError):
    """A bundle that cannot be written or read, with a one-line reason."""


# --------------------------------------------------------------------------- records
@dataclass
class BranchModel:
    """One branch's serving model and how to feed it.

    ``input_kind``: the audio feature kind (``mfcc_mean``, ``mfcc_matrix``...) or
    ``frames`` for video. ``full_frame``: the video model was trained on whole frames,
    not face crops. ``scaler``: an optional fitted transformer applied to flattened
    features before the model (for runs that standardised their inputs).
    ``calibrated``: models trained on per-speaker normalised features, by calibration
    mode (``neutral``, ``session``: :mod:`pipeline.core.calibration`); ``temperature``:
    the softmax temperature per mode fitted on held-out corpora (1.0: none);
    ``reference``: where the training features lie (a
    :class:`pipeline.serve.conditions.FeatureReference`), for the "unusual voice" check.
    ``views``: a per-frame face model's test-time view set
    (:data:`pipeline.core.face_views.VIEW_SETS`, ``none``: the crop alone);
    ``scaling``: its per-class recalibration (:class:`pipeline.core.scaling.Scaling`),
    both measured on the model's validation split (:mod:`pipeline.research.face_posthoc`).
    ``loader``: builds :attr:`model` on first use when it is None (what
    :func:`load_bundle` sets, so a branch a clip does not need costs nothing).
    """

    branch: str
    model_name: str
    framework: str
    input_kind: str
    params: Preprocessing
    model: Any = None
    scaler: Any = None
    full_frame: bool = False
    metrics: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    calibrated: dict[str, Any] = field(default_factory=dict)
    temperature: dict[str, float] = field(default_factory=dict)
    reference: Any = None
    views: str = "none"
    scaling: Any = None  # pipeline.core.scaling.Scaling
    loader: Callable[[], Any] | None = field(default=None, repr=False, compare=False)
    _lock: Any = field(default_factory=threading.Lock, repr=False, compare=False)

    def loaded(self) -> Any:
        """The model, loading it first if it was not yet (once, even when two threads ask).
        Raises :class:`BundleError` when the file cannot be loaded."""
        if self.model is None and self.loader is not None:
            with self._lock:
                if self.model is None:
                    self.model = self.loader()
        return self.model

    def modes(self) -> tuple[str, ...]:
        """The calibration modes this branch answers in: ``none`` and those it has models for."""
        return ("none", *sorted(self.calibrated))

    def prepare(self, features: np.ndarray) -> np.ndarray:
        """Turn a batch of features (n, *feature_shape) into the model's input.

        Video crops are uint8 and become float32 in [0, 1]; inputs are reshaped to the
        Keras model's declared input shape (e.g. (40,) -> (40, 1)) or flattened for
        scikit-learn.
        """
        from pipeline.core.preprocessing import model_input

        x = model_input(np.asarray(features))  # the very conversion training used
        n = x.shape[0]
        if self.scaler is not None:
            shape = x.shape
            x = np.asarray(self.scaler.transform(x.reshape(n, -1)), dtype=np.float32).reshape(shape)
        if self.framework == "sklearn":
            return x.reshape(n, -1)
        shape = _keras_input_shape(self.loaded())
        if shape is not None and int(np.prod(shape)) == int(np.prod(x.shape[1:])):
            x = x.reshape((n, *shape))
        return x

    def predict_proba(self, features: np.ndarray, mode: str = "none") -> np.ndarray:
        """(n, C) class probabilities for a batch of features, rows summing to 1.

        ``mode``: the calibration the features went through (``none``, or a key of
        :attr:`calibrated`, whose model then answers); the mode's held-out temperature
        is applied. Large batches go through the model :data:`PREDICT_BATCH` rows at a
        time, so a long clip's 1,500 face crops do not hold a CNN's activations for all
        of them at once (0.4 GB for the first layer of ``face_cnn`` alone)."""
        n = len(features)
        if n > PREDICT_BATCH:
            return np.concatenate([self.predict_proba(features[i:i + PREDICT_BATCH], mode)
                                   for i in range(0, n, PREDICT_BATCH)])
        if mode != "none" and mode not in self.calibrated:
            raise ValueError(f"the {self.branch} model has no {mode!r} calibration; it has: {', '.join(self.modes())}")
        model = self.loaded() if mode == "none" else self.calibrated[mode]
        x = self.prepare(features) if mode == "none" else np.asarray(features, np.float32).reshape(n, -1)
        if self.framework == "sklearn":
            proba = np.asarray(model.predict_proba(x), dtype=np.float64)
            seen = np.asarray(getattr(model, "classes_", np.arange(proba.shape[1])), dtype=int)
            full = np.zeros((proba.shape[0], len(self.params.classes)))
            full[:, seen] = proba
            proba = full
        elif mode == "none" and self.views != "none":
            from pipeline.core.face_views import predict_views

            proba = predict_views(model.predict_on_batch, x, self.views)
        else:
            # predict_on_batch runs a compiled graph: ~17x faster than an eager call
            # for the LRCN (0.08 s vs 1.4 s measured on 2 busy cores).
            proba = np.asarray(model.predict_on_batch(x), dtype=np.float64)
        proba = np.clip(proba, 0.0, None)
        if mode == "none" and self.scaling is not None:
            proba = self.scaling.apply(proba / np.maximum(proba.sum(axis=1, keepdims=True), 1e-12))
        temperature = float(self.temperature.get(mode, 1.0))
        if temperature != 1.0:  # softmax(logits / T) = p^(1/T), renormalised
            proba = np.exp(np.log(np.maximum(proba, 1e-300)) / temperature)
        return proba / np.maximum(proba.sum(axis=1, keepdims=True), 1e-12)


@dataclass
class Bundle:
    """A loaded bundle: branch models, fuser, classes, metrics and provenance."""

    path: Path
    id: str
    name: str
    classes: tuple[str, ...]
    audio: BranchModel | None
    video: BranchModel | None
    fusion: Any = None  # pipeline.serve.fusion.LateFusion
    meta: dict[str, Any] = field(default_factory=dict)
    detector_name: str = "mtcnn"
    _detector: Any = field(default=None, repr=False)

    def face_detector(self) -> Any:
        """The face detector for clips without landmarks, built on first use and kept
        (MTCNN loads its networks once; ``AVE_DETECTOR=haar`` picks the fast one)."""
        if self._detector is None:
            from pipeline.core.faces import make_detector

            self._detector = make_detector(os.environ.get("AVE_DETECTOR", self.detector_name))
        return self._detector

    def summary(self) -> dict[str, Any]:
        """Small JSON-able description (what ``predict --json`` reports as ``bundle``)."""
        out: dict[str, Any] = {"id": self.id, "name": self.name, "path": str(self.path),
                               "created": self.meta.get("created", ""), "classes": list(self.classes)}
        for branch in ("audio", "video", "fusion"):
            info = self.meta.get("models", {}).get(branch)
            if info:
                out[branch] = {k: info[k] for k in ("model", "protocol", "serving") if k in info}
                metrics = info.get("metrics") or {}
                if "accuracy_mean" in metrics:
                    n_folds = metrics.get("n_folds", "?")
                    spread = (f" ± {100 * metrics.get('accuracy_std', 0.0):.1f}" if n_folds != 1 else "")
                    out[branch]["accuracy"] = (f"{100 * metrics['accuracy_mean']:.1f}{spread} % "
                                               f"({metrics.get('protocol', '?')}, "
                                               f"{'one split' if n_folds == 1 else f'{n_folds} folds'})")
        return out


# --------------------------------------------------------------------------- helpers
def _keras_input_shape(model: Any) -> tuple[int, ...] | None:
    try:
        shape = model.input_shape
    except (AttributeError, ValueError):
        return None
    if isinstance(shape, list):
        shape = shape[0]
    dims = tuple(shape[1:])
    return dims if all(isinstance(d, int) for d in dims) else None


def _load_model(path: Path, framework: str) -> Any:
    if framework == "keras":
        from pipeline.core.native import load_tensorflow

        load_tensorflow()
        import keras

        import models

        models.available()  # imports every builder module: registers custom layers first
        return keras.saving.load_model(path, compile=False)
    import joblib

    return joblib.load(path)


def _face_serving(info: dict[str, Any], path: Path, key: str) -> dict[str, Any]:
    """A branch's ``views`` and ``scaling`` from its bundle.json entry, checked."""
    from pipeline.core.face_views import view_names
    from pipeline.core.scaling import Scaling

    out: dict[str, Any] = {}
    try:
        if info.get("views") not in (None, "none"):
            view_names(str(info["views"]))
            out["views"] = str(info["views"])
        if info.get("scaling"):
            out["scaling"] = Scaling.from_dict(info["scaling"])
            n_classes = len(Preprocessing.from_dict(info["preprocessing"]).classes)
            if len(out["scaling"].scale) != n_classes:
                raise ValueError(f"a scaling of {len(out['scaling'].scale)} classes for a model of {n_classes}")
    except ValueError as err:
        raise BundleError(f"bundle {path}: the {key} branch's serving record is unusable ({err})") from err
    return out


# --------------------------------------------------------------------------- reading
def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed ``bundle.json`` of a bundle folder (no model loading)."""
    path = Path(path)
    file = path / BUNDLE_FILE
    if not file.is_file():
        raise BundleError(f"no bundle at {path} (missing {BUNDLE_FILE}); run `make demo` or "
                          f"`python -m pipeline export` first")
    try:
        return json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise BundleError(f"{file} is not valid JSON ({err.msg} at line {err.lineno})") from err


def _model_loader(file: Path, framework: str, key: str, bundle: Path) -> Callable[[], Any]:
    def load() -> Any:
        try:
            return _load_model(file, framework)
        except Exception as err:
            raise BundleError(f"cannot load the {key} model of bundle {bundle} "
                              f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from err

    return load


def load_bundle(path: str | os.PathLike[str], *, lazy: bool = True) -> Bundle:
    """Read a bundle folder: parse ``bundle.json``, check every file is there, and load
    the small parts (scalers, calibrated models, references, fuser). Each branch's main
    model is loaded on its first use (:meth:`BranchModel.loaded`), or now with
    ``lazy=False``. Raises :class:`BundleError` for a missing or incomplete bundle (and,
    with ``lazy=False`` or at first use, a model that cannot be loaded)."""
    import joblib

    path = Path(path)
    meta = read_meta(path)
    models_meta = meta.get("models", {})
    loaded: dict[str, BranchModel | None] = {}
    for key in BRANCHES:
        info = models_meta.get(key)
        if not info:
            loaded[key] = None
            continue
        file = path / info["file"]
        if not file.exists():
            raise BundleError(f"bundle {path} is incomplete: {info['file']} is missing")
        loader = _model_loader(file, info["framework"], key, path)
        model = None if lazy else loader()
        scaler = joblib.load(path / info["scaler"]) if info.get("scaler") else None
        extras = ("model", "framework", "input_kind", "file", "full_frame", "preprocessing", "metrics", "scaler",
                  "calibrated", "reference", "temperature", "views", "scaling")
        rest = {k: v for k, v in info.items() if k not in extras}
        calibrated = {}
        for mode, rel in (info.get("calibrated") or {}).items():
            if not (path / rel).is_file():
                raise BundleError(f"bundle {path} is incomplete: {rel} is missing")
            calibrated[str(mode)] = joblib.load(path / rel)
        reference = joblib.load(path / info["reference"]) if info.get("reference") else None
        loaded[key] = BranchModel(branch=key, model_name=info["model"], framework=info["framework"],
                                  input_kind=info["input_kind"],
                                  params=Preprocessing.from_dict(info["preprocessing"]),
                                  model=model, scaler=scaler, full_frame=bool(info.get("full_frame")),
                                  metrics=info.get("metrics", {}), info=rest, calibrated=calibrated,
                                  temperature={str(k): float(v) for k, v in (info.get("temperature") or {}).items()},
                                  reference=reference, loader=loader, **_face_serving(info, path, key))
    fusion = None
    if models_meta.get("fusion"):
        fusion = joblib.load(path / models_meta["fusion"]["file"])
    if loaded["audio"] is None and loaded["video"] is None:
        raise BundleError(f"bundle {path} holds no branch model")
    return Bundle(path=path, id=str(meta.get("id", path.name)), name=str(meta.get("name", path.name)),
                  classes=tuple(meta["classes"]), audio=loaded["audio"], video=loaded["video"],
                  fusion=fusion, meta=meta, detector_name=str(meta.get("detector", "mtcnn")))
