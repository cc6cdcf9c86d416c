"""The Live page's moving parts, kept out of the page and out of Streamlit.

WebRTC callbacks run on another thread: they only push frames / samples into a
:class:`LiveHolder` (lock-protected ring buffers) and draw the latest answer; the page's
refreshing fragment takes a snapshot, calls :func:`predict`, and stores the answer back
for the overlay. Nothing here is a second copy of the serving path: faces are found and
cropped by :func:`pipeline.core.faces.face_box` and :func:`pipeline.core.faces.crop` (the rule and
geometry of every clip's crops), and the answers come from the same serving objects as
the Analyze page's (:func:`pipeline.serve.inference.answer_sound`,
:func:`pipeline.serve.inference.answer_faces`, :func:`pipeline.serve.inference.fuse`).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.serve.analysis import BranchResult

#: Seconds of audio the live audio answer listens to (the models' training window).
AUDIO_SECONDS = 3.0
#: Seconds over which the frames-per-second figure is measured.
FPS_WINDOW = 2.0


@dataclass
class LiveAnswer:
    """The latest live prediction (what the overlay and the panels show)."""

    audio: BranchResult = field(default_factory=lambda: BranchResult("waiting for sound"))
    video: BranchResult = field(default_factory=lambda: BranchResult("waiting for a face"))
    fused: BranchResult = field(default_factory=lambda: BranchResult("waiting"))
    at: float = 0.0


class LiveHolder:
    """Thread-safe buffers between the WebRTC callbacks and the page.

    ``crops``: the last ``n_crops`` 64 x 64 face crops (uint8 RGB); ``audio``: the last
    ``audio_seconds`` of mono float32 at ``sample_rate`` Hz; ``box``: the latest face box
    in frame pixels; frame arrival times for the frames-per-second figure.
    """

    def __init__(self, n_crops: int = 30, sample_rate: int = 22050,
                 audio_seconds: float = AUDIO_SECONDS) -> None:
        self.sample_rate = int(sample_rate)
        self._lock = threading.Lock()
        self._crops: deque[np.ndarray] = deque(maxlen=int(n_crops))
        self._audio = np.zeros(0, dtype=np.float32)
        self._max_audio = int(audio_seconds * sample_rate)
        self._frame_times: deque[float] = deque(maxlen=600)
        self._box: tuple[int, int, int, int] | None = None
        self._answer = LiveAnswer()

    # ---- called from the WebRTC threads (tiny)
    def push_frame(self, box: tuple[int, int, int, int] | None, crop: np.ndarray | None,
                   now: float | None = None) -> None:
        with self._lock:
            self._frame_times.append(time.monotonic() if now is None else now)
            self._box = box
            if crop is not None:
                self._crops.append(crop)

    def push_audio(self, samples: np.ndarray) -> None:
        with self._lock:
            self._audio = np.concatenate([self._audio, np.asarray(samples, np.float32).reshape(-1)])
            if self._audio.size > self._max_audio:
                self._audio = self._audio[-self._max_audio:]

    def overlay(self) -> tuple[tuple[int, int, int, int] | None, LiveAnswer]:
        with self._lock:
            return self._box, self._answer

    # ---- called from the page
    def snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        """(crops (k, 64, 64, 3) uint8, audio (n,) float32) copies of the buffers."""
        with self._lock:
            crops = np.stack(self._crops) if self._crops else np.zeros((0, 64, 64, 3), np.uint8)
            return crops, self._audio.copy()

    def fps(self, now: float | None = None) -> float:
        """Frames received per second over the last :data:`FPS_WINDOW` seconds."""
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = [t for t in self._frame_times if now - t <= FPS_WINDOW]
        if len(recent) < 2:
            return 0.0
        span = max(recent[-1] - recent[0], 1e-6)
        return (len(recent) - 1) / span

    def set_answer(self, answer: LiveAnswer) -> None:
        with self._lock:
            self._answer = answer

    def answer(self) -> LiveAnswer:
        with self._lock:
            return self._answer


def predict_audio(bundle: Any, samples: np.ndarray, calibration: Any = None) -> BranchResult:
    """The audio branch on the last seconds of sound (the window starts at 0 s), exactly
    as a clip's window is answered (:func:`pipeline.serve.inference.answer_sound`);
    ``calibration``: the session's calm-voice statistics, when the person calibrated."""
    from pipeline.core import audio
    from pipeline.serve.inference import answer_sound

    branch = bundle.audio
    if branch is None:
        return BranchResult("no model in the bundle")
    rate = branch.params.sample_rate
    if samples.size < rate // 2:
        return BranchResult("waiting for sound", {}, "less than half a second heard so far")
    samples = audio.remove_drift(samples, rate)  # as the decoder does for files
    result = answer_sound(samples, bundle, offset=0.0, calibration=calibration)
    if result.status.startswith("too short"):
        result.detail = "say a whole sentence"
    return result


