"""From a video file (or bytes) to the video models' input: 30 face crops of 64 x 64.

Steps, one decode per clip:

1. decode the first video stream once with :func:`pipeline.core.media.iter_frames` at a
   display size (longer side <= 320 px), keeping only a bounded, evenly thinned set of
   frames (never the whole clip: a full RAVDESS run decodes 2,452 clips of 1280 x 720);
2. pick ``params.n_frames`` frames evenly spaced in *time* (presentation timestamps,
   so variable frame rates are honoured; clips with fewer frames repeat frames evenly);
3. find the face: the OpenFace landmark CSV when the corpus has one, else a face
   detector (:mod:`pipeline.core.faces`); or the whole frame (``full_frame=True``, the
   report's "without landmarks" ablation);
4. crop and resize to ``params.crop_size`` square, RGB uint8.

Crops stay uint8 (on disk and in memory: 2,452 clips x 30 x 64 x 64 x 3 = 0.9 GB);
the models scale them to [0, 1] themselves with a ``Rescaling(1/255)`` first layer
(:mod:`models.video`), so nobody divides by 255 anywhere else.

:func:`clip_frames` never raises on a bad clip: it returns a :class:`VideoSample` whose
``status`` says why (what the dashboard shows). :func:`featurize` is the training-path
form: crops or a :class:`pipeline.core.media.MediaError`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from pipeline.core import face_checks, faces, media
from pipeline.core.preprocessing import Preprocessing

log = logging.getLogger(__name__)

OK = "ok"
NOT_READABLE = "not a readable video file"
NO_VIDEO = "no video track"
UNDECODABLE = "the video stream cannot be decoded"
NO_FRAMES = "the video stream holds no frames"
NO_FACE = "no face found in any frame"
FEW_FACES = "a face was found in too few frames"
FACE_TURNED = "the face is not upright (upside down or on its side) and could not be read turned upright"

#: Statuses that mean "a video, but no usable face" (the branch abstains, no error).
FACE_STATUSES = (NO_FACE, FEW_FACES, FACE_TURNED)
#: Why a file whose only picture is a still (cover art, one frame) has "no video track".
STILL_DETAIL = "the file's only picture is a still (cover art or a single frame), not a moving face"


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
    many frames the decoder produced; ``faces_seen`` how many faces were in view (one
    is followed, :func:`pipeline.core.faces.choose_face`) and ``faces_note`` the sentence
    saying so when there were several ("2 faces seen; following the larger one");
    ``face_notes`` what the face checks found (turned upright, lower face or eyes
    hidden: :mod:`pipeline.core.face_checks`).
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
    faces_seen: int = 0
    faces_note: str = ""
    #: When ``frames`` holds only some of the sample's frames (for display, long clips),
    #: their indices into ``times`` / ``boxes`` / ``crops``; None when it holds them all.
    display_index: np.ndarray | None = None
    #: Plain notes about the face itself that keep the answer from being "sure" ("the
    #: lower face is hidden ..."; :func:`pipeline.core.face_checks.hidden_parts`), and
    #: the turn that made it upright when it was not.
    face_notes: list[str] = field(default_factory=list)
    #: Degrees the frames were turned clockwise to make the face upright (0, 90, 180, 270).
    turn: int = 0

    @property
    def ok(self) -> bool:
        return self.status == OK


def _source_name(src: media.Source) -> str:
    return "uploaded video" if isinstance(src, (bytes, bytearray, memoryview)) else media.printable(Path(str(src)).name)


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
    Raises :class:`~pipeline.core.media.MediaError` when the stream cannot be decoded.
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
    absent or unusable, ``detector`` (default a new :class:`~pipeline.core.faces.MtcnnDetector`:
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
        return failed_sample(NO_VIDEO, size, STILL_DETAIL if info.still_picture
                             else f"{_source_name(src)} holds audio only")
    try:
        times, frames, n_decoded = sample_frames(src, n, max_side=display_side, max_seconds=max_seconds)
    except media.MediaError as err:
        log.info("%s", err)
        return failed_sample(UNDECODABLE, size, str(err))
    if n_decoded == 0:
        return failed_sample(NO_FRAMES, size, f"{_source_name(src)}: the decoder produced no frames")
    if n_decoded == 1:  # one picture in a container (a cover, a poster frame): not a moving face
        return failed_sample(NO_VIDEO, size, STILL_DETAIL, n_decoded=1)
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
                       notes: list[str] | None = None, track: faces.FaceTrack | None = None,
                       known_turn: int | None = None, display_side: int | None = None) -> VideoSample:
    """The face half of :func:`clip_frames` for frames already sampled: boxes (landmarks,
    else ``detector`` tracked over every ``every``-th frame, else whole frames with
    ``full_frame``), crops and status. ``frames`` (n, h, w, 3) uint8, ``times`` (n,) s,
    ``video_size`` the original ``(width, height)`` the landmarks are in (0 = the
    frames' own size). Use it for windows of a long clip decoded once; ``track``: the
    detector's track of these frames when the caller already ran it
    (:func:`face_samples` detects on many windows' frames in one batch);
    ``known_turn``: the clockwise turn (0, 90, 180, 270) the caller already judged these
    frames' face to need (:func:`face_samples` judges it once over a batch of windows;
    frames with no face found are then not searched turned), None to judge it here.

    With a detector, the face is checked (:func:`pipeline.core.face_checks.check_faces`):
    a face upside down or on its side is turned upright (the frames are turned and the
    face found again; status :data:`FACE_TURNED` when it is then lost), hidden mouth or
    eyes go to ``face_notes``; a clip where no face is found upright is also searched
    turned (:func:`find_turn`). Crops are cut from ``frames`` as given (finer frames give
    finer crops of a small face); the returned ``frames`` and ``boxes`` are shrunk to
    ``display_side`` pixels (longer side) when it is set.
    """
    n, size = len(frames), params.crop_size
    notes = list(notes or [])
    n_decoded = n if n_decoded is None else n_decoded
    if full_frame:
        return _for_display(VideoSample(frames=frames, times=times, boxes=[None] * n,
                                        crops=resize_frames(frames, size), frames_with_face=0, status=OK,
                                        detail="; ".join(notes), method="full frame", n_decoded=n_decoded),
                            display_side)
    boxes = _landmark_boxes(landmarks_path, times, frames, video_size, params.crop_margin, notes) if landmarks_path else None
    method = "landmarks"
    seen, seen_note = (1, "") if boxes is not None else (0, "")  # a landmark file tracks one face
    face_notes: list[str] = []
    turn = 0
    if boxes is None:
        detector = detector if detector is not None else faces.MtcnnDetector()
        method = getattr(detector, "name", type(detector).__name__)
        if track is None:
            track = faces.track_faces(frames, detector, every=every, margin=params.crop_margin)
        checks = None  # one look per window: the turn and the hidden parts come from it
        if not any(b is not None for b in track.boxes):
            turn = find_turn(frames, detector) if known_turn is None else known_turn
        elif track.chosen:
            checks = face_checks.check_faces([frames[k] for k in track.keys], track.chosen,
                                             orientation=known_turn is None)
            turn = checks.turn if known_turn is None else known_turn
        if turn:
            frames = np.stack([media.turned(f, turn) for f in frames])
            track = faces.track_faces(frames, detector, every=every, margin=params.crop_margin)
            if not any(b is not None for b in track.boxes):
                return _for_display(VideoSample(
                    frames=frames, times=times, boxes=[None] * n, crops=np.zeros((0, size, size, 3), np.uint8),
                    frames_with_face=0, status=FACE_TURNED, method=method, n_decoded=n_decoded,
                    detail="; ".join(notes + [f"the face looked turned by {turn} degrees; turned upright, "
                                              f"{method} no longer found it"])), display_side)
            face_notes.append(face_checks.TURNED_NOTE[turn])
            checks = None  # the turned frames are looked at afresh
        if track.chosen:
            if checks is None:  # (the turn is settled: occlusion only)
                checks = face_checks.check_faces([frames[k] for k in track.keys], track.chosen, orientation=False)
            face_notes += checks.notes
        boxes, seen, seen_note = track.boxes, track.faces_seen, track.note
    found = sum(b is not None for b in boxes)
    as_tuples = [None if b is None else b.as_tuple() for b in boxes]
    if found == 0:
        return _for_display(VideoSample(frames=frames, times=times, boxes=as_tuples,
                                        crops=np.zeros((0, size, size, 3), np.uint8), frames_with_face=0,
                                        status=NO_FACE, method=method, n_decoded=n_decoded,
                                        detail="; ".join(notes + [f"searched {n} frames with {method}"])),
                            display_side)
    crops = crops_for(frames, boxes, size)
    status = OK
    if found < max(1, int(np.ceil(min_face_fraction * n))):
        status = FEW_FACES
        crops = np.zeros((0, size, size, 3), np.uint8)
    notes.append(f"face found in {found} of {n} frames ({method})")
    if seen_note:
        notes.append(seen_note)
    return _for_display(VideoSample(frames=frames, times=times, boxes=as_tuples, crops=crops,
                                    frames_with_face=found, status=status, detail="; ".join(notes + face_notes),
                                    method=method, n_decoded=n_decoded, faces_seen=max(seen, 1),
                                    faces_note=seen_note, face_notes=face_notes, turn=turn), display_side)


#: Frames of a clip (evenly spread) searched turned when no face is found upright.
TURN_PROBE: int = 2


def find_turn(frames: np.ndarray | Sequence[np.ndarray], detector: faces.FaceDetector) -> int:
    """The clockwise turn (90, 180 or 270 degrees) under which ``detector`` finds a face
    whose landmarks are a face's (:func:`pipeline.core.faces.landmarks_plausible`;
    any face for finders without landmarks) in up to :data:`TURN_PROBE` of ``frames``
    (evenly spread), when it found none upright; 0 when no turn shows one. At most
    ``3 * TURN_PROBE`` detector passes at :data:`DETECT_SIDE`."""
    n = len(frames)
    if n == 0:
        return 0
    probe = sorted({int(round(x)) for x in np.linspace(0, n - 1, TURN_PROBE + 2)[1:-1]}) or [0]
    for turn in (180, 90, 270):
        for i in probe:
            found = faces.detect_scaled(detector, media.turned(np.asarray(frames[i]), turn), DETECT_SIDE)
            if any(b.keypoints is None or faces.landmarks_plausible(b) for b in found):
                return turn
    return 0


def _for_display(sample: VideoSample, side: int | None) -> VideoSample:
    """``sample`` with its frames shrunk so the longer side is at most ``side`` pixels
    and its boxes scaled alike (crops untouched); unchanged without ``side``."""
    if not side or sample.frames.ndim != 4 or len(sample.frames) == 0 or max(sample.frames.shape[1:3]) <= side:
        return sample
    small = [faces.downscaled(f, side)[0] for f in sample.frames]
    height, width = sample.frames.shape[1:3]
    sy, sx = small[0].shape[0] / height, small[0].shape[1] / width
    sample.frames = np.stack(small)
    sample.boxes = [None if b is None else faces.Box(*b).scaled(sx, sy).as_tuple() for b in sample.boxes]
    return sample


def face_samples(windows: Sequence[tuple[np.ndarray, np.ndarray]], params: Preprocessing, *,
                 video_size: tuple[int, int] = (0, 0), landmarks_path: str | Path | None = None,
                 detector: faces.FaceDetector | None = None, full_frame: bool = False, every: int = 3,
                 n_decoded: int | None = None, notes: list[str] | None = None,
                 display_side: int | None = None, expect_turn: int | None = None) -> list[VideoSample]:
    """:func:`sample_from_frames` of consecutive windows' ``(times (n,), frames (n, h, w,
    3))`` of one clip. With a detector, the windows' frames are tracked as one sequence
    (:func:`pipeline.core.faces.track_faces`: the detector on every ``every``-th frame, boxes
    interpolated between), the detections made in batches
    (:func:`pipeline.core.faces.detect_many`: MTCNN costs about 2.5 times less per frame in a
    batch), so the followed face carries over from one window to the next. Several
    windows are looked at coarse to fine (:func:`pipeline.core.faces.detect_coarse_to_fine`:
    every ``2 * every``-th frame, the frames between where the face moved), and the turn
    that makes the face upright is judged once over all of them
    (:func:`pipeline.core.face_checks.check_faces` on up to five of their key frames);
    ``expect_turn``: the turn earlier windows of the clip were judged to need, taken
    when one key frame agrees (judged on up to five when it does not).
    ``display_side``: see :func:`sample_from_frames`."""
    if not windows:
        return []
    if full_frame or landmarks_path:
        return [sample_from_frames(frames, times, params, video_size=video_size, landmarks_path=landmarks_path,
                                   detector=detector, full_frame=full_frame, every=every,
                                   n_decoded=n_decoded, notes=notes, display_side=display_side)
                for times, frames in windows]
    detector = detector if detector is not None else faces.MtcnnDetector()
    if len(windows) == 1:
        times, frames = windows[0]
        return [sample_from_frames(frames, times, params, video_size=video_size, detector=detector,
                                   every=every, n_decoded=n_decoded, notes=notes, display_side=display_side)]
    # Consecutive windows of one clip: one track over all their frames, the detector on
    # every ``every``-th of them (and the last), so the same person is followed from
    # window to window and the detector runs no more often than inside one window.
    lengths = [len(frames) for _, frames in windows]
    shape = windows[0][1].shape[1:]
    frames_all = [f if f.shape == shape else _fit(f, shape) for _, frames in windows for f in frames]
    n_all = len(frames_all)
    keys, found = faces.detect_coarse_to_fine(detector, frames_all, every, DETECT_SIDE)
    track = faces.track_from_detections(keys, found, n_all, (shape[1], shape[0]), every=every,
                                        margin=params.crop_margin)
    # one judgement of the turn for the batch (None, each window searching on its own,
    # when no face was found upright in any of them)
    turn = None
    if any(c is not None for c in track.chosen):
        keyed = [frames_all[k] for k in track.keys]
        if expect_turn is not None:
            turn = face_checks.check_faces(keyed, track.chosen, max_checked=1).turn
        if turn is None or turn != expect_turn:
            turn = face_checks.check_faces(keyed, track.chosen).turn
    out, at = [], 0
    for (times, frames), n in zip(windows, lengths):
        mine = [c for k, c in zip(keys, track.counts) if at <= k < at + n]
        with_face = [c for c in mine if c > 0]
        seen = int(np.ceil(np.median(with_face))) if with_face else 0
        own = [(k - at, c) for k, c in zip(track.keys, track.chosen) if at <= k < at + n]
        part = faces.FaceTrack(track.boxes[at:at + n], mine, seen, track.decided_by,
                               [k for k, _ in own], [c for _, c in own])
        at += n
        out.append(sample_from_frames(frames, times, params, video_size=video_size, detector=detector,
                                      every=every, n_decoded=n_decoded, notes=notes, track=part,
                                      known_turn=turn, display_side=display_side))
    return out


#: Longer side (pixels) of the frames the face detector looks at.
DETECT_SIDE: int = 320


# --------------------------------------------------------------------------- streaming windows
class WindowSampler:
    """A :class:`pipeline.core.media.FrameSink` that keeps, from a decoding video stream,
    only the frames each analysis window needs, and hands each window over as soon as
    it is complete, so memory does not grow with the clip's length.

    ``spans``: the windows ``(start, end)`` in seconds from the first frame, sorted and
    disjoint: a grid ``span`` seconds apart (:func:`pipeline.serve.inference.windows`) or
    windows that follow the speech (:func:`pipeline.serve.windows.speech_windows`; frames
    between windows are not kept); ``single``: one
    window over the whole clip, whose pictures last ``spans[0][1]`` seconds (the
    training crop of a short clip: ``n`` frames from its first to its last frame);
    ``spans=None``: the clip's length is unknown (some recordings do not say), so frames
    are taken on a fine grid (``2 n`` per ``span``) until the clip proves longer than
    ``single_until`` seconds, then window by window. Each window asks for the frames
    nearest ``n`` instants evenly spaced over it (a frame within half a frame interval
    ``step`` of an instant); ``on_window(index, times (n,), frames (n, h, w, 3))`` receives
    them, frames repeated evenly when the window holds fewer. At most ``max(2 n, n *
    single_until / span * 2)`` frames are held at a time.
    """

    def __init__(self, n: int, spans: Sequence[tuple[float, float]] | None, *, single: bool = False,
                 span: float = 3.0, single_until: float = 0.0, step: float = 1 / 30.0,
                 on_window: Callable[[int, np.ndarray, np.ndarray], None],
                 decoder_threads: int | None = None) -> None:
        self.n = int(n)
        self.decoder_threads = decoder_threads  # (see pipeline.core.media.FrameSink)
        self.spans = None if spans is None else [(float(a), float(b)) for a, b in spans]
        self._starts = [a for a, _ in self.spans or []]
        self.single = bool(single)
        self.span = float(span)
        self.single_until = float(single_until)
        self.step = float(step) if step > 0 else 1 / 30.0
        self.on_window = on_window
        self.needed = (self.n if self.single else self.n * len(self.spans)) if self.spans is not None else None
        self._unknown = self.spans is None
        self._current = 0  # window being filled (multi-window mode)
        self._rows: list[tuple[float, np.ndarray]] = []
        self._next = self.spans[0][0] if self.spans and not self.single else 0.0  # the first wanted instant
        self.emitted: list[int] = []

    # ---- planning
    def _targets(self, k: int) -> np.ndarray:
        if self.single:
            end = self.spans[0][1]
            return np.linspace(0.0, max(end - self.step, 0.0), self.n)
        if self.spans is not None:
            if k >= len(self.spans):
                return np.zeros(0)
            start, end = self.spans[k]
        else:
            start, end = k * self.span, (k + 1) * self.span
        return np.linspace(start, max(end - self.step, start), self.n)

    def _window_of(self, t: float) -> int:
        """Index of the window a frame at ``t`` s belongs to: the last one starting at or
        before it (half a frame interval of slack), the grid's when no spans are known."""
        if self.spans is None:
            return int(t // self.span)
        import bisect

        return max(0, bisect.bisect_right(self._starts, t + self.step / 2) - 1)

    def _prefix(self) -> bool:
        return self._unknown and not self.single

    def _advance(self, t: float) -> None:
        """Move the next wanted instant past ``t`` (plus half a frame interval)."""
        x = t + self.step / 2
        if self._prefix() and x < self.single_until:
            grid = self.span / (2 * self.n)
            self._next = grid * (np.floor(x / grid) + 1)
            return
        k = 0 if self.single else self._window_of(t)  # the window this frame belongs to
        targets = self._targets(k)
        later = targets[targets > x]
        if later.size:
            self._next = float(later[0])
        elif self.single or (self.spans is not None and k + 1 >= len(self.spans)):
            self._next = float("inf")
        else:
            nxt = self._targets(k + 1)
            self._next = float(nxt[0]) if nxt.size else float("inf")

    # ---- the sink
    def wants(self, t: float) -> bool:
        if t < self._next - self.step / 2:
            return False
        self._advance(t)
        return True

    def add(self, t: float, rgb: np.ndarray) -> None:
        if self._prefix():
            self._rows.append((t, rgb))
            if t > self.single_until:  # longer than one window: cut windows from here on
                self._unknown = False
                rows, self._rows = self._rows, []
                for row in rows:
                    self._add_windowed(*row)
            return
        if self.single:
            self._rows.append((t, rgb))
            return
        self._add_windowed(t, rgb)

    def _add_windowed(self, t: float, rgb: np.ndarray) -> None:
        k = self._window_of(t)
        if k > self._current:
            self._emit(self._current)
            self._current = k
        self._rows.append((t, rgb))

    def finish(self, spans: Sequence[tuple[float, float]] | None = None) -> None:
        """Hand over the last window. ``spans``: the final windows when the length was
        unknown while decoding (a single window takes every frame held)."""
        if self._prefix():
            final = list(spans or [])
            if len(final) <= 1:
                self.single = True
                self._emit(0)
                return
            rows, self._rows, self._unknown = self._rows, [], False
            for row in rows:
                self._add_windowed(*row)
        self._emit(0 if self.single else self._current)

    def _emit(self, k: int) -> None:
        rows, self._rows = sorted(self._rows, key=lambda r: r[0]), []
        if not rows:
            return
        times = np.array([t for t, _ in rows], dtype=float)
        shape = rows[0][1].shape
        chosen = pick_even(times, self.n)
        frames = np.stack([rows[i][1] if rows[i][1].shape == shape else _fit(rows[i][1], shape) for i in chosen])
        self.emitted.append(k)
        self.on_window(k, times[chosen], frames)


#: Most bytes of frames :class:`WindowFaces` holds before finding their faces (the
#: frames arrive at :data:`FRAME_SIDE`, finer than the display, for small faces).
PENDING_BYTES: int = 64 * 2**20
#: Longer side (pixels) of the frames serving decodes for finding faces and cutting
#: crops (:data:`pipeline.core.faces.FINE_SIDE`): a face of 1/30 of a 4K frame's width is
#: 32 px here, 11 px at the 320-pixel display size. Frames are shrunk to the display
#: size once their faces are found.
FRAME_SIDE: int = faces.FINE_SIDE
#: Batches of windows :class:`WindowFaces` leaves with its worker thread at a time: while
#: the worker finds the faces of one, the decoder fills the next and waits when that is
#: full, so at most two batches of frames (each at most :data:`PENDING_BYTES`) are held.
BATCHES_WAITING: int = 1


class WindowFaces:
    """Collects the windows a :class:`WindowSampler` hands over and turns them into
    :class:`VideoSample` s (:func:`face_samples`), ``batch`` windows at a time, keeping
    per window only its crops, boxes and times, plus ``display`` frames for showing the
    clip (``frames`` of the samples it returns hold just those). ``seconds``: time spent
    finding faces and cropping.

    ``background=True``: the faces of each batch are found in one worker thread while
    the caller goes on decoding (MTCNN, the face checks and the resizing run in native
    code that releases the GIL, so decoding and face finding use both cores); at most
    :data:`BATCHES_WAITING` batches wait for it, which bounds the frames held. Batches are
    handled in order, each with the settings ``face_kw`` had when it was handed over;
    :meth:`flush` waits for all of them, and re-raises a worker's error. ``then``: called
    with each batch's samples once they are made (in the worker with ``background``),
    for work on them that should overlap the decoding (the face model's answers);
    its time is not in ``seconds``.
    """

    def __init__(self, params: Preprocessing, *, batch: int = 8, display: int | None = None,
                 background: bool = False, then: Callable[[list[VideoSample]], None] | None = None,
                 **face_kw) -> None:
        self.params = params
        self.then = then
        self.batch = max(1, int(batch))
        self.display = display  # frames kept per window for showing (None: all)
        self.background = bool(background)
        self.face_kw = face_kw
        self.samples: dict[int, VideoSample] = {}
        self.seconds = 0.0
        self._pending: list[tuple[int, np.ndarray, np.ndarray]] = []
        self._pool = None
        self._running: list = []  # (pending windows, future of (samples, seconds)), oldest first
        self._turn: int | None = None  # the turn the last batch with a face needed

    def __call__(self, k: int, times: np.ndarray, frames: np.ndarray) -> None:
        self._pending.append((k, times, frames))
        held = sum(f.nbytes for _, _, f in self._pending)
        if len(self._pending) >= self.batch or held >= PENDING_BYTES:
            self._hand_over()

    def _find(self, pending: list[tuple[int, np.ndarray, np.ndarray]],
              face_kw: dict) -> tuple[list[VideoSample], float]:
        import time

        start = time.perf_counter()
        side = face_kw.pop("display_side", None)  # shrunk below, once the shown frames are picked
        done = face_samples([(t, f) for _, t, f in pending], self.params, expect_turn=self._turn, **face_kw)
        # (batches are made one after another, in order: the next one expects this turn)
        self._turn = next((s.turn for s in done if s.frames_with_face), self._turn)
        for sample in done:
            if self.display is not None and len(sample.frames) > self.display:
                keep = np.unique(np.linspace(0, len(sample.frames) - 1, max(1, self.display)).round().astype(int))
                sample.frames = np.ascontiguousarray(sample.frames[keep])
                sample.display_index = keep
            _for_display(sample, side)
        seconds = time.perf_counter() - start
        if self.then is not None:  # (in the worker too: the next batch decodes meanwhile)
            self.then(done)
        return done, seconds

    def _keep(self, pending: list[tuple[int, np.ndarray, np.ndarray]],
              found: tuple[list[VideoSample], float]) -> None:
        done, seconds = found
        for (k, _, _), sample in zip(pending, done):
            self.samples[k] = sample
        self.seconds += seconds

    def _hand_over(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        if not self.background:
            self._keep(pending, self._find(pending, dict(self.face_kw)))
            return
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="faces")
        while len(self._running) >= BATCHES_WAITING:
            self._collect_oldest()
        self._running.append((pending, self._pool.submit(self._find, pending, dict(self.face_kw))))

    def _collect_oldest(self) -> None:
        pending, future = self._running.pop(0)
        self._keep(pending, future.result())

    def flush(self) -> None:
        """Find the faces of the windows still waiting, and wait for the worker."""
        self._hand_over()
        try:
            while self._running:
                self._collect_oldest()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool, self._running = None, []


def featurize(src: media.Source, params: Preprocessing, landmarks_path: str | Path | None = None,
              detector: faces.FaceDetector | None = None, full_frame: bool = False) -> np.ndarray:
    """The video model input of one clip: uint8 (n_frames, crop, crop, 3) RGB crops.

    Raises :class:`NoFaceError` when no usable face was found and
    :class:`~pipeline.core.media.MediaError` for anything else that makes the clip unusable,
    each with a one-line reason naming the file.
    """
    sample = clip_frames(src, params, landmarks_path=landmarks_path, detector=detector, full_frame=full_frame)
    if sample.ok:
        return sample.crops
    message = f"{_source_name(src)}: {sample.status}" + (f" ({sample.detail})" if sample.detail else "")
    if sample.status in FACE_STATUSES:
        raise NoFaceError(message)
    raise media.MediaError(message)


# --------------------------------------------------------------------------- too short
#: Least face footage (seconds) a window must hold for a clip model (LRCN, ConvLSTM:
#: a sequence of ``n_frames`` crops) to answer. Those models learn expressions
#: unfolding over the 3 s training window with the face in view throughout (RAVDESS,
#: the synthetic corpus); under a second of footage the sequence is mostly the same
#: few frames repeated, an input they never saw. The same limit as speech
#: (:data:`pipeline.core.audio.MIN_SPEECH_SECONDS`), capped at half the window. Per-frame
#: face models judge every frame on its own and have no such limit (a still image is
#: one frame).
MIN_FACE_SECONDS: float = 1.0


def face_seconds(sample: VideoSample) -> float:
    """Seconds of footage with a face in ``sample``: from the first to the last sampled
    frame with a face box (or any frame, for whole-frame samples), plus one frame
    interval (the smallest gap between distinct sampled times). 0.0 without frames."""
    times = np.asarray(sample.times, dtype=float)
    if sample.boxes and any(b is not None for b in sample.boxes):
        times = times[[i for i, b in enumerate(sample.boxes) if b is not None]]
    distinct = np.unique(times)
    if distinct.size == 0:
        return 0.0
    all_distinct = np.unique(np.asarray(sample.times, dtype=float))
    gaps = np.diff(all_distinct)
    step = float(gaps[gaps > 0].min()) if np.any(gaps > 0) else 0.0
    if step == 0.0 and sample.n_decoded > 1:
        step = 1.0 / 30.0
    return float(distinct[-1] - distinct[0] + step)


def too_short(sample: VideoSample, params: Preprocessing) -> str:
    """``"too short: 0.3 s of face video, at least 1.0 s needed"`` when a clip model's
    window holds less face footage than :data:`MIN_FACE_SECONDS` (at most half of
    ``params.duration``); "" otherwise."""
    from pipeline.core.audio import too_short as wording

    needed = min(MIN_FACE_SECONDS, 0.5 * params.duration)
    seen = face_seconds(sample)
    return wording(seen, needed, "face video") if seen < needed else ""


# --------------------------------------------------------------------------- per-frame faces
#: Images whose longer side is at most this many pixels are taken as the face crop
#: itself (FER2013 is 48 x 48); larger ones go through the face finder.
SMALL_IMAGE_SIDE: int = 96
#: How a small image is shown to the face finder when serving checks it holds a face:
#: enlarged this many times (bicubic) and given this fraction of its side as a
#: replicated border, so a tight crop looks like a face in a frame. Measured with
#: MTCNN (confidence 0.9) on 420 FER2013 training crops (60 per emotion): a face is
#: found in 84% of them, and in none of 53 noise, blank and blocky pictures
#: (docs/real_models.md).
SMALL_IMAGE_ENLARGE: int = 4
SMALL_IMAGE_BORDER: float = 0.25


def small_image_view(rgb: np.ndarray) -> np.ndarray:
    """A small image (H, W, 3) uint8 as the face finder sees it when checking for a
    face: enlarged by :data:`SMALL_IMAGE_ENLARGE`, bordered by
    :data:`SMALL_IMAGE_BORDER` of its side (edge pixels repeated)."""
    import cv2

    big = cv2.resize(rgb, None, fx=SMALL_IMAGE_ENLARGE, fy=SMALL_IMAGE_ENLARGE, interpolation=cv2.INTER_CUBIC)
    pad = int(round(max(big.shape[:2]) * SMALL_IMAGE_BORDER))
    return cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)


