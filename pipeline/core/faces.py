"""Where the face is, frame by frame: the only face cropping there is.

Two sources of boxes, both returned in the pixel coordinates of the frames the caller
holds:

* an OpenFace landmark CSV (RAVDESS ships one per trial, the synthetic corpus writes
  one): the bounding box of the 68 2-D points, scaled from the original video's pixels
  to the decoded frame size, low-confidence rows skipped and bridged by interpolation;
* a face detector behind the small :class:`FaceDetector` protocol: MTCNN (the
  ``mtcnn`` package, weights inside the wheel, ~0.1 s per frame on 2 cores) where
  accuracy matters, OpenCV's Haar cascade (~10 ms) for the live page. Any object with
  ``detect(rgb) -> list[Box]`` can replace them.

:func:`track_boxes` runs a detector on a subset of frames only, keeps one face
(:func:`choose_face`: the largest, then the most central, then the one that overlaps
the previous box), interpolates and smooths between detections, and returns square
boxes with a margin, clipped to the frame, so that crops do not jitter from frame to
frame. :func:`track_faces` also says how many faces were in view, so the product can
tell the user whom it followed (:func:`faces_note`).

The rule for several faces is the same for every finder (MTCNN, Haar, the live page):
the largest face wins; faces whose areas are within :data:`SAME_SIZE` of the largest
count as the same size, and among those the one nearest the frame centre wins. A
finder that draws all its boxes bigger or smaller than another does not change the
choice (only area ratios matter), which the old "area discounted by distance" score
did: Haar and MTCNN could pick different people.

OpenCV, TensorFlow and pandas are imported inside the functions that need them.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

log = logging.getLogger(__name__)

N_LANDMARKS = 68
#: The five facial points of :attr:`Box.keypoints`, in order (MTCNN's names; "left" is
#: the image's left, as MTCNN reports them).
KEYPOINTS: tuple[str, ...] = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels: ``x0, y0`` top-left, ``x1, y1`` bottom-right
    (exclusive), ``score`` the detector's confidence in [0, 1] (1.0 for landmarks),
    ``keypoints`` the detector's five facial points ``(x, y)`` in the same pixels, in
    the order of :data:`KEYPOINTS` (MTCNN gives them; None for other finders and for
    boxes interpolated between detections)."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0
    keypoints: tuple[tuple[float, float], ...] | None = None

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def center(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0

    def scaled(self, sx: float, sy: float | None = None) -> "Box":
        """The same box with x multiplied by ``sx`` and y by ``sy`` (default ``sx``)."""
        sy = sx if sy is None else sy
        points = None if self.keypoints is None else tuple((x * sx, y * sy) for x, y in self.keypoints)
        return Box(self.x0 * sx, self.y0 * sy, self.x1 * sx, self.y1 * sy, self.score, points)

    def as_tuple(self) -> tuple[int, int, int, int]:
        """Integer ``(x0, y0, x1, y1)``, the form :class:`~pipeline.core.video.VideoSample` keeps
        (corner and size rounded separately, so a square stays square)."""
        x0, y0 = int(round(self.x0)), int(round(self.y0))
        return (x0, y0, x0 + int(round(self.width)), y0 + int(round(self.height)))


@runtime_checkable
class FaceDetector(Protocol):
    """Anything that finds faces in one RGB image.

    ``detect(rgb)`` takes an (H, W, 3) uint8 RGB array and returns every face found as
    :class:`Box` in that image's pixels (an empty list when there is none). It must not
    raise on a plain image, however dark or noisy.
    """

    name: str

    def detect(self, rgb: np.ndarray) -> list[Box]: ...


def _check_image(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        rgb = np.clip(rgb, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(rgb)


class MtcnnDetector:
    """MTCNN (P-, R- and O-Net) from the ``mtcnn`` package, on TensorFlow (CPU).

    The networks load on the first :meth:`detect` (a few seconds with the TensorFlow
    import), so construct one detector and reuse it. ``min_confidence`` drops weak
    O-Net answers; ``min_face_size`` is in pixels of the image passed to ``detect``.
    """

    name = "mtcnn"

    def __init__(self, min_confidence: float = 0.9, min_face_size: int = 20) -> None:
        self.min_confidence = min_confidence
        self.min_face_size = min_face_size
        self._model = None

    def _load(self):
        if self._model is None:
            from pipeline.core.native import load_tensorflow

            load_tensorflow()
            from mtcnn import MTCNN

            model = MTCNN(stages="face_and_landmarks_detection", device="CPU:0")
            _compile_stages(model)
            self._model = model
        return self._model

    def detect(self, rgb: np.ndarray) -> list[Box]:
        rgb = _check_image(rgb)
        if min(rgb.shape[:2]) < 12:  # below P-Net's receptive field: nothing to find
            return []
        found = self._load().detect_faces(rgb, box_format="xyxy", min_face_size=self.min_face_size)
        return self._boxes(found)

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Box]]:
        """:meth:`detect` of several same-sized images in one pass of the networks:
        about 2.5 times less CPU per image than one at a time (the networks' fixed cost
        per call dominates on small frames; measured 33 vs 86 ms per 320 x 180 frame)."""
        images = [_check_image(rgb) for rgb in images]
        if not images:
            return []
        if min(images[0].shape[:2]) < 12:
            return [[] for _ in images]
        found = self._load().detect_faces(list(images), box_format="xyxy", min_face_size=self.min_face_size)
        return [self._boxes(one) for one in found]

    def _boxes(self, found) -> list[Box]:
        boxes = []
        for face in found or []:
            x0, y0, x1, y1 = (float(v) for v in face["box"])
            score = float(face.get("confidence", 0.0))
            points = face.get("keypoints") or {}
            keypoints = (tuple((float(points[k][0]), float(points[k][1])) for k in KEYPOINTS)
                         if all(k in points for k in KEYPOINTS) else None)
            if score >= self.min_confidence and x1 > x0 and y1 > y0:
                boxes.append(Box(x0, y0, x1, y1, score, keypoints))
        return boxes


    def whole_image(self, rgb: np.ndarray) -> Box | None:
        """The whole image as the one face candidate, scored by MTCNN's last network
        (O-Net, whose input is a 48 x 48 face window: a tight face photo such as a
        FER2013 image is what it was trained to score): the refined box with its score
        and keypoints when the score is at least ``min_confidence`` and the keypoints
        lie inside the image, else None. The last fallback for a face that fills the
        picture, where the sliding windows of the first two networks find nothing."""
        rgb = _check_image(rgb)
        height, width = rgb.shape[:2]
        if min(height, width) < 12:
            return None
        model = self._load()
        import tensorflow as tf
        from mtcnn.utils.images import load_images_batch, standarize_batch

        with tf.device(model.device):
            images, _, _ = standarize_batch(load_images_batch([rgb]), normalize=True)
            rows = model.stages[-1](images_normalized=images,
                                    bboxes_batch=np.array([[0.0, 0.0, 0.0, width - 1.0, height - 1.0, 1.0]]),
                                    threshold_onet=self.min_confidence)
        rows = np.asarray(rows, dtype=float)
        if rows.ndim != 2 or rows.shape[0] == 0 or rows.shape[1] < 16:
            return None
        row = rows[int(np.argmax(rows[:, 5]))]
        points = tuple((float(row[6 + i]), float(row[11 + i])) for i in range(5))  # x1..x5 then y1..y5
        if not all(0.0 <= x < width and 0.0 <= y < height for x, y in points):
            return None
        x0, y0 = max(0.0, float(row[1])), max(0.0, float(row[2]))
        x1, y1 = min(float(width), float(row[3])), min(float(height), float(row[4]))
        if x1 <= x0 or y1 <= y0:
            return None
        return Box(x0, y0, x1, y1, float(row[5]), points)


def _compile_stages(model: Any) -> None:
    """Run each of ``model``'s three networks (an ``mtcnn.MTCNN``: P-Net, R-Net, O-Net,
    Keras models its stages call on float32 NHWC batches) as one TensorFlow graph
    (``tf.function`` with a shape-free signature: traced once per network, about 0.3 s
    in all) instead of layer by layer in eager mode, whose per-layer Python cost
    dominated: measured on 320 x 180 frames of ``bench/bench_floor.py``'s 5-minute clip,
    99 -> 30 ms for one frame and 23.5 -> 13.8 ms per frame in batches of 16, with the
    same boxes and scores on 16 of its frames (docs/serving_speed.md). The
    ``mtcnn`` package offers no switch for this: each stage keeps its network in
    ``_model``, which is replaced by the compiled call."""
    import tensorflow as tf

    spec = [tf.TensorSpec([None, None, None, 3], tf.float32)]
    for stage in getattr(model, "stages", []):
        network = getattr(stage, "_model", None)
        if network is not None:
            stage._model = tf.function(network, input_signature=spec)


class HaarDetector:
    """OpenCV's frontal-face Haar cascade (ships with opencv-python-headless 4.x).

    About 10 ms per 320-pixel frame: the fast detector for the live page. Scores are
    not calibrated probabilities: every hit gets ``score=1.0``.
    """

    name = "haar"

    def __init__(self, scale_factor: float = 1.1, min_neighbors: int = 5, min_size: int = 24,
                 cascade: str = "haarcascade_frontalface_default.xml") -> None:
        import cv2

        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size
        self.cascade = cascade
        base = getattr(getattr(cv2, "data", None), "haarcascades", "")
        path = os.path.join(base, cascade)
        if not base or not os.path.isfile(path):
            raise RuntimeError(f"OpenCV ships no Haar cascade {cascade!r} here "
                               "(opencv-python-headless 4.x is needed; 5.x dropped them)")
        self._classifier = cv2.CascadeClassifier(path)
        if self._classifier.empty():
            raise RuntimeError(f"the Haar cascade {path} could not be loaded")

    def detect(self, rgb: np.ndarray) -> list[Box]:
        import cv2

        gray = cv2.cvtColor(_check_image(rgb), cv2.COLOR_RGB2GRAY)
        if min(gray.shape) < self.min_size:
            return []
        gray = cv2.equalizeHist(gray)
        hits = self._classifier.detectMultiScale(gray, scaleFactor=self.scale_factor,
                                                 minNeighbors=self.min_neighbors,
                                                 minSize=(self.min_size, self.min_size))
        return [Box(float(x), float(y), float(x + w), float(y + h), 1.0) for x, y, w, h in np.reshape(hits, (-1, 4))]


def make_detector(name: str) -> FaceDetector:
    """A detector by name: ``"mtcnn"`` or ``"haar"`` (for CLI flags and configs)."""
    if name == "mtcnn":
        return MtcnnDetector()
    if name == "haar":
        return HaarDetector()
    raise ValueError(f"unknown face detector {name!r}; choose 'mtcnn' or 'haar'")


# --------------------------------------------------------------------------- box geometry
def square_box(box: Box, margin: float, frame_size: tuple[int, int]) -> Box:
    """A square around ``box``'s centre, ``margin`` of its longer side added on each side,
    moved (not cut) to lie inside a ``frame_size = (width, height)`` frame.

    The side is ``max(w, h) * (1 + 2 * margin)``, capped at the frame's shorter side, so
    the result is always square and inside the frame: crops are never stretched.
    """
    width, height = frame_size
    side = max(box.width, box.height) * (1.0 + 2.0 * margin)
    side = max(1.0, min(side, float(width), float(height)))
    cx, cy = box.center
    x0 = min(max(cx - side / 2.0, 0.0), width - side)
    y0 = min(max(cy - side / 2.0, 0.0), height - side)
    return Box(x0, y0, x0 + side, y0 + side, box.score)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when disjoint)."""
    ix = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0))
    iy = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    inter = ix * iy
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