def predict_video(bundle: Any, crops: np.ndarray) -> BranchResult:
    """The video branch on the last ``n_frames`` face crops, as a clip's window is
    answered (:func:`pipeline.serve.inference.answer_faces`: per-frame face models see each
    crop through the one crop-to-input function and pool, clip models see the sequence)."""
    from pipeline.serve.inference import answer_faces

    branch = bundle.video
    if branch is None:
        return BranchResult("no model in the bundle")
    n = branch.params.n_frames
    if len(crops) < n:
        return BranchResult("no face", {}, f"{len(crops)} of {n} face crops collected")
    if branch.full_frame:
        return BranchResult("no model in the bundle", {}, "this video model needs whole frames")
    return answer_faces(crops[-n:], bundle)


def fuse(bundle: Any, audio_result: BranchResult, video_result: BranchResult) -> BranchResult:
    """The bundle's late fusion, falling back to whichever branch answered
    (:func:`pipeline.serve.inference.fuse`, as for every window of a clip), with the
    held-out calibration of the model behind it (:func:`pipeline.serve.inference.calibrate`)."""
    from pipeline.serve.inference import calibrate, fuse as fuse_answers

    fused = fuse_answers(bundle, audio_result, video_result)
    calibrate(bundle, audio_result, video_result, fused)
    return fused


def predict(bundle: Any, holder: LiveHolder, calibration: Any = None) -> LiveAnswer:
    """One refresh: snapshot the buffers, run both branches and fusion, store the answer."""
    crops, samples = holder.snapshot()
    audio_result = predict_audio(bundle, samples, calibration)
    video_result = predict_video(bundle, crops)
    answer = LiveAnswer(audio_result, video_result, fuse(bundle, audio_result, video_result), time.time())
    holder.set_answer(answer)
    return answer


def annotate(rgb: np.ndarray, box: tuple[int, int, int, int] | None, label: str,
             fps: float | None = None) -> np.ndarray:
    """Copy of a (H, W, 3) uint8 RGB frame with the face box, the current video emotion
    above it and the frames-per-second figure in a corner."""
    import cv2

    out = np.ascontiguousarray(rgb).copy()
    scale = max(0.45, out.shape[1] / 640.0)  # text and lines sized to the frame
    thick = max(1, int(round(2 * scale)))
    if box is not None:
        x0, y0, x1, y1 = (int(v) for v in box)
        cv2.rectangle(out, (x0, y0), (x1, y1), (0, 220, 0), thick)
        if label:
            cv2.putText(out, label, (x0 + 2, max(int(16 * scale), y0 - 6)), cv2.FONT_HERSHEY_SIMPLEX,
                        0.6 * scale, (0, 220, 0), thick, cv2.LINE_AA)
    if fps is not None:
        cv2.putText(out, f"{fps:.0f} fps", (6, out.shape[0] - 6), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5 * scale, (255, 255, 255), max(1, thick - 1), cv2.LINE_AA)
    return out


def face_crop(rgb: np.ndarray, detector: Any, crop_size: int = 64, margin: float = 0.15,
              detect_side: int = 320) -> tuple[tuple[int, int, int, int] | None, np.ndarray | None]:
    """(box, crop) of the main face in one frame, or (None, None): the pipeline's own
    finder rule and box (:func:`pipeline.core.faces.face_box`) and crop
    (:func:`pipeline.core.faces.crop`, ``crop_size`` square RGB), as for a clip's frames."""
    from pipeline.core import faces

    box = faces.face_box(rgb, detector, margin, detect_side)
    if box is None:
        return None, None
    return box.as_tuple(), faces.crop(rgb, box, crop_size)


def label_of(result: BranchResult) -> str:
    """'happy 72%' for an answering branch, '' otherwise (overlay text)."""
    winner = result.winner if result.ok else None
    return f"{winner[0]} {100 * winner[1]:.0f}%" if winner else ""


def silent_like(frame: Any) -> Any:
    """An ``av.AudioFrame`` shaped like ``frame`` but silent. The audio callback must
    return frames that are sent back to the browser (streamlit-webrtc only pulls audio
    through the callback when it is sent back), and silence avoids an echo."""
    import av

    silent = av.AudioFrame.from_ndarray(np.zeros_like(frame.to_ndarray()), format=frame.format.name,
                                        layout=frame.layout.name)
    silent.sample_rate = frame.sample_rate
    silent.pts = frame.pts
    if frame.time_base is not None:
        silent.time_base = frame.time_base
    return silent
