"""Records returned by :func:`pipeline.inference.analyze`: what the system heard, saw
and decided for one clip. Plain dataclasses so the CLI can print them as JSON and the
dashboard can draw them without recomputing anything."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

OK = "ok"


@dataclass
class BranchResult:
    """One modality's answer. ``status`` is ``"ok"`` or a plain-words reason the branch
    abstained (``"no face"``, ``"silent audio"``, ``"no audio track"``...);
    ``probabilities`` maps emotion -> probability (empty when it abstained)."""

    status: str
    probabilities: dict[str, float] = field(default_factory=dict)
    detail: str = ""

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

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status,
                               "probabilities": {k: float(v) for k, v in self.probabilities.items()}}
        if self.detail:
            out["detail"] = self.detail
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

    def to_json(self) -> dict[str, Any]:
        """The ``predict --json`` object (arrays left out, counts kept)."""
        video = self.video.to_json()
        video["frames_with_face"] = int(self.frames_with_face)
        return {
            "source": self.source,
            "duration": float(self.duration),
            "audio": self.audio.to_json(),
            "video": video,
            "fused": self.fused.to_json(),
            "timeline": [w.to_json() for w in self.timeline],
            "timings": {k: round(float(v), 4) for k, v in self.timings.items()},
            "bundle": self.bundle,
        }
