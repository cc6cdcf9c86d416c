"""The fusion estimators that serve: late fusion of the audio and video branches'
class probabilities, and the missing-modality fallback every served answer shares.

Inputs are two ``(n, C)`` probability matrices (audio, video; columns in label-set
order). Learned fusion methods see their concatenation, ``(n, 2C)``, MinMax-scaled to
[0, 1] (scaler fitted on the fusion training data only); rule baselines combine the two
matrices directly. Every method is a small scikit-learn classifier whose
``predict_proba`` always returns all ``C`` columns, even when a class was absent from
its training data. Serving objects (pickled into bundles): :class:`LateFusion` (a fitted
fuser plus the fallback), :class:`ReliabilityFusion`, :class:`SingleBranch`.

This module is on the prediction path (:mod:`pipeline.serve.inference` reads the bundle's
fuser): it imports nothing of the research side. Fusion models must be trained on
*out-of-fold* branch probabilities (a branch model's probabilities for its own training
clips are over-confident); producing those (cross-fitting) and the fusion experiments
live beside the experiments, in :mod:`pipeline.research.fusion_runs`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone

log = logging.getLogger(__name__)

#: Learned fusion methods (a ``fusion_`` prefix names them in summaries).
METHODS: tuple[str, ...] = ("lr", "svm_linear", "svm_rbf", "svm_sigmoid", "knn", "mlp")
#: Rule baselines (a ``rule_`` prefix names them in summaries).
RULES: tuple[str, ...] = ("mean", "product", "weighted")
#: Every fuser name accepted by :func:`make_fuser`, as written in summaries.
ALL_FUSERS: tuple[str, ...] = tuple(f"fusion_{m}" for m in METHODS) + tuple(f"rule_{r}" for r in RULES)

_EPS = 1e-7


# --------------------------------------------------------------------------- helpers
def stack(p_audio: np.ndarray, p_video: np.ndarray) -> np.ndarray:
    """Concatenate (n, C) audio and (n, C) video probabilities into (n, 2C) features."""
    p_audio = np.asarray(p_audio, dtype=np.float64)
    p_video = np.asarray(p_video, dtype=np.float64)
    if p_audio.ndim != 2 or p_audio.shape != p_video.shape:
        raise ValueError(f"audio and video probabilities must be two (n, C) arrays of one shape, "
                         f"got {p_audio.shape} and {p_video.shape}")
    return np.hstack([p_audio, p_video])


def split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`stack`: (n, 2C) -> two (n, C) halves (audio, video)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] % 2:
        raise ValueError(f"fusion features must be (n, 2C), got shape {x.shape}")
    c = x.shape[1] // 2
    return x[:, :c], x[:, c:]


def normalize(p: np.ndarray) -> np.ndarray:
    """Rows clipped to >= 0 and scaled to sum to 1 (uniform where a row sums to 0)."""
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, None)
    total = p.sum(axis=1, keepdims=True)
    uniform = np.full_like(p, 1.0 / p.shape[1])
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), uniform)


def _full_proba(proba: np.ndarray, seen: np.ndarray, n_classes: int) -> np.ndarray:
    """Spread (n, len(seen)) probabilities over all ``n_classes`` columns."""
    out = np.zeros((proba.shape[0], n_classes))
    out[:, np.asarray(seen, dtype=int)] = proba
    return normalize(out)


# --------------------------------------------------------------------------- rules
class RuleFusion(ClassifierMixin, BaseEstimator):
    """Rule baselines on stacked (n, 2C) probabilities.

    ``mean``: average of the two branches. ``product``: normalised product (a naive-Bayes
    combination). ``weighted``: ``w * audio + (1 - w) * video`` with ``w`` chosen on the
    fit data from ``weight_grid`` by accuracy (ties go to the weight closest to 0.5); the
    fit data are out-of-fold probabilities, so this is validation tuning.
    """

    def __init__(self, rule: str = "mean", weight_grid: int = 21) -> None:
        self.rule = rule
        self.weight_grid = weight_grid

    def _combine(self, x: np.ndarray, weight: float) -> np.ndarray:
        audio, video = split(x)
        if self.rule == "product":
            return normalize(np.exp(np.log(audio + _EPS) + np.log(video + _EPS)))
        return normalize(weight * audio + (1.0 - weight) * video)

    def fit(self, x: np.ndarray, y: np.ndarray) -> "RuleFusion":
        if self.rule not in RULES:
            raise ValueError(f"unknown fusion rule {self.rule!r}; choose one of: {', '.join(RULES)}")
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=int)
        self.n_classes_ = x.shape[1] // 2
        self.classes_ = np.arange(self.n_classes_)
        self.weight_ = 0.5
        if self.rule == "weighted":
            grid = np.linspace(0.0, 1.0, int(self.weight_grid))
            scores = [float(np.mean(self._combine(x, w).argmax(axis=1) == y)) for w in grid]
            best = max(scores)
            candidates = [w for w, s in zip(grid, scores) if s >= best - 1e-12]
            self.weight_ = float(min(candidates, key=lambda w: abs(w - 0.5)))
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self._combine(np.asarray(x, dtype=np.float64), self.weight_)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.predict_proba(x).argmax(axis=1)


# --------------------------------------------------------------------------- learned
class LearnedFusion(ClassifierMixin, BaseEstimator):
    """A scikit-learn meta-classifier on MinMax-scaled stacked probabilities.

    ``method``: ``lr`` (multinomial logistic regression), ``svm_linear`` / ``svm_rbf`` /
    ``svm_sigmoid`` (SVC, probabilities by sigmoid calibration over inner folds),
    ``knn`` (k chosen by grid search over 1..24, capped by the training size), ``mlp``
    (one hidden layer of 40 units, 400 iterations). Labels are class indices 0..C-1.
    """

    def __init__(self, method: str = "lr", random_state: int | None = 0, max_k: int = 24) -> None:
        self.method = method
        self.random_state = random_state
        self.max_k = max_k

    def _cv(self, y: np.ndarray) -> int:
        """Inner folds for calibration / grid search: at most 3, at least 2."""
        counts = np.bincount(y)
        smallest = int(counts[counts > 0].min())
        return max(2, min(3, smallest))

    def _estimator(self, y: np.ndarray):
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GridSearchCV, StratifiedKFold
        from sklearn.neighbors import KNeighborsClassifier
        from sklearn.neural_network import MLPClassifier
        from sklearn.svm import SVC

        cv = StratifiedKFold(self._cv(y), shuffle=True, random_state=self.random_state)
        if self.method == "lr":
            return LogisticRegression(max_iter=1000, random_state=self.random_state)
        if self.method.startswith("svm_"):
            kernel = self.method[4:]
            return CalibratedClassifierCV(SVC(kernel=kernel, random_state=self.random_state),
                                          method="sigmoid", cv=cv, ensemble=False)
        if self.method == "knn":
            # The smallest inner training fold bounds k.
            largest_k = max(1, min(int(self.max_k), len(y) - int(np.ceil(len(y) / cv.n_splits))))
            return GridSearchCV(KNeighborsClassifier(), {"n_neighbors": list(range(1, largest_k + 1))},
                                cv=cv, scoring="accuracy")
        if self.method == "mlp":
            return MLPClassifier(hidden_layer_sizes=(40,), max_iter=400, random_state=self.random_state)
        raise ValueError(f"unknown fusion method {self.method!r}; choose one of: {', '.join(METHODS)}")

    def fit(self, x: np.ndarray, y: np.ndarray) -> "LearnedFusion":
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.preprocessing import MinMaxScaler

        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=int)
        if len(np.unique(y)) < 2:
            raise ValueError("fusion needs training clips of at least two classes")
        self.n_classes_ = x.shape[1] // 2
        self.classes_ = np.arange(self.n_classes_)
        self.scaler_ = MinMaxScaler().fit(x)
        self.model_ = self._estimator(y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model_.fit(self.scaler_.transform(x), y)
        self.params_ = dict(getattr(self.model_, "best_params_", {}) or {})
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        proba = self.model_.predict_proba(self.scaler_.transform(np.asarray(x, dtype=np.float64)))
        return _full_proba(proba, self.model_.classes_, self.n_classes_)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.predict_proba(x).argmax(axis=1)


def make_fuser(name: str, random_state: int | None = 0) -> BaseEstimator:
    """A fresh fuser by summary name (``fusion_lr`` ... ``rule_weighted``) or bare name."""
    bare = name.removeprefix("fusion_").removeprefix("rule_")
    if name.startswith("rule_") or (bare in RULES and not name.startswith("fusion_")):
        if bare not in RULES:
            raise ValueError(f"unknown fusion rule {name!r}; choose one of: {', '.join(RULES)}")
        return RuleFusion(rule=bare)
    if bare not in METHODS:
        raise ValueError(f"unknown fuser {name!r}; choose one of: {', '.join(ALL_FUSERS)}")
    return LearnedFusion(method=bare, random_state=random_state)


def fuser_name(name: str) -> str:
    """Canonical summary name of a fuser (``lr`` -> ``fusion_lr``, ``mean`` -> ``rule_mean``)."""
    if name in ALL_FUSERS:
        return name
    if name in METHODS:
        return f"fusion_{name}"
    if name in RULES:
        return f"rule_{name}"
    raise ValueError(f"unknown fuser {name!r}; choose one of: {', '.join(ALL_FUSERS)}")


# --------------------------------------------------------------------------- serving
@dataclass
class FusedAnswer:
    """What :meth:`LateFusion.fuse` decided for one clip: (C,) probabilities or none."""

    status: str
    probabilities: np.ndarray | None
    source: str  # "fusion", "audio only", "video only" or "none"


def fallback(p_audio: np.ndarray | None, p_video: np.ndarray | None,
             audio_reason: str = "", video_reason: str = "") -> FusedAnswer:
    """The missing-modality answer every serving fuser shares: the branch that answered,
    passed through and named; no answer (with both reasons) when neither did."""
    if p_audio is not None and p_video is not None:
        raise ValueError("both branches answered: fuse them, do not fall back")
    if p_audio is not None:
        why = f" ({video_reason})" if video_reason else ""
        return FusedAnswer("ok", normalize(np.asarray(p_audio)[None, :])[0], f"audio only: video abstained{why}")
    if p_video is not None:
        why = f" ({audio_reason})" if audio_reason else ""
        return FusedAnswer("ok", normalize(np.asarray(p_video)[None, :])[0], f"video only: audio abstained{why}")
    reasons = "; ".join(r for r in (f"audio: {audio_reason}" if audio_reason else "",
                                    f"video: {video_reason}" if video_reason else "") if r)
    return FusedAnswer(f"no usable modality ({reasons})" if reasons else "no usable modality", None, "none")


def reliability_weights(audio_score: float, video_score: float, n_classes: int) -> tuple[float, float]:
    """(audio, video) weights proportional to each branch's held-out score above chance.

    ``*_score``: a branch's held-out unweighted average recall (UAR, a fraction); chance
    is ``1 / n_classes``. A branch at or below chance gets weight 0 (it carries no
    information); when both do, the weights are equal. Sum to 1.
    """
    chance = 1.0 / max(int(n_classes), 1)
    above = np.clip(np.array([audio_score, video_score], dtype=np.float64) - chance, 0.0, None)
    if above.sum() <= 0:
        return 0.5, 0.5
    wa, wv = above / above.sum()
    return float(wa), float(wv)


class ReliabilityFusion:
    """Serving rule for branches never seen together: a weighted mean of the two
    branches' (C,) probabilities with fixed weights from each branch's *measured*
    held-out reliability (:func:`reliability_weights`), since no paired recordings
    exist to learn a fuser from (``bundles/real``: speech from RAVDESS speakers, faces
    from FER2013). Same missing-modality fallback as :class:`LateFusion`.
    """

    def __init__(self, audio_weight: float = 0.5, classes: Sequence[str] = (), basis: str = "") -> None:
        if not 0.0 <= audio_weight <= 1.0:
            raise ValueError(f"audio_weight must be in [0, 1], got {audio_weight}")
        self.audio_weight = float(audio_weight)
        self.classes = tuple(classes)
        self.basis = basis
        self.name = "rule_reliability"

    def predict_proba(self, p_audio: np.ndarray, p_video: np.ndarray) -> np.ndarray:
        """(n, C) weighted mean of (n, C) audio and video probabilities."""
        pa, pv = normalize(np.atleast_2d(p_audio)), normalize(np.atleast_2d(p_video))
        return normalize(self.audio_weight * pa + (1.0 - self.audio_weight) * pv)

    def fuse(self, p_audio: np.ndarray | None, p_video: np.ndarray | None,
             audio_reason: str = "", video_reason: str = "") -> FusedAnswer:
        """Fuse one clip's (C,) probabilities; fall back to the branch that answered."""
        if p_audio is not None and p_video is not None:
            proba = self.predict_proba(np.asarray(p_audio)[None, :], np.asarray(p_video)[None, :])[0]
            return FusedAnswer("ok", proba, f"reliability-weighted mean (audio {self.audio_weight:.2f}, "
                                            f"video {1 - self.audio_weight:.2f})")
        return fallback(p_audio, p_video, audio_reason, video_reason)

    def describe(self) -> dict:
        return {"name": self.name, "classes": list(self.classes), "audio_weight": self.audio_weight,
                "video_weight": 1.0 - self.audio_weight, "basis": self.basis}


