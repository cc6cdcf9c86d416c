"""Model bundles: everything ``predict`` and the dashboard need to answer, in one folder.

Layout::

    <bundle>/
      bundle.json           id, name, created, classes, label set, per branch: model name,
                            framework, input kind, Preprocessing, metrics (mean +- std of
                            the run it came from), protocol, which fold serves, source run
      audio/model.keras | audio/model.joblib  (+ optional audio/scaler.joblib)
      video/model.keras | video/model.joblib
      fusion/model.joblib   a fitted :class:`pipeline.fusion.LateFusion`

The Preprocessing saved per branch is the one the model was trained with, and
:mod:`pipeline.inference` featurizes with exactly it, so serving cannot drift from
training. Keras models are loaded once, when the bundle is loaded.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from pipeline.preprocessing import Preprocessing

log = logging.getLogger(__name__)

BUNDLE_FILE = "bundle.json"
FORMAT_VERSION = 1
BRANCHES: tuple[str, ...] = ("audio", "video")


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

    def prepare(self, features: np.ndarray) -> np.ndarray:
        """Turn a batch of features (n, *feature_shape) into the model's input.

        Video crops are uint8 and become float32 in [0, 1]; inputs are reshaped to the
        Keras model's declared input shape (e.g. (40,) -> (40, 1)) or flattened for
        scikit-learn.
        """
        from pipeline.training import model_input

        x = model_input(np.asarray(features))  # the very scaling training used
        n = x.shape[0]
        if self.scaler is not None:
            shape = x.shape
            x = np.asarray(self.scaler.transform(x.reshape(n, -1)), dtype=np.float32).reshape(shape)
        if self.framework == "sklearn":
            return x.reshape(n, -1)
        shape = _keras_input_shape(self.model)
        if shape is not None and int(np.prod(shape)) == int(np.prod(x.shape[1:])):
            x = x.reshape((n, *shape))
        return x

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """(n, C) class probabilities for a batch of features, rows summing to 1."""
        x = self.prepare(features)
        if self.framework == "sklearn":
            proba = np.asarray(self.model.predict_proba(x), dtype=np.float64)
            seen = np.asarray(getattr(self.model, "classes_", np.arange(proba.shape[1])), dtype=int)
            full = np.zeros((proba.shape[0], len(self.params.classes)))
            full[:, seen] = proba
            proba = full
        else:
            # predict_on_batch runs a compiled graph: ~17x faster than an eager call
            # for the LRCN (0.08 s vs 1.4 s measured on 2 busy cores).
            proba = np.asarray(self.model.predict_on_batch(x), dtype=np.float64)
        proba = np.clip(proba, 0.0, None)
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
    fusion: Any = None  # pipeline.fusion.LateFusion
    meta: dict[str, Any] = field(default_factory=dict)
    detector_name: str = "mtcnn"
    _detector: Any = field(default=None, repr=False)

    def face_detector(self) -> Any:
        """The face detector for clips without landmarks, built on first use and kept
        (MTCNN loads its networks once; ``AVE_DETECTOR=haar`` picks the fast one)."""
        if self._detector is None:
            from pipeline.faces import make_detector

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
                    out[branch]["accuracy"] = (f"{100 * metrics['accuracy_mean']:.1f} ± "
                                               f"{100 * metrics.get('accuracy_std', 0.0):.1f} % "
                                               f"({metrics.get('protocol', '?')}, {metrics.get('n_folds', '?')} folds)")
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


def _atomic_json(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, default=_json_default)
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _save_model(model: Any, framework: str, folder: Path) -> str:
    """Write a Keras or scikit-learn model into ``folder``; return the file name.
    ``model`` may also be the path of a saved model file, which is copied as is."""
    import joblib

    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(model, (str, Path)):
        source = Path(model)
        shutil.copy2(source, folder / source.name)
        return source.name
    if framework == "keras":
        model.save(folder / "model.keras")
        return "model.keras"
    joblib.dump(model, folder / "model.joblib")
    return "model.joblib"


@contextmanager
def _native_stderr_quiet() -> Iterator[None]:
    """Silence file descriptor 2 while TensorFlow starts: its C++ start-up notices
    (oneDNN, CPU features) would otherwise bury the one-line messages the CLI prints.
    Python exceptions still propagate (and are reported by the caller)."""
    import sys

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (e.g. some notebook hosts)
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _load_model(path: Path, framework: str) -> Any:
    if framework == "keras":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        with _native_stderr_quiet():
            from pipeline.native import load_before_tensorflow

            load_before_tensorflow()
            import keras

            import models

            models.available()  # imports every builder module: registers custom layers first
            return keras.saving.load_model(path, compile=False)
    import joblib

    return joblib.load(path)


# --------------------------------------------------------------------------- writing
def write_bundle(out: str | os.PathLike[str], *, name: str, audio: BranchModel | None,
                 video: BranchModel | None, fusion: Any = None,
                 extra: dict[str, Any] | None = None) -> Path:
    """Write a bundle folder from in-memory models (temp folder, then rename).

    Both branches must share one label set; either may be None (a one-branch bundle).
    ``fusion`` is a fitted :class:`pipeline.fusion.LateFusion` or None.
    """
    import joblib

    branches = {b.branch: b for b in (audio, video) if b is not None}
    if not branches:
        raise BundleError("a bundle needs at least one branch model")
    class_sets = {b.params.classes for b in branches.values()}
    if len(class_sets) != 1:
        raise BundleError("the audio and video models were trained on different label sets")
    classes = class_sets.pop()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-"))
    try:
        meta_models: dict[str, Any] = {}
        for key, branch in branches.items():
            file = _save_model(branch.model, branch.framework, tmp / key)
            info = {"model": branch.model_name, "framework": branch.framework,
                    "input_kind": branch.input_kind, "file": f"{key}/{file}",
                    "full_frame": bool(branch.full_frame), "preprocessing": branch.params.to_dict(),
                    "metrics": branch.metrics, **branch.info}
            if branch.scaler is not None:
                joblib.dump(branch.scaler, tmp / key / "scaler.joblib")
                info["scaler"] = f"{key}/scaler.joblib"
            meta_models[key] = info
        if fusion is not None:
            (tmp / "fusion").mkdir()
            joblib.dump(fusion, tmp / "fusion" / "model.joblib")
            meta_models["fusion"] = {"file": "fusion/model.joblib", **fusion.describe(),
                                     "model": fusion.name, **(extra or {}).get("fusion", {})}
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        digest = hashlib.sha1(json.dumps(meta_models, sort_keys=True, default=_json_default).encode()
                              + created.encode()).hexdigest()[:10]
        meta = {"format": FORMAT_VERSION, "id": f"{name}-{digest}", "name": name, "created": created,
                "classes": list(classes), "labels": next(iter(branches.values())).params.labels,
                "models": meta_models,
                **{k: v for k, v in (extra or {}).items() if k != "fusion"}}
        _atomic_json(tmp / BUNDLE_FILE, meta)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("bundle %s written to %s", name, out)
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


def load_bundle(path: str | os.PathLike[str]) -> Bundle:
    """Load a bundle folder: parse ``bundle.json`` and load every model once."""
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
        try:
            model = _load_model(file, info["framework"])
        except Exception as err:
            raise BundleError(f"cannot load the {key} model of bundle {path} "
                              f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from err
        scaler = joblib.load(path / info["scaler"]) if info.get("scaler") else None
        rest = {k: v for k, v in info.items() if k not in ("model", "framework", "input_kind", "file",
                                                          "full_frame", "preprocessing", "metrics", "scaler")}
        loaded[key] = BranchModel(branch=key, model_name=info["model"], framework=info["framework"],
                                  input_kind=info["input_kind"],
                                  params=Preprocessing.from_dict(info["preprocessing"]),
                                  model=model, scaler=scaler, full_frame=bool(info.get("full_frame")),
                                  metrics=info.get("metrics", {}), info=rest)
    fusion = None
    if models_meta.get("fusion"):
        fusion = joblib.load(path / models_meta["fusion"]["file"])
    if loaded["audio"] is None and loaded["video"] is None:
        raise BundleError(f"bundle {path} holds no branch model")
    return Bundle(path=path, id=str(meta.get("id", path.name)), name=str(meta.get("name", path.name)),
                  classes=tuple(meta["classes"]), audio=loaded["audio"], video=loaded["video"],
                  fusion=fusion, meta=meta, detector_name=str(meta.get("detector", "mtcnn")))


# --------------------------------------------------------------------------- export
SUMMARY_METRICS: tuple[str, ...] = ("accuracy", "uar", "macro_f1", "ece")


def _protocol_folds(variant_dir: Path) -> tuple[str, list[str]]:
    """(protocol, its finished folds) of a run variant, preferring ``speaker``."""
    from pipeline import results

    names = results.folds(variant_dir.parent, variant_dir.name)
    if not names:
        raise BundleError(f"{variant_dir} holds no finished fold; run its experiment first")
    for protocol in ("speaker", "random"):
        chosen = [n for n in names if n.startswith(protocol + "-")]
        if chosen:
            return protocol, chosen
    return names[0].split("-")[0], names


def run_metrics(variant_dir: Path, protocol: str, folds: list[str]) -> dict[str, Any]:
    """Mean and sample std over the folds of one protocol (fractions), as measured."""
    values: dict[str, list[float]] = {k: [] for k in SUMMARY_METRICS}
    for fold in folds:
        metrics = json.loads((variant_dir / fold / "metrics.json").read_text(encoding="utf-8"))
        for key in SUMMARY_METRICS:
            if metrics.get(key) is not None:
                values[key].append(float(metrics[key]))
    out: dict[str, Any] = {"protocol": protocol, "n_folds": len(folds)}
    for key, vals in values.items():
        if vals:
            out[f"{key}_mean"] = float(np.mean(vals))
            out[f"{key}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
    return out


def pick_fold(variant_dir: Path, folds: list[str]) -> tuple[str, str]:
    """The fold whose model serves, and why.

    Keras runs: the fold with the lowest validation loss (its early-stopping criterion;
    test scores are not looked at). scikit-learn runs have no validation history: the
    fold with the median test accuracy, so the choice neither flatters nor sinks it.
    """
    import pandas as pd

    losses = {}
    for fold in folds:
        history = variant_dir / fold / "history.csv"
        if history.is_file():
            frame = pd.read_csv(history)
            if "val_loss" in frame and frame["val_loss"].notna().any():
                losses[fold] = float(frame["val_loss"].min())
    if losses:
        best = min(losses, key=losses.get)
        return best, f"fold {best}: lowest validation loss ({losses[best]:.3f}) of {len(folds)} folds"
    accs = {f: json.loads((variant_dir / f / "metrics.json").read_text())["accuracy"] for f in folds}
    ranked = sorted(accs, key=accs.get)
    median = ranked[(len(ranked) - 1) // 2]
    return median, f"fold {median}: median test accuracy of {len(folds)} folds (no validation history)"


def _branch_from_run(variant_dir: Path, branch: str) -> BranchModel:
    """A BranchModel (model as a file path) from a finished run variant folder."""
    import yaml

    protocol, folds = _protocol_folds(variant_dir)
    fold, why = pick_fold(variant_dir, folds)
    fold_dir = variant_dir / fold
    config = yaml.safe_load((fold_dir / "config.yaml").read_text(encoding="utf-8")) or {}
    model_file = next((fold_dir / n for n in ("model.keras", "model.joblib") if (fold_dir / n).is_file()), None)
    if model_file is None:
        raise BundleError(f"{fold_dir} holds no model file")
    if config.get("branch") not in (None, branch):
        raise BundleError(f"{variant_dir} is a {config.get('branch')} run, not a {branch} run")
    params = Preprocessing.from_dict(config.get("preprocessing_params") or
                                     {**(config.get("preprocessing") or {}), "labels": config.get("labels", "six")})
    kind = str(config.get("feature_kind") or (config.get("features") or {}).get("kind", ""))
    full_frame = kind == "frames_full" or bool((config.get("features") or {}).get("full_frame"))
    metrics = run_metrics(variant_dir, protocol, folds)
    fold_metrics = json.loads((fold_dir / "metrics.json").read_text(encoding="utf-8"))
    metrics["serving_fold_accuracy"] = float(fold_metrics.get("accuracy", float("nan")))
    return BranchModel(
        branch=branch, model_name=str((config.get("model") or {}).get("name", "")),
        framework=str(config.get("framework") or ("keras" if model_file.suffix == ".keras" else "sklearn")),
        input_kind="frames" if branch == "video" else kind, params=params, model=model_file,
        full_frame=full_frame, metrics=metrics,
        info={"protocol": protocol, "serving": why, "source": str(variant_dir.resolve()),
              "experiment": str(config.get("experiment", variant_dir.parent.name)),
              "detector": (config.get("features") or {}).get("detector")})


def _fusion_from_run(fusion_dir: Path, classes: tuple[str, ...]) -> tuple[Any, dict[str, Any]]:
    """Refit the run's fuser on every out-of-fold branch probability of its experiment.

    The fusion experiment's ``audio``/``video`` test predictions give, for every clip,
    probabilities from branch models that never saw it (one fold per clip under the
    speaker protocol): exactly what a served branch model produces for a new person.
    """
    import yaml

    from pipeline import results
    from pipeline.fusion import LateFusion, _aligned

    protocol, folds = _protocol_folds(fusion_dir)
    config = yaml.safe_load((fusion_dir / folds[0] / "config.yaml").read_text(encoding="utf-8")) or {}
    name = str(config.get("fuser") or fusion_dir.name)
    exp_dir = fusion_dir.parent
    frames = {}
    for b in ("audio", "video"):
        preds = results.load_predictions(exp_dir, b)
        if preds.empty:
            raise BundleError(f"{exp_dir} has no {b} predictions to refit the fuser on")
        frames[b] = preds.loc[preds["fold"].astype(str).str.startswith(protocol + "-")]
    pa, pv, y, _ = _aligned(frames, classes)
    fuser = LateFusion(name, classes=classes, random_state=0).fit(pa, pv, y)
    metrics = run_metrics(fusion_dir, protocol, folds)
    info = {"metrics": metrics, "protocol": protocol, "source": str(fusion_dir.resolve()),
            "serving": f"{name} refit on the out-of-fold audio and video probabilities of all "
                       f"{len(y)} clips ({protocol} protocol)"}
    return fuser, info


def export_bundle(audio_run: str | os.PathLike[str] | None, video_run: str | os.PathLike[str] | None,
                  fusion_run: str | os.PathLike[str] | None = None, *, out: str | os.PathLike[str] | None = None,
                  name: str = "demo") -> Path:
    """Export finished runs (``runs/<experiment>/<variant>`` folders) as a bundle.

    Each branch serves one fold model (see :func:`pick_fold`) and carries the mean +-
    std metrics of its run's folds; the fuser is refit as :func:`_fusion_from_run` says.
    Returns the bundle folder (``bundles/<name>`` by default).
    """
    from pipeline import paths

    if not audio_run and not video_run:
        raise BundleError("export needs at least --audio or --video (a runs/<experiment>/<variant> folder)")
    branches: dict[str, BranchModel | None] = {}
    for branch, run in (("audio", audio_run), ("video", video_run)):
        if run:
            run = Path(run)
            if not run.is_dir():
                raise BundleError(f"run folder not found: {run}")
            branches[branch] = _branch_from_run(run, branch)
        else:
            branches[branch] = None
    classes = next(b.params.classes for b in branches.values() if b is not None)
    fuser, extra = None, {}
    if fusion_run:
        if not (branches["audio"] and branches["video"]):
            raise BundleError("a fusion model needs both an audio and a video run")
        if not Path(fusion_run).is_dir():
            raise BundleError(f"run folder not found: {fusion_run}")
        fuser, info = _fusion_from_run(Path(fusion_run), classes)
        extra["fusion"] = info
    detector = (branches["video"].info.get("detector") if branches["video"] else None) or "mtcnn"
    extra["detector"] = detector
    target = Path(out) if out else paths.bundles_dir() / name
    return write_bundle(target, name=name, audio=branches["audio"], video=branches["video"],
                        fusion=fuser, extra=extra)
