"""Records returned by :func:`pipeline.serve.inference.analyze`: what the system heard, saw
and decided for one clip. Plain dataclasses so the CLI can print them as JSON and the
dashboard can draw them without recomputing anything."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

OK = "ok"
#: The audio branch's ``detail`` when the input was a photo (a one-frame clip, no sound).
STILL_IMAGE = "a still image"

#: An answer is stated plainly only when its probability, less the model's held-out
#: expected calibration error (ECE), is at least this; below it the product says "not
#: sure". Why 0.5: at or above it the answer is, as far as the held-out folds can tell,
#: more likely right than wrong; below it the named emotion is more likely wrong than
#: right, and six-way answers from these models often sit there (docs/dashboard.md).
SURE_AT: float = 0.5


def confidence_word(probability: float, ece: float | None = None, sure_at: float = SURE_AT) -> str:
    """``"sure"`` or ``"not sure"`` for an answer with top-class ``probability``.

    ``ece``: the branch's expected calibration error measured on held-out folds (a
    fraction; how far its stated confidence strayed from its accuracy, on average). The
    probability is discounted by it before the comparison with ``sure_at``; without a
    measured ECE the probability is taken at face value. Pure function.
    """
    margin = float(ece) if ece is not None and np.isfinite(ece) else 0.0
    return "sure" if float(probability) - max(margin, 0.0) >= sure_at else "not sure"


def calibration_of(metrics: dict[str, Any] | None) -> dict[str, Any]:
    """The held-out calibration a bundle records for a branch (its run's ``metrics``:
    ``ece_mean``/``ece``, ``accuracy_mean``/``accuracy``, ``protocol``, ``n_folds``),
    as ``{"ece": ..., "accuracy": ..., "protocol": ..., "n_folds": ...}``; keys the
    metrics lack are left out (empty dict when none)."""
    metrics = metrics or {}
    out: dict[str, Any] = {}
    for key in ("ece", "accuracy"):
        value = metrics.get(f"{key}_mean", metrics.get(key))
        if isinstance(value, dict):  # {"mean": ..., "std": ...}
            value = value.get("mean")
        if isinstance(value, (int, float)) and np.isfinite(value):
            out[key] = float(value)
    for key in ("protocol", "n_folds"):
        if metrics.get(key) is not None:
            out[key] = metrics[key]
    return out


@dataclass
class BranchResult:
    """One modality's answer. ``status`` is ``"ok"`` or a plain-words reason the branch
    abstained (``"no face"``, ``"silent audio"``, ``"no audio track"``...);
    ``probabilities`` maps emotion -> probability (empty when it abstained)."""

    status: str
    probabilities: dict[str, float] = field(default_factory=dict)
    detail: str = ""
    #: Held-out calibration of the model that answered (:func:`calibration_of`).
    calibration: dict[str, Any] = field(default_factory=dict)
    #: Plain notes about the input that keep the answer from being "sure" ("noisy:
    #: voices or noise fill the pauses between words", "unusual voice: ..."; :mod:`pipeline.serve.conditions`).
    notes: list[str] = field(default_factory=list)
    #: How the features were normalised to the speaker (:data:`pipeline.core.calibration.MODES`;
    #: empty for branches without such a choice).
    normalisation: str = ""
    #: What was measured about the input (:meth:`pipeline.serve.conditions.Conditions.to_json`).
    conditions: dict[str, Any] = field(default_factory=dict)
    #: The feature row the model answered from (after any speaker normalisation) and the
    #: normalisation mode's key, kept for :mod:`pipeline.serve.explain`; not in the JSON.
    model_input: np.ndarray | None = field(default=None, repr=False, compare=False)
    model_mode: str = ""

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def winner(self) -> tuple[str, float] | None:
        """(emotion, probability) of the most likely class, or None when abstaining."""
        if not self.probabilities:
            return None
        emotion = max(self.probabilities, key=self.probabilities.get)
        return emotion, float(self.probabilities[emotion])

    @property
    def confidence(self) -> str | None:
        """``"sure"``/``"not sure"`` (:func:`confidence_word` with this model's held-out
        ECE), or None when the branch abstained."""
        top = self.winner if self.ok else None
        if top is None:
            return None
        return "not sure" if self.notes else confidence_word(top[1], self.calibration.get("ece"))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status,
                               "probabilities": {k: float(v) for k, v in self.probabilities.items()}}
        if self.detail:
            out["detail"] = self.detail
        if self.calibration:
            out["calibration"] = dict(self.calibration)
        if self.notes:
            out["notes"] = list(self.notes)
        if self.normalisation:
            out["normalisation"] = self.normalisation
        if self.conditions:
            out["conditions"] = dict(self.conditions)
        if self.confidence is not None:
            out["confidence"] = self.confidence
        return out


@dataclass
class TimelineWindow:
    """Predictions for one analysis window of a long clip (times in seconds)."""

    start: float
    end: float
    audio: BranchResult
    video: BranchResult
    fused: BranchResult

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "audio": self.audio.to_json(),
                "video": self.video.to_json(), "fused": self.fused.to_json()}


@dataclass
class Analysis:
    """Everything the system computed for one clip.

    waveform: (n,) float32 mono at ``sample_rate`` Hz (whole clip).
    mfcc: (n_mfcc, T) matrix of the analysis window; ``mfcc_times`` (T,) seconds.
    frames: (n_frames, H, W, 3) uint8 RGB sampled frames (downscaled for display);
    frame_times: (n_frames,) seconds; boxes: per frame (x0, y0, x1, y1) in the
    coordinates of ``frames`` or None where no face; crops: (n_frames, 64, 64, 3) uint8.
    timings: seconds per stage. bundle: id and metadata of the bundle that answered.
    analysed_seconds: how much of the file was analysed (``duration`` unless the clip
    was cut at the length cap; None = all of it). faces_seen: how many faces were in
    view (one was followed). still_image: the input was a photo. notes: plain sentences about what the system decided on
    the user's behalf (a cut, a cover picture ignored, a channel chosen, several faces).
    """

    source: str
    duration: float
    sample_rate: int
    audio: BranchResult
    video: BranchResult
    fused: BranchResult
    waveform: np.ndarray | None = None
    mfcc: np.ndarray | None = None
    mfcc_times: np.ndarray | None = None
    frames: np.ndarray | None = None
    frame_times: np.ndarray | None = None
    boxes: list[tuple[float, float, float, float] | None] = field(default_factory=list)
    crops: np.ndarray | None = None
    frames_with_face: int = 0
    timeline: list[TimelineWindow] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    bundle: dict[str, Any] = field(default_factory=dict)
    analysed_seconds: float | None = None
    faces_seen: int = 0
    notes: list[str] = field(default_factory=list)
    #: The input was a photo: a one-frame clip without sound (whatever the file is called).
    still_image: bool = False

    @property
    def analysed(self) -> float:
        """Seconds of the file analysed (``duration`` when nothing was cut)."""
        return float(self.duration if self.analysed_seconds is None else self.analysed_seconds)

    def to_json(self) -> dict[str, Any]:
        """The ``predict --json`` object (arrays left out, counts kept)."""
        video = self.video.to_json()
        video["frames_with_face"] = int(self.frames_with_face)
        video["faces_seen"] = int(self.faces_seen)
        return {
            "source": self.source,
            "duration": float(self.duration),
            "analysed_seconds": self.analysed,
            "notes": list(self.notes),
            "audio": self.audio.to_json(),
            "video": video,
            "fused": self.fused.to_json(),
            "timeline": [w.to_json() for w in self.timeline],
            "timings": {k: round(float(v), 4) for k, v in self.timings.items()},
            "bundle": self.bundle,
        }