class SingleBranch:
    """The fused answer of a bundle whose fuser did not beat its better branch on
    held-out clips: that branch's answer, said plainly ("audio alone: fusion did not
    help on held-out clips"). The other branch still answers when this one abstains."""

    def __init__(self, branch: str = "audio", classes: Sequence[str] = (), reason: str = "") -> None:
        if branch not in ("audio", "video"):
            raise ValueError(f"branch must be 'audio' or 'video', not {branch!r}")
        self.branch = branch
        self.classes = tuple(classes)
        self.reason = reason or "fusion did not help on held-out clips"
        self.name = f"{branch}_alone"

    def fuse(self, p_audio: np.ndarray | None, p_video: np.ndarray | None,
             audio_reason: str = "", video_reason: str = "") -> FusedAnswer:
        chosen = p_audio if self.branch == "audio" else p_video
        if chosen is not None:
            return FusedAnswer("ok", normalize(np.asarray(chosen)[None, :])[0], f"{self.branch} alone: {self.reason}")
        if self.branch == "audio":
            return fallback(None, p_video, audio_reason, video_reason)
        return fallback(p_audio, None, audio_reason, video_reason)

    def describe(self) -> dict:
        return {"name": self.name, "classes": list(self.classes), "branch": self.branch, "reason": self.reason}