#: Faces whose area is at least this fraction of the largest one count as the same
#: size (one face's box varies by up to ~20% between frames and finders); among them
#: the most central is followed.
SAME_SIZE: float = 0.8


def _rank_faces(boxes: Sequence[Box], frame_size: tuple[int, int]) -> tuple[Box, str]:
    """(the face the rule picks, ``"size"`` or ``"centre"``: what decided it)."""
    width, height = frame_size
    largest = max(b.area for b in boxes)
    same = [b for b in boxes if b.area >= SAME_SIZE * largest]

    def off_centre(b: Box) -> float:
        cx, cy = b.center
        return math.hypot(cx - width / 2.0, cy - height / 2.0)

    chosen = min(same, key=lambda b: (off_centre(b), -b.area))
    return chosen, ("centre" if len(same) > 1 else "size")


def choose_face(boxes: Sequence[Box], frame_size: tuple[int, int], previous: Box | None = None) -> Box | None:
    """The one face to follow among several in a frame of ``frame_size = (width, height)``.

    With a ``previous`` box, the face overlapping it most (IoU > 0.2) wins, so the crop
    stays on the same person. Otherwise: the largest face; faces within
    :data:`SAME_SIZE` of the largest area count as equally large, and the one whose
    centre is nearest the frame centre wins among them. The same rule for every
    finder. None when ``boxes`` is empty.
    """
    if not boxes:
        return None
    if previous is not None:
        overlaps = [iou(b, previous) for b in boxes]
        best = int(np.argmax(overlaps))
        if overlaps[best] > 0.2:
            return boxes[best]
    return _rank_faces(boxes, frame_size)[0]