def face_input(crops: np.ndarray, params: Preprocessing) -> np.ndarray:
    """The per-frame face model's input: the one crop-to-input function.

    ``crops``: (n, h, w, 3) uint8 RGB face crops (any square size: video crops, FER2013
    images). Returns (n, crop_size, crop_size, channels) uint8, resized with area
    interpolation when shrinking, and converted to greyscale (OpenCV's BT.601 luma)
    when ``params.color == "gray"``. Training on image corpora and serving on video
    frames both call this, so their inputs cannot differ.
    """
    import cv2

    crops = np.asarray(crops, dtype=np.uint8)
    if crops.ndim == 3:
        crops = crops[..., None]
    if crops.ndim != 4:
        raise ValueError(f"crops must be (n, h, w, channels), got shape {crops.shape}")
    if crops.shape[-1] == 1:
        crops = np.repeat(crops, 3, axis=-1)
    size, out = params.crop_size, []
    for crop in crops:
        if crop.shape[0] != size or crop.shape[1] != size:
            shrink = crop.shape[0] > size or crop.shape[1] > size
            crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        if params.color == "gray":
            crop = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[..., None]
        out.append(crop)
    return np.stack(out) if out else np.zeros((0, size, size, params.channels), np.uint8)


def pool_frames(proba: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Clip-level probabilities from per-frame ones: the normalised geometric mean
    (mean of log-probabilities), so a frame that rules an emotion out counts.

    ``proba``: (n_frames, C), rows summing to 1. Returns (C,) summing to 1. Raises
    ValueError for an empty array.
    """
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[0] == 0:
        raise ValueError(f"need (n_frames >= 1, classes) probabilities, got shape {proba.shape}")
    log_mean = np.log(np.clip(proba, eps, 1.0)).mean(axis=0)
    pooled = np.exp(log_mean - log_mean.max())
    return pooled / pooled.sum()


def image_sample(src: media.Source, params: Preprocessing, detector: faces.FaceDetector | None = None,
                 *, check_small: bool = False) -> VideoSample:
    """A still image as a one-frame clip: frame, face box, crop and status.

    Images up to :data:`SMALL_IMAGE_SIDE` px are taken as the crop (already a face, as
    in FER2013); larger ones go through ``detector`` (the same finder and square-box
    framing as video frames, :func:`sample_from_frames`). With ``check_small`` (serving)
    and a ``detector``, a small image must first show a face to the finder
    (:func:`small_image_view`), else its status is "no face found" rather than an
    answer about noise or a blank picture; training takes its image set as given.
    Never raises for a bad image: see ``status``.
    """
    size = params.crop_size
    try:
        rgb = media.load_image(src)
    except media.MediaError as err:
        return failed_sample(NOT_READABLE, size, str(err))
    if max(rgb.shape[:2]) <= SMALL_IMAGE_SIDE:
        face_notes: list[str] = []
        if check_small and detector is not None:
            seen = sample_from_frames(small_image_view(rgb)[None], np.zeros(1), params, detector=detector,
                                      every=1, n_decoded=1)
            whole = faces.whole_image_face(detector, rgb) if not seen.ok and seen.status != FACE_TURNED else None
            if whole is not None:  # the view found nothing; the picture itself scores as a face
                seen = VideoSample(frames=rgb[None], times=np.zeros(1), boxes=[None], crops=rgb[None],
                                   frames_with_face=1, status=OK, method="whole image", n_decoded=1,
                                   face_notes=face_checks.check_faces([rgb], [whole]).notes)
            if not seen.ok:
                return VideoSample(frames=rgb[None], times=np.zeros(1), boxes=[None],
                                   crops=np.zeros((0, size, size, 3), np.uint8), frames_with_face=0,
                                   status=seen.status if seen.status == FACE_TURNED else NO_FACE,
                                   detail="a small image in which the face finder sees no face",
                                   method="whole image", n_decoded=1)
            rgb, face_notes = media.turned(rgb, seen.turn), seen.face_notes
        h, w = rgb.shape[:2]
        side = min(h, w)
        y0, x0 = (h - side) // 2, (w - side) // 2
        crop = faces.crop(rgb, faces.Box(x0, y0, x0 + side, y0 + side), size)
        return VideoSample(frames=rgb[None], times=np.zeros(1), boxes=[(x0, y0, x0 + side, y0 + side)],
                           crops=crop[None], frames_with_face=1, status=OK,
                           detail="; ".join(["a small image, taken as the face crop"] + face_notes),
                           method="whole image", n_decoded=1, face_notes=face_notes)
    # detection and crops on the image at FRAME_SIDE (a small face in a large photo), shown at 640 px
    frame, _ = faces.downscaled(rgb, FRAME_SIDE)
    return sample_from_frames(frame[None], np.zeros(1), params, detector=detector, every=1, n_decoded=1,
                              display_side=640)


def face_crops(src: media.Source, params: Preprocessing, landmarks_path: str | Path | None = None,
               detector: faces.FaceDetector | None = None) -> np.ndarray:
    """The per-frame face model's input for one clip or image (training-path form).

    A still image (:func:`pipeline.core.media.is_image`) is one frame (:func:`image_sample`);
    a video gives ``params.n_frames`` crops (:func:`clip_frames`). Returns
    (n, crop_size, crop_size, channels) uint8 via :func:`face_input`; raises
    :class:`NoFaceError` or :class:`~pipeline.core.media.MediaError` with a one-line reason.
    """
    if media.is_image(src):
        sample = image_sample(src, params, detector=detector)
    else:
        sample = clip_frames(src, params, landmarks_path=landmarks_path, detector=detector)
    if not sample.ok:
        message = f"{_source_name(src)}: {sample.status}" + (f" ({sample.detail})" if sample.detail else "")
        raise (NoFaceError if sample.status in FACE_STATUSES else media.MediaError)(message)
    return face_input(sample.crops, params)