class LateFusion:
    """The serving fuser: a fitted fuser plus the missing-modality fallback.

    ``fit(p_audio, p_video, y)`` on out-of-fold (n, C) probabilities and class indices.
    ``fuse(pa, pv)`` for one clip, where either may be None (abstaining branch): with
    both it runs the fuser, with one it passes that branch through and says so.
    """

    def __init__(self, name: str = "fusion_mlp", classes: Sequence[str] = (), random_state: int = 0) -> None:
        self.name = fuser_name(name)
        self.classes = tuple(classes)
        self.random_state = random_state
        self.model_: BaseEstimator | None = None

    def fit(self, p_audio: np.ndarray, p_video: np.ndarray, y: np.ndarray) -> "LateFusion":
        self.model_ = clone(make_fuser(self.name, self.random_state)).fit(stack(p_audio, p_video), y)
        return self

    def predict_proba(self, p_audio: np.ndarray, p_video: np.ndarray) -> np.ndarray:
        """(n, C) fused probabilities for clips where both branches answered."""
        if self.model_ is None:
            raise ValueError("the fusion model is not fitted")
        return self.model_.predict_proba(stack(p_audio, p_video))

    def fuse(self, p_audio: np.ndarray | None, p_video: np.ndarray | None,
             audio_reason: str = "", video_reason: str = "") -> FusedAnswer:
        """Fuse one clip's (C,) probabilities; fall back to the branch that answered."""
        if p_audio is not None and p_video is not None:
            proba = self.predict_proba(np.asarray(p_audio)[None, :], np.asarray(p_video)[None, :])[0]
            return FusedAnswer("ok", proba, "fusion")
        return fallback(p_audio, p_video, audio_reason, video_reason)

    def describe(self) -> dict:
        """JSON-able facts about the fitted fuser (name, learned params, rule weight)."""
        out: dict = {"name": self.name, "classes": list(self.classes)}
        if isinstance(self.model_, RuleFusion):
            out["audio_weight"] = float(self.model_.weight_)
        elif isinstance(self.model_, LearnedFusion):
            out.update({k: (v.item() if hasattr(v, "item") else v) for k, v in self.model_.params_.items()})
        return out