def faces_note(n_faces: int, decided_by: str = "size") -> str:
    """The plain sentence for several faces: ``"2 faces seen; following the larger
    one"`` (``decided_by`` ``"size"``) or ``"... following the more central one (about
    the same size)"`` (``"centre"``); empty for one face or none."""
    if n_faces < 2:
        return ""
    two = n_faces == 2
    if decided_by == "centre":
        return (f"{n_faces} faces seen; following the {'more' if two else 'most'} central one "
                "(they are about the same size)")
    return f"{n_faces} faces seen; following the {'larger' if two else 'largest'} one"


def _box_array(boxes: Sequence[Box | None]) -> np.ndarray:
    """(n, 4) float array of x0, y0, x1, y1 with NaN rows for missing boxes."""
    out = np.full((len(boxes), 4), np.nan)
    for i, b in enumerate(boxes):
        if b is not None:
            out[i] = (b.x0, b.y0, b.x1, b.y1)
    return out


def fill_and_smooth(keys: np.ndarray, key_boxes: Sequence[Box | None], n: int,
                    max_gap: int, window: int = 3) -> list[Box | None]:
    """Per-frame boxes for frames ``0..n-1`` from boxes known at frame indices ``keys``.

    Frames between two known boxes get a linear interpolation; frames up to ``max_gap``
    frames beyond the first/last known box get that box; farther frames get None (no
    face nearby). A centred moving average over ``window`` frames (within each run of
    boxed frames) then removes detector jitter. Scores are interpolated the same way.
    """
    keys = np.asarray(keys, dtype=float)
    have = [i for i, b in enumerate(key_boxes) if b is not None]
    result: list[Box | None] = [None] * n
    if not have:
        return result
    k = keys[have]
    coords = _box_array([key_boxes[i] for i in have])
    scores = np.array([key_boxes[i].score for i in have])
    frames = np.arange(n, dtype=float)
    # distance (in frames) from each frame to the nearest known box
    nearest = np.min(np.abs(frames[:, None] - k[None, :]), axis=1)
    filled = np.column_stack([np.interp(frames, k, coords[:, j]) for j in range(4)])
    score = np.interp(frames, k, scores)
    valid = nearest <= max_gap  # also breaks a long gap between two known boxes
    if window > 1:
        filled = _smooth_runs(filled, valid, window)
    for i in np.flatnonzero(valid):
        result[i] = Box(*map(float, filled[i]), score=float(score[i]))
    return result


