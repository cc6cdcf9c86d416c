"""From a video file (or bytes) to the video models' input: 30 face crops of 64 x 64.

Steps, one decode per clip:

1. decode the first video stream once with :func:`pipeline.media.iter_frames` at a
   display size (longer side <= 320 px), keeping only a bounded, evenly thinned set of
   frames (never the whole clip: a full RAVDESS run decodes 2,452 clips of 1280 x 720);
2. pick ``params.n_frames`` frames evenly spaced in *time* (presentation timestamps,
   so variable frame rates are honoured; clips with fewer frames repeat frames evenly);
3. find the face: the OpenFace landmark CSV when the corpus has one, else a face
   detector (:mod:`pipeline.faces`); or the whole frame (``full_frame=True``, the
   report's "without landmarks" ablation);
4. crop and resize to ``params.crop_size`` square, RGB uint8.

Crops stay uint8 (on disk and in memory: 2,452 clips x 30 x 64 x 64 x 3 = 0.9 GB);
the models scale them to [0, 1] themselves with a ``Rescaling(1/255)`` first layer
(:mod:`models.video`), so nobody divides by 255 anywhere else.

:func:`clip_frames` never raises on a bad clip: it returns a :class:`VideoSample` whose
``status`` says why (what the dashboard shows). :func:`featurize` is the training-path
form: crops or a :class:`pipeline.media.MediaError`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from pipeline import faces, media
from pipeline.preprocessing import Preprocessing

log = logging.getLogger(__name__)

OK = "ok"
NOT_READABLE = "not a readable video file"
NO_VIDEO = "no video track"
UNDECODABLE = "the video stream cannot be decoded"
NO_FRAMES = "the video stream holds no frames"
NO_FACE = "no face found in any frame"
FEW_FACES = "a face was found in too few frames"

#: Statuses that mean "a video, but no usable face" (the branch abstains, no error).
FACE_STATUSES = (NO_FACE, FEW_FACES)


class NoFaceError(media.MediaError):
    """A decodable video in which no face (or too little of one) was found."""


@dataclass
class VideoSample:
    """What the video branch saw in one clip.

    ``frames`` (n, h, w, 3) uint8 RGB at display size (longer side <= 320 px);
    ``times`` (n,) presentation times in seconds; ``boxes`` one ``(x0, y0, x1, y1)``
    square in ``frames`` pixels per frame, or None where no face was found near that
    frame; ``crops`` (n, crop, crop, 3) uint8, the model input (empty, n = 0, when the
    clip has no usable face); ``status`` ``"ok"`` or a plain reason; ``detail`` a longer
    note (repeated frames, fallbacks, the decoder's message); ``method`` how faces were
    found (``landmarks``, ``mtcnn``, ``haar``, ``full frame``...); ``n_decoded`` how
    many frames the decoder produced.
    """

    frames: np.ndarray
    times: np.ndarray
    boxes: list[tuple[int, int, int, int] | None]
    crops: np.ndarray
    frames_with_face: int
    status: str
    detail: str = ""
    method: str = ""
    n_decoded: int = 0

    @property
    def ok(self) -> bool:
        return self.status == OK


def _source_name(src: media.Source) -> str:
    return "uploaded video" if isinstance(src, (bytes, bytearray, memoryview)) else Path(str(src)).name


def failed_sample(status: str, crop_size: int, detail: str = "", n_decoded: int = 0) -> VideoSample:
    return VideoSample(frames=np.zeros((0, 0, 0, 3), np.uint8), times=np.zeros(0), boxes=[],
                       crops=np.zeros((0, crop_size, crop_size, 3), np.uint8), frames_with_face=0,
                       status=status, detail=detail, n_decoded=n_decoded)


# --------------------------------------------------------------------------- sampling
def thin_evenly(stream: Iterable[tuple[float, np.ndarray]], cap: int) -> tuple[list[tuple[float, np.ndarray]], int]:
    """Keep an evenly spaced subset of a frame stream of unknown length in bounded memory.

    Every ``stride``-th frame is kept; when ``cap`` frames are held, every other one is
    dropped and the stride doubles. The last frame is always kept, so the subset spans
    the whole clip. Returns ``(kept (t, rgb) in order, number of frames seen)``; at most
    ``cap + 1`` frames are ever held.
    """
    cap = max(2, int(cap))
    kept: list[tuple[int, float, np.ndarray]] = []
    stride = 1
    last: tuple[int, float, np.ndarray] | None = None
    seen = 0
    for index, (t, rgb) in enumerate(stream):
        seen = index + 1
        last = (index, t, rgb)
        if index % stride == 0:
            kept.append(last)
            if len(kept) >= cap:
                kept = [k for k in kept if (k[0] // stride) % 2 == 0]
                stride *= 2
    if last is not None and (not kept or kept[-1][0] != last[0]):
        kept.append(last)
    return [(t, rgb) for _, t, rgb in kept], seen


def pick_even(times: np.ndarray, n: int) -> np.ndarray:
    """Indices into sorted ``times`` of the frames nearest ``n`` instants evenly spaced
    from the first to the last time (repeats when there are fewer than ``n`` frames)."""
    times = np.asarray(times, dtype=float)
    if len(times) == 0:
        return np.zeros(0, dtype=int)
    targets = np.linspace(times[0], times[-1], n)
    right = np.clip(np.searchsorted(times, targets), 1, len(times) - 1) if len(times) > 1 else np.zeros(n, int)
    if len(times) == 1:
        return right
    left = right - 1
    return np.where(np.abs(times[left] - targets) <= np.abs(times[right] - targets), left, right)


def limit_seconds(stream: Iterator[tuple[float, np.ndarray]], max_seconds: float | None) -> Iterator[tuple[float, np.ndarray]]:
    start = None
    for t, rgb in stream:
        start = t if start is None else start
        if max_seconds is not None and t - start > max_seconds:
            return
        yield t, rgb


def sample_frames(src: media.Source, n: int, *, max_side: int = 320,
                  max_seconds: float | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Decode once and return ``(times (n,) s, frames (n, h, w, 3) uint8, n_decoded)``.

    Frames are spread evenly in time over the clip (or its first ``max_seconds``),
    downscaled to ``max_side``; at most ``4 n + 1`` frames are held while decoding.
    Raises :class:`~pipeline.media.MediaError` when the stream cannot be decoded.
    """
    kept, seen = thin_evenly(limit_seconds(media.iter_frames(src, max_side=max_side), max_seconds), cap=4 * n)
    if not kept:
        return np.zeros(0), np.zeros((0, 0, 0, 3), np.uint8), 0
    kept.sort(key=lambda item: item[0])
    times = np.array([t for t, _ in kept], dtype=float)
    chosen = pick_even(times, n)
    shape = kept[0][1].shape
    frames = np.stack([kept[i][1] if kept[i][1].shape == shape else _fit(kept[i][1], shape) for i in chosen])
    return times[chosen], frames, seen


def _fit(rgb: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Resize a frame whose size changed mid-stream (it happens in webm) to ``shape``."""
    import cv2

    return cv2.resize(rgb, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


# --------------------------------------------------------------------------- cropping
def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """Whole frames squeezed to ``size`` x ``size`` (the full-frame ablation), uint8."""
    import cv2

    return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])


def crops_for(frames: np.ndarray, boxes: list[faces.Box | None], size: int) -> np.ndarray:
    """(n, size, size, 3) uint8 crops; a frame without a box borrows the box of the
    nearest frame that has one (so the model always gets n frames of the face)."""
    have = np.array([i for i, b in enumerate(boxes) if b is not None])
    out = np.empty((len(frames), size, size, 3), np.uint8)
    for i, frame in enumerate(frames):
        j = i if boxes[i] is not None else int(have[np.argmin(np.abs(have - i))])
        out[i] = faces.crop(frame, boxes[j], size)
    return out


def _landmark_boxes(landmarks_path, times, frames, video_size: tuple[int, int], margin: float,
                    notes: list[str]) -> list[faces.Box | None] | None:
    height, width = frames.shape[1:3]
    # landmarks are in the stored (coded) picture's pixels
    if min(video_size) <= 0:
        video_size = (width, height)
    elif (video_size[0] > video_size[1]) != (width > height) and video_size[0] != video_size[1]:
        video_size = (video_size[1], video_size[0])  # a rotated (phone) video, shown upright
        notes.append("rotated video: landmarks assumed to be in upright pixels")
    try:
        boxes = faces.boxes_from_landmarks(landmarks_path, times, (width, height), video_size, margin)
    except ValueError as err:
        log.warning("landmarks unusable, falling back to the face detector: %s", err)
        notes.append(f"landmarks unusable ({err}); used the face detector")
        return None
    if not any(b is not None for b in boxes):
        log.info("%s: no confident landmark rows at the sampled times", Path(str(landmarks_path)).name)
        notes.append("the landmark file has no confident face at the sampled times; used the face detector")
        return None
    return boxes


def clip_frames(src: media.Source, params: Preprocessing, landmarks_path: str | Path | None = None,
                detector: faces.FaceDetector | None = None, full_frame: bool = False, *,
                every: int = 3, display_side: int = 320, max_seconds: float | None = None,
                min_face_fraction: float = 0.25) -> VideoSample:
    """Sample ``params.n_frames`` frames of a video, find the face, crop it.

    ``landmarks_path``: an OpenFace CSV of this clip (boxes from its 68 points); when
    absent or unusable, ``detector`` (default a new :class:`~pipeline.faces.MtcnnDetector`:
    pass one to reuse it) runs on every ``every``-th sampled frame. ``full_frame``
    skips faces and resizes whole frames. ``max_seconds`` bounds decoding of long
    uploads. A face in fewer than ``min_face_fraction`` of the frames means abstain.
    Never raises for a bad clip: see ``status``.
    """
    n, size = params.n_frames, params.crop_size
    try:
        info = media.probe(src)
    except media.MediaError as err:
        return failed_sample(NOT_READABLE, size, str(err))
    if not info.has_video:
        log.debug("%s: no video track", _source_name(src))
        return failed_sample(NO_VIDEO, size, f"{_source_name(src)} holds audio only")
    try:
        times, frames, n_decoded = sample_frames(src, n, max_side=display_side, max_seconds=max_seconds)
    except media.MediaError as err:
        log.info("%s", err)
        return failed_sample(UNDECODABLE, size, str(err))
    if n_decoded == 0:
        return failed_sample(NO_FRAMES, size, f"{_source_name(src)}: the decoder produced no frames")
    notes: list[str] = []
    if n_decoded < n:
        notes.append(f"the clip has only {n_decoded} frames; frames were repeated evenly to make {n}")
    if max_seconds is not None and info.duration > max_seconds:
        notes.append(f"only the first {max_seconds:g} s of {info.duration:.1f} s were used")

    return sample_from_frames(frames, times, params, video_size=(info.width, info.height),
                              landmarks_path=landmarks_path, detector=detector, full_frame=full_frame,
                              every=every, min_face_fraction=min_face_fraction, n_decoded=n_decoded, notes=notes)


def sample_from_frames(frames: np.ndarray, times: np.ndarray, params: Preprocessing, *,
                       video_size: tuple[int, int] = (0, 0), landmarks_path: str | Path | None = None,
                       detector: faces.FaceDetector | None = None, full_frame: bool = False, every: int = 3,
                       min_face_fraction: float = 0.25, n_decoded: int | None = None,
                       notes: list[str] | None = None) -> VideoSample:
    """The face half of :func:`clip_frames` for frames already sampled: boxes (landmarks,
    else ``detector`` tracked over every ``every``-th frame, else whole frames with
    ``full_frame``), crops and status. ``frames`` (n, h, w, 3) uint8 at display size,
    ``times`` (n,) s, ``video_size`` the original ``(width, height)`` the landmarks
    are in (0 = the frames' own size). Use it for windows of a long clip decoded once.
    """
    n, size = len(frames), params.crop_size
    notes = list(notes or [])
    n_decoded = n if n_decoded is None else n_decoded
    if full_frame:
        return VideoSample(frames=frames, times=times, boxes=[None] * n, crops=resize_frames(frames, size),
                           frames_with_face=0, status=OK, detail="; ".join(notes), method="full frame",
                           n_decoded=n_decoded)
    boxes = _landmark_boxes(landmarks_path, times, frames, video_size, params.crop_margin, notes) if landmarks_path else None
    method = "landmarks"
    if boxes is None:
        detector = detector if detector is not None else faces.MtcnnDetector()
        method = getattr(detector, "name", type(detector).__name__)
        boxes = faces.track_boxes(frames, detector, every=every, margin=params.crop_margin)
    found = sum(b is not None for b in boxes)
    as_tuples = [None if b is None else b.as_tuple() for b in boxes]
    if found == 0:
        return VideoSample(frames=frames, times=times, boxes=as_tuples,
                           crops=np.zeros((0, size, size, 3), np.uint8), frames_with_face=0, status=NO_FACE,
                           detail="; ".join(notes + [f"searched {n} frames with {method}"]), method=method,
                           n_decoded=n_decoded)
    crops = crops_for(frames, boxes, size)
    status = OK
    if found < max(1, int(np.ceil(min_face_fraction * n))):
        status = FEW_FACES
        crops = np.zeros((0, size, size, 3), np.uint8)
    notes.append(f"face found in {found} of {n} frames ({method})")
    return VideoSample(frames=frames, times=times, boxes=as_tuples, crops=crops, frames_with_face=found,
                       status=status, detail="; ".join(notes), method=method, n_decoded=n_decoded)


def featurize(src: media.Source, params: Preprocessing, landmarks_path: str | Path | None = None,
              detector: faces.FaceDetector | None = None, full_frame: bool = False) -> np.ndarray:
    """The video model input of one clip: uint8 (n_frames, crop, crop, 3) RGB crops.

    Raises :class:`NoFaceError` when no usable face was found and
    :class:`~pipeline.media.MediaError` for anything else that makes the clip unusable,
    each with a one-line reason naming the file.
    """
    sample = clip_frames(src, params, landmarks_path=landmarks_path, detector=detector, full_frame=full_frame)
    if sample.ok:
        return sample.crops
    message = f"{_source_name(src)}: {sample.status}" + (f" ({sample.detail})" if sample.detail else "")
    if sample.status in FACE_STATUSES:
        raise NoFaceError(message)
    raise media.MediaError(message)