def _smooth_runs(values: np.ndarray, valid: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average of ``values`` rows over ``window``, within runs of ``valid``."""
    out = values.copy()
    half = window // 2
    n = len(values)
    for i in np.flatnonzero(valid):
        lo, hi = max(0, i - half), min(n, i + half + 1)
        rows = [j for j in range(lo, hi) if valid[j]]
        out[i] = values[rows].mean(axis=0)
    return out


def downscaled(rgb: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """``rgb`` downscaled so its longer side is at most ``max_side``, and the scale."""
    height, width = rgb.shape[:2]
    if not max_side or max(height, width) <= max_side:
        return rgb, 1.0
    import cv2

    scale = max_side / max(height, width)
    return cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))),
                      interpolation=cv2.INTER_AREA), scale


#: Images per call of a detector's ``detect_batch`` (bounds the networks' memory).
DETECT_BATCH: int = 16


def _detect_batched(detector: FaceDetector, images: Sequence[np.ndarray], max_side: int | None) -> list[list[Box]]:
    """:func:`detect_scaled` of every image, in batches of :data:`DETECT_BATCH`
    same-sized images when the detector has ``detect_batch`` (MTCNN), else one by one.
    A batch that fails is retried image by image (so one bad frame never sinks a clip)."""
    batch = getattr(detector, "detect_batch", None)
    if batch is None or len(images) < 2:
        return [detect_scaled(detector, np.asarray(rgb), max_side) for rgb in images]
    out: list[list[Box] | None] = [None] * len(images)
    scaled = [downscaled(np.asarray(rgb), max_side) for rgb in images]
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, (small, _) in enumerate(scaled):
        groups.setdefault(small.shape, []).append(i)
    for members in groups.values():
        for k in range(0, len(members), DETECT_BATCH):
            chunk = members[k:k + DETECT_BATCH]
            try:
                found = batch([scaled[i][0] for i in chunk])
            except (ImportError, MemoryError):
                raise
            except Exception as err:  # a third-party detector failing: fall back to one by one
                log.warning("batched face detection failed (%s); detecting frame by frame", err)
                found = [detect_scaled(detector, np.asarray(images[i]), max_side) for i in chunk]
                for i, boxes in zip(chunk, found):
                    out[i] = boxes
                continue
            for i, boxes in zip(chunk, found):
                scale = scaled[i][1]
                out[i] = [b.scaled(1.0 / scale) for b in boxes] if scale != 1.0 else list(boxes)
    return [boxes or [] for boxes in out]


#: Longer side (pixels) of the finer pass for frames where the first pass (frames shrunk
#: to ``max_side``, 320 px in serving) found nothing: MTCNN's smallest face is 20 px, so
#: at 960 px faces from 1/48 of the frame's long side are found (1/16 at 320 px).
FINE_SIDE: int = 960
#: Frames of one :func:`detect_many` call that try the slower passes
#: (:func:`detect_rescue`) before they are given up as faceless: once one of them finds
#: a face every frame without one tries them; if none of the first ``RESCUE_PROBE`` does,
#: the rest do not (a clip with no face pays at most this many extra passes).
RESCUE_PROBE: int = 3
#: Border added on each side (a fraction of the longer side, edge pixels repeated) for
#: the whole-image view of a face that fills the frame: MTCNN needs some context around
#: a face and misses one cut at the chin and hairline.
PAD_FRACTION: float = 0.25


def detect_many(detector: FaceDetector, images: Sequence[np.ndarray], max_side: int | None, *,
                rescue: bool = True) -> list[list[Box]]:
    """Every face in each of ``images`` (in their own pixels): a first pass on images
    shrunk to ``max_side`` (batched, :func:`_detect_batched`), then, with ``rescue``,
    :func:`detect_rescue` on the images where it found nothing, bounded by
    :data:`RESCUE_PROBE`."""
    out = _detect_batched(detector, images, max_side)
    if not rescue:
        return out
    misses = [i for i, boxes in enumerate(out) if not boxes]
    rescued = False
    for tried, i in enumerate(misses):
        if not rescued and tried >= RESCUE_PROBE:
            break
        out[i] = detect_rescue(detector, np.asarray(images[i]), max_side)
        rescued = rescued or bool(out[i])
    return out


def landmarks_plausible(box: Box) -> bool:
    """True when ``box.keypoints`` (see :data:`KEYPOINTS`) lie in an
    upright face's layout: eyes above the nose, nose above the mouth corners, the eyes
    at least a fifth of the box's width apart, every point inside the box (10% slack).
    False without keypoints."""
    if box.keypoints is None or len(box.keypoints) != 5 or box.width <= 0 or box.height <= 0:
        return False
    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = box.keypoints
    sx, sy = 0.1 * box.width, 0.1 * box.height
    inside = all(box.x0 - sx <= x <= box.x1 + sx and box.y0 - sy <= y <= box.y1 + sy for x, y in box.keypoints)
    eyes_y, mouth_y = (ly + ry) / 2.0, (mly + mry) / 2.0
    return bool(inside and max(ly, ry) < ny < min(mly, mry) and eyes_y < mouth_y
                and abs(rx - lx) >= 0.2 * box.width and min(lx, rx) < nx < max(lx, rx) + 0.25 * box.width)


def detect_rescue(detector: FaceDetector, rgb: np.ndarray, max_side: int | None) -> list[Box]:
    """The slower passes for an image in which the first pass (at ``max_side``) found no
    face, in order, the first that finds one winning:

    1. a **finer pass** at :data:`FINE_SIDE` when the image is at least 1.5 times
       ``max_side`` (a small face in a large frame);
    2. a **whole-image view**: the image (at ``max_side``) with :data:`PAD_FRACTION` of
       border added (a face filling the frame, a tight face photo); a face found there
       counts only when its landmarks are a face's
       (:func:`landmarks_plausible`; finders without landmarks, Haar, get nothing from
       this view), its box is cut to the image;
    3. the **whole picture** as one face window (:func:`whole_image_face`: MTCNN's
       O-Net scores the central square; landmarks checked the same way).

    Boxes in ``rgb``'s pixels."""
    import cv2

    rgb = _check_image(rgb)
    height, width = rgb.shape[:2]
    if max_side and max(height, width) >= 1.5 * max_side:
        found = detect_scaled(detector, rgb, max(FINE_SIDE, max_side))
        if found:
            return found
    small, scale = downscaled(rgb, max_side)
    pad = int(round(PAD_FRACTION * max(small.shape[:2])))
    view = cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    out = []
    for box in detect_scaled(detector, view, None):
        if not landmarks_plausible(box):
            continue
        points = None if box.keypoints is None else tuple((x - pad, y - pad) for x, y in box.keypoints)
        inside = Box(max(0.0, box.x0 - pad), max(0.0, box.y0 - pad), min(float(small.shape[1]), box.x1 - pad),
                     min(float(small.shape[0]), box.y1 - pad), box.score, points)
        if inside.area >= 0.25 * box.area:  # mostly in the picture, not in the border
            out.append(inside.scaled(1.0 / scale) if scale != 1.0 else inside)
    if not out:
        whole = whole_image_face(detector, small)
        if whole is not None:
            out.append(whole.scaled(1.0 / scale) if scale != 1.0 else whole)
    return out


def whole_image_face(detector: FaceDetector, rgb: np.ndarray) -> Box | None:
    """The central square of ``rgb`` as one face, when the detector can score a given
    window (``whole_image``: :meth:`MtcnnDetector.whole_image`) and says it is a face
    whose landmarks are a face's (:func:`landmarks_plausible`);
    None otherwise (and always for finders without it, Haar). Box in ``rgb``'s pixels."""
    score = getattr(detector, "whole_image", None)
    if score is None:
        return None
    rgb = _check_image(rgb)
    height, width = rgb.shape[:2]
    side = min(height, width)
    y0, x0 = (height - side) // 2, (width - side) // 2
    try:
        box = score(rgb[y0:y0 + side, x0:x0 + side])
    except (ImportError, MemoryError):
        raise
    except Exception as err:  # one bad image is no face, never a crash
        log.warning("whole-image face check failed: %s", err)
        return None
    if box is None or not landmarks_plausible(box):
        return None
    points = None if box.keypoints is None else tuple((x + x0, y + y0) for x, y in box.keypoints)
    return Box(box.x0 + x0, box.y0 + y0, box.x1 + x0, box.y1 + y0, box.score, points)


def detect_scaled(detector: FaceDetector, rgb: np.ndarray, max_side: int | None) -> list[Box]:
    """Run ``detector`` on ``rgb`` downscaled so its longer side is at most ``max_side``
    (speed), returning boxes in ``rgb``'s own pixels. A detector error on a frame is
    logged and counts as no face, so one bad frame never sinks a clip (a missing
    package still raises)."""
    small, scale = downscaled(rgb, max_side)
    try:
        found = detector.detect(small)
    except (ImportError, MemoryError):  # a broken install is not "no face": say so
        raise
    except Exception as err:  # a third-party detector failing on one frame
        log.warning("face detector %s failed on a frame: %s", getattr(detector, "name", detector), err)
        return []
    return [b.scaled(1.0 / scale) for b in found] if scale != 1.0 else list(found)


@dataclass
class FaceTrack:
    """What :func:`track_faces` found: ``boxes`` one square box (or None) per frame;
    ``counts`` the number of faces the finder returned on each frame it ran on;
    ``faces_seen`` how many people were in view (the median count over those frames
    that had a face, rounded up, so one spurious hit does not add a person);
    ``decided_by`` ``"size"`` or ``"centre"``: what picked the followed face;
    ``keys`` the frames the finder ran on and ``chosen`` the followed face's raw
    detection on each (with the finder's keypoints; None where it found none), what
    :mod:`pipeline.core.face_checks` examines."""

    boxes: list[Box | None]
    counts: list[int]
    faces_seen: int
    decided_by: str = "size"
    keys: list[int] = field(default_factory=list)
    chosen: list[Box | None] = field(default_factory=list)

    @property
    def note(self) -> str:
        """``"2 faces seen; following the larger one"``, or "" for one face."""
        return faces_note(self.faces_seen, self.decided_by)


def track_boxes(frames: np.ndarray | Sequence[np.ndarray], detector: FaceDetector, *, every: int = 3,
                margin: float = 0.15, detect_side: int | None = 320, max_gap: int | None = None,
                window: int = 3) -> list[Box | None]:
    """One stable square face box per frame: :func:`track_faces` ``.boxes``."""
    return track_faces(frames, detector, every=every, margin=margin, detect_side=detect_side,
                       max_gap=max_gap, window=window).boxes


def track_keys(n: int, every: int) -> list[int]:
    """The frames of an ``n``-frame sample the detector runs on: every ``every``-th and
    the last."""
    every = max(1, int(every))
    return sorted(set(range(0, n, every)) | {n - 1}) if n > 0 else []


def track_faces(frames: np.ndarray | Sequence[np.ndarray], detector: FaceDetector, *, every: int = 3,
                margin: float = 0.15, detect_side: int | None = 320, max_gap: int | None = None,
                window: int = 3) -> FaceTrack:
    """One stable square face box per frame, running ``detector`` on every ``every``-th
    frame only (and the last), and how many faces were in view.

    ``frames``: (n, H, W, 3) uint8 RGB. Detection runs on frames downscaled to
    ``detect_side`` pixels (longer side); boxes come back in ``frames`` pixels. Among
    several faces the largest, most central one is picked on the first detection and
    followed by overlap afterwards (:func:`choose_face`); detections are interpolated
    and smoothed (:func:`fill_and_smooth`, ``max_gap`` defaults to ``every``), then
    squared with ``margin`` and kept inside the frame (:func:`square_box`). Frames with
    no detection within ``max_gap`` frames get None. The same as
    :func:`track_from_detections` of :func:`detect_many` on :func:`track_keys`.
    """
    n = len(frames)
    if n == 0:
        return FaceTrack([], [], 0)
    keys = track_keys(n, every)
    found = detect_many(detector, [np.asarray(frames[i]) for i in keys], detect_side)
    height, width = np.asarray(frames[0]).shape[:2]
    return track_from_detections(keys, found, n, (width, height), every=every, margin=margin,
                                 max_gap=max_gap, window=window)


def follow(found: Sequence[Sequence[Box]], frame_size: tuple[int, int]) -> tuple[list[Box | None], str]:
    """The followed face in each of a sequence of detections (``found[k]``: the boxes on
    the k-th frame looked at, of ``frame_size = (width, height)``): picked by
    :func:`choose_face` where nothing was followed yet, then the one overlapping the
    previous pick; and ``"size"`` or ``"centre"``, what decided the first pick."""
    chosen: list[Box | None] = []
    previous: Box | None = None
    decided_by = "size"
    for boxes in found:
        boxes = list(boxes)
        if previous is None and boxes:
            decided_by = _rank_faces(boxes, frame_size)[1]
        face = choose_face(boxes, frame_size, previous)
        chosen.append(face)
        if face is not None:
            previous = face
    return chosen, decided_by


#: Least overlap (IoU) of the followed face's boxes at two neighbouring coarse key frames
#: for :func:`detect_coarse_to_fine` to take the face as steady between them (the boxes
#: in between interpolated, not looked for).
STEADY_IOU: float = 0.5


def detect_coarse_to_fine(detector: FaceDetector, images: Sequence[np.ndarray], every: int,
                          max_side: int | None) -> tuple[list[int], list[list[Box]]]:
    """The detector's key frames of a long run of frames and what it found on each, as
    :func:`track_keys` with ``every`` would give them, for about half the detector runs
    where the face holds still: a first pass on every ``2 * every``-th frame (and the
    last); between two neighbouring keys of that pass the frames of the ``every`` grid are
    looked at too unless the followed face (:func:`follow`) is on both, overlapping by
    :data:`STEADY_IOU` or more, with as many faces on both. ``images`` (n, H, W, 3) uint8,
    all the same size; returns (sorted key frames, the boxes found on each, in the
    images' pixels) for :func:`track_from_detections`. Detection as in :func:`detect_many`."""
    n = len(images)
    if n == 0:
        return [], []
    every = max(1, int(every))
    coarse = track_keys(n, 2 * every)
    found = dict(zip(coarse, detect_many(detector, [images[k] for k in coarse], max_side)))
    height, width = np.asarray(images[0]).shape[:2]
    chosen, _ = follow([found[k] for k in coarse], (width, height))
    finer: list[int] = []
    for (a, face_a), (b, face_b) in zip(zip(coarse, chosen), zip(coarse[1:], chosen[1:])):
        steady = (face_a is not None and face_b is not None and iou(face_a, face_b) >= STEADY_IOU
                  and len(found[a]) == len(found[b]))
        if not steady:
            finer += [k for k in range(a + every, b, every) if k not in found]
    if finer:
        found.update(zip(finer, detect_many(detector, [images[k] for k in finer], max_side)))
    keys = sorted(found)
    return keys, [found[k] for k in keys]


def track_from_detections(keys: Sequence[int], found: Sequence[Sequence[Box]], n: int,
                          frame_size: tuple[int, int], *, every: int = 3, margin: float = 0.15,
                          max_gap: int | None = None, window: int = 3) -> FaceTrack:
    """The tracking half of :func:`track_faces`: ``found[k]`` the boxes the detector
    returned on frame ``keys[k]`` of ``n`` frames of ``frame_size = (width, height)``.
    Lets a caller detect on the key frames of many samples in one batch."""
    width, height = frame_size
    chosen, decided_by = follow(found, frame_size)
    counts = [len(boxes) for boxes in found]
    gap = max(1, int(every)) if max_gap is None else max_gap
    tracked = fill_and_smooth(np.array(list(keys)), chosen, n, max_gap=gap, window=window)
    with_face = [c for c in counts if c > 0]
    seen = int(math.ceil(float(np.median(with_face)))) if with_face else 0
    return FaceTrack([None if b is None else square_box(b, margin, (width, height)) for b in tracked],
                     counts, seen, decided_by, [int(k) for k in keys], chosen)


def face_box(rgb: np.ndarray, detector: FaceDetector, margin: float = 0.15,
             detect_side: int | None = 320) -> Box | None:
    """The one face to follow in a single frame, framed as every crop here is framed
    (:func:`choose_face`, then :func:`square_box` with ``margin``), or None. The Live
    page's per-frame face: the same finder, rule and geometry as a clip's."""
    height, width = rgb.shape[:2]
    face = choose_face(detect_scaled(detector, rgb, detect_side), (width, height))
    return None if face is None else square_box(face, margin, (width, height))


# --------------------------------------------------------------------------- landmarks
@dataclass(frozen=True)
class LandmarkTrack:
    """The 2-D landmarks of an OpenFace CSV: ``times`` (m,) s, ``confidence`` (m,),
    ``success`` (m,) bool, ``x`` and ``y`` (m, 68) pixels of the original video."""

    times: np.ndarray
    confidence: np.ndarray
    success: np.ndarray
    x: np.ndarray
    y: np.ndarray


def read_landmarks(csv_path: str | os.PathLike) -> LandmarkTrack:
    """Read the columns we need from an OpenFace 2 CSV (``frame, timestamp,
    confidence, success, x_0..x_67, y_0..y_67``; OpenFace pads names with spaces).

    Raises ValueError with a one-line reason when the file is missing, empty or lacks
    those columns.
    """
    import pandas as pd

    wanted = {"frame", "timestamp", "confidence", "success"}
    wanted |= {f"x_{i}" for i in range(N_LANDMARKS)} | {f"y_{i}" for i in range(N_LANDMARKS)}
    try:
        table = pd.read_csv(csv_path, usecols=lambda c: str(c).strip() in wanted, skipinitialspace=True)
    except FileNotFoundError:
        raise ValueError(f"landmark file not found: {csv_path}") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ValueError(f"{os.path.basename(str(csv_path))} is not a readable landmark CSV ({type(err).__name__})") from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = sorted(wanted - {"frame"} - set(table.columns), key=lambda c: (len(c), c))
    if missing:
        raise ValueError(f"{os.path.basename(str(csv_path))} lacks OpenFace columns: {', '.join(missing[:5])}"
                         + (" ..." if len(missing) > 5 else ""))
    if table.empty:
        raise ValueError(f"{os.path.basename(str(csv_path))} holds no landmark rows")
    numeric = table.apply(pd.to_numeric, errors="coerce")
    xs = numeric[[f"x_{i}" for i in range(N_LANDMARKS)]].to_numpy(float)
    ys = numeric[[f"y_{i}" for i in range(N_LANDMARKS)]].to_numpy(float)
    success = numeric["success"].fillna(0).to_numpy() > 0
    success &= np.all(np.isfinite(xs), axis=1) & np.all(np.isfinite(ys), axis=1)
    return LandmarkTrack(times=numeric["timestamp"].to_numpy(float),
                         confidence=numeric["confidence"].fillna(0).to_numpy(float),
                         success=success, x=xs, y=ys)


def boxes_from_landmarks(csv_path: str | os.PathLike, times: Sequence[float], frame_size: tuple[int, int],
                         video_size: tuple[int, int], margin: float, *, min_confidence: float = 0.5,
                         max_gap_s: float = 0.25) -> list[Box | None]:
    """Square face boxes at ``times`` (s) from an OpenFace landmark CSV.

    Each usable row (``success`` and ``confidence >= min_confidence``) gives the
    bounding box of its 68 points in the original video's pixels (``video_size =
    (width, height)``); boxes are interpolated in time to ``times``, scaled to
    ``frame_size = (width, height)`` and squared with ``margin`` (:func:`square_box`).
    Times farther than ``max_gap_s`` from any usable row get None. Raises ValueError
    for an unreadable CSV.
    """
    track = read_landmarks(csv_path)
    good = track.success & (track.confidence >= min_confidence) & np.isfinite(track.times)
    times = np.asarray(times, dtype=float)
    if not good.any() or len(times) == 0:
        return [None] * len(times)
    t = track.times[good]
    order = np.argsort(t, kind="stable")
    t = t[order]
    coords = np.column_stack([track.x[good].min(axis=1), track.y[good].min(axis=1),
                              track.x[good].max(axis=1), track.y[good].max(axis=1)])[order]
    conf = track.confidence[good][order]
    vw, vh = video_size
    fw, fh = frame_size
    if vw <= 0 or vh <= 0:
        raise ValueError("video_size must be positive (width, height)")
    sx, sy = fw / vw, fh / vh
    nearest = np.min(np.abs(times[:, None] - t[None, :]), axis=1)
    out: list[Box | None] = []
    for ti, dist in zip(times, nearest):
        if dist > max_gap_s:
            out.append(None)
            continue
        x0, y0, x1, y1 = (float(np.interp(ti, t, coords[:, j])) for j in range(4))
        raw = Box(x0, y0, x1, y1, float(np.interp(ti, t, conf))).scaled(sx, sy)
        out.append(square_box(raw, margin, (fw, fh)))
    return out


def crop(rgb: np.ndarray, box: Box, size: int) -> np.ndarray:
    """The ``box`` region of ``rgb`` resized to ``size`` x ``size`` uint8 RGB (area
    interpolation when shrinking). The box is clipped to the image first."""
    import cv2

    height, width = rgb.shape[:2]
    x0 = int(np.clip(math.floor(box.x0), 0, width - 1))
    y0 = int(np.clip(math.floor(box.y0), 0, height - 1))
    x1 = int(np.clip(math.ceil(box.x1), x0 + 1, width))
    y1 = int(np.clip(math.ceil(box.y1), y0 + 1, height))
    region = rgb[y0:y1, x0:x1]
    shrink = region.shape[0] > size or region.shape[1] > size
    return cv2.resize(region, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
