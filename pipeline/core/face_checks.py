"""Checks on a face the finder returned: are the landmarks a face's, which way is up,
is part of it hidden.

* :func:`pipeline.core.faces.landmarks_plausible` (in faces, which this module builds on): the detector's five points (MTCNN's eyes, nose and mouth
  corners) in a face's layout: both eyes above the nose, the nose above the mouth, eyes
  apart, every point inside the box. The test that lets a padded or whole-image view of
  a tight face photo count as a face (:func:`pipeline.core.faces.detect_rescue`).
* :func:`upright_turn`: how many quarter turns make a face crop upright. MTCNN finds
  some upside-down faces with full confidence and places its five points in the
  upright layout anyway (measured: RAVDESS actor 5 turned 180 degrees, confidence
  0.999, "eyes" 44 px above the "mouth"), so its points cannot tell which way is up.
  OpenCV's frontal Haar cascade was trained on upright faces only: on a crop of the
  face it fires on the upright view and rarely on the others. Measured on square crops
  (box + 30%, 96 px; ``scaleFactor`` 1.05, 3 neighbours): of 24 RAVDESS stills it fired
  on all 24 upright and on 2 turned 180 degrees (22 decided); of 58 FER2013 faces, 49
  upright, 13 at 180 degrees and 4 at each quarter turn, and only 1 fired at 180 and
  not upright (the false "upside down" rate). A view wins only when the cascade fires
  on it and not on the upright one; otherwise the face is taken as it is.
* :func:`hidden_parts`: occlusion of the mouth or the eyes. A mask, a hand or a
  sticker over the lower face flattens its texture and changes its colour: the mean
  gradient magnitude (Sobel) of a band around the mouth is compared with that of a
  band around the eyes, and (in colour pictures) the band's chroma (YCrCb) with the
  cheeks'. Measured on three RAVDESS stills with a grey, white or blue rectangle from
  the nose down: mouth-band texture 0.0 against 88-95 around the eyes (unmasked:
  52-70 against 90-94); chroma moved by 24-60 (unmasked: 3-9).

Pure functions on numpy arrays; OpenCV is imported inside them.
"""
from __future__ import annotations

import functools
import math
import os
import threading
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from pipeline.core import media
from pipeline.core.faces import Box

#: A band's texture below this fraction of the other band's counts as hidden (a flat
#: patch: the measured masks give 0.0; unmasked mouths 0.55-0.78 of the eyes').
FLAT_RATIO: float = 0.3
#: With colour: a mouth band whose texture is below this fraction of the eyes' and
#: whose chroma is this far (Cr + Cb distance, 0..255 units) from the cheeks' counts
#: as hidden (a textured mask of another colour).
SOFT_RATIO: float = 0.6
CHROMA_SHIFT: float = 20.0

LOWER_HIDDEN = "the lower face is hidden (a mask or a hand?): the answer reads the eyes and brows only"
EYES_HIDDEN = "the eyes are hidden (sunglasses or a hand?): the answer reads the lower face only"
TURNED_NOTE = {90: "the face was turned a quarter turn; it was turned upright before reading it",
               180: "the face was upside down; it was turned upright before reading it",
               270: "the face was turned a quarter turn; it was turned upright before reading it"}


@dataclass
class FaceChecks:
    """What the checks found over a clip's checked frames: ``turn`` the clockwise
    quarter turns (0, 90, 180 or 270 degrees) that make the face upright, ``notes``
    plain sentences about hidden parts (the answer is hedged when there are any)."""

    turn: int = 0
    notes: list[str] = field(default_factory=list)


def square_crop(rgb: np.ndarray, box: Box, size: int = 96, margin: float = 0.3) -> np.ndarray:
    """The face in ``box`` with ``margin`` of its side around it, as a ``size`` square
    (edge pixels repeated where the square leaves the image), uint8 RGB."""
    import cv2

    height, width = rgb.shape[:2]
    cx, cy = box.center
    side = max(box.width, box.height) * (1.0 + margin)
    x0, y0 = int(math.floor(cx - side / 2)), int(math.floor(cy - side / 2))
    x1, y1 = int(math.ceil(cx + side / 2)), int(math.ceil(cy + side / 2))
    pad = max(0, -x0, -y0, x1 - width, y1 - height)
    if pad:
        rgb = cv2.copyMakeBorder(np.ascontiguousarray(rgb), pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    region = rgb[y0:y1, x0:x1]
    if region.size == 0:
        return np.zeros((size, size, 3), np.uint8)
    return cv2.resize(region, (size, size), interpolation=cv2.INTER_AREA if region.shape[0] > size else cv2.INTER_CUBIC)


@functools.lru_cache(maxsize=8)
def _haar_of_thread(thread: int):
    """OpenCV's frontal face cascade, loaded once per thread (``thread``: its
    ``threading.get_ident()``; a cascade object is not shared between threads). Loading
    the XML costs about 20 ms, as much as checking a face."""
    import cv2

    path = os.path.join(getattr(getattr(cv2, "data", None), "haarcascades", ""),
                        "haarcascade_frontalface_default.xml")
    classifier = cv2.CascadeClassifier(path) if os.path.isfile(path) else None
    return None if classifier is None or classifier.empty() else classifier


def _haar():
    return _haar_of_thread(threading.get_ident())


def upright_turn(crop: np.ndarray, classifier=None) -> int | None:
    """The clockwise turn (degrees: 0, 90, 180 or 270) that makes the face in ``crop``
    (a square uint8 RGB crop of one face with some margin, :func:`square_crop`) upright,
    judged by OpenCV's frontal Haar cascade on the four views: the one view it fires on
    when it does not fire on the crop as it is; 0 when it fires on the crop as it is;
    None when it fires on none or on several turned views (undecided). ``classifier``:
    a loaded ``cv2.CascadeClassifier`` (loaded here when None; None returned when OpenCV
    ships no cascade)."""
    import cv2

    classifier = classifier if classifier is not None else _haar()
    if classifier is None:
        return None
    grey = cv2.equalizeHist(cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY))
    side = min(grey.shape)

    def fires(turn: int) -> bool:
        hits = classifier.detectMultiScale(media.turned(grey, turn), scaleFactor=1.05, minNeighbors=3,
                                           minSize=(side // 3, side // 3))
        return len(np.reshape(hits, (-1, 4))) > 0

    if fires(0):  # the usual case: upright, and the turned views need not be looked at
        return 0
    turned_views = [t for t in (90, 180, 270) if fires(t)]
    return turned_views[0] if len(turned_views) == 1 else None


def _bands(box: Box) -> tuple[tuple[float, float, float, float], tuple[float, float, float, float],
                                tuple[float, float, float, float]]:
    """(eyes band, mouth band, cheeks band) as ``(x0, y0, x1, y1)``: from the keypoints
    when the box has them, else from an upright face's usual proportions."""
    if box.keypoints is not None and len(box.keypoints) == 5:
        (lx, ly), (rx, ry), _, (mlx, mly), (mrx, mry) = box.keypoints
        eyes_y, mouth_y = (ly + ry) / 2.0, (mly + mry) / 2.0
        left, right = min(lx, rx, mlx), max(lx, rx, mrx)
    else:
        eyes_y, mouth_y = box.y0 + 0.38 * box.height, box.y0 + 0.78 * box.height
        left, right = box.x0 + 0.3 * box.width, box.x1 - 0.3 * box.width
    d = max(4.0, mouth_y - eyes_y)
    pad = 0.1 * box.width
    x0, x1 = left - pad, right + pad
    return ((x0, eyes_y - 0.25 * d, x1, eyes_y + 0.25 * d), (x0, mouth_y - 0.25 * d, x1, mouth_y + 0.25 * d),
            (x0, eyes_y + 0.2 * d, x1, eyes_y + 0.55 * d))


def _bounds(band: tuple[float, float, float, float], height: int, width: int) -> tuple[int, int, int, int]:
    """``(ya, yb, xa, xb)``: the pixel rows and columns of ``band`` inside a
    ``height`` x ``width`` picture."""
    x0, y0, x1, y1 = band
    xa, xb = int(np.clip(round(x0), 0, width)), int(np.clip(round(x1), 0, width))
    ya, yb = int(np.clip(round(y0), 0, height)), int(np.clip(round(y1), 0, height))
    return ya, yb, xa, xb


def _cut(values: np.ndarray, bounds: tuple[int, int, int, int], origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """The part of ``values`` (a picture cut out at ``origin`` = (row, column) of the
    whole one) inside ``bounds`` (:func:`_bounds`, in the whole picture's pixels)."""
    ya, yb, xa, xb = bounds
    return values[ya - origin[0]:yb - origin[0], xa - origin[1]:xb - origin[1]]


def hidden_parts(rgb: np.ndarray, box: Box) -> list[str]:
    """Plain notes on the parts of an upright face hidden from view: :data:`LOWER_HIDDEN`
    when the band around the mouth is flat (texture below :data:`FLAT_RATIO` of the
    eyes') or, in colour, smooth (below :data:`SOFT_RATIO`) and off the cheeks' colour
    by :data:`CHROMA_SHIFT`; :data:`EYES_HIDDEN` when the band around the eyes is flat
    against the mouth's. ``rgb`` (H, W, 3) uint8, ``box`` in its pixels (keypoints used
    when present). [] when the bands are too small to judge (under 3 px)."""
    import cv2

    height, width = rgb.shape[:2]
    eyes_at, mouth_at, cheeks_at = (_bounds(b, height, width) for b in _bands(box))
    # Only the face's neighbourhood is filtered: 2 pixels beyond the bands, so every
    # gradient inside them is the one the whole picture gives (a 3 x 3 Sobel).
    rows = [v for b in (eyes_at, mouth_at, cheeks_at) for v in b[:2]]
    cols = [v for b in (eyes_at, mouth_at, cheeks_at) for v in b[2:]]
    origin = (max(0, min(rows) - 2), max(0, min(cols) - 2))
    near = np.ascontiguousarray(rgb[origin[0]:min(height, max(rows) + 2), origin[1]:min(width, max(cols) + 2)])
    if near.size == 0:
        return []
    grey = cv2.cvtColor(near, cv2.COLOR_RGB2GRAY).astype(np.float32)
    magnitude = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    eyes, mouth = _cut(magnitude, eyes_at, origin), _cut(magnitude, mouth_at, origin)
    if min(eyes.shape + mouth.shape) < 3:
        return []
    t_eyes, t_mouth = float(eyes.mean()), float(mouth.mean())
    notes: list[str] = []
    lower_flat = t_mouth < FLAT_RATIO * t_eyes
    colour = not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]))
    if not lower_flat and colour and t_mouth < SOFT_RATIO * t_eyes:
        ycc = cv2.cvtColor(near, cv2.COLOR_RGB2YCrCb).astype(np.float32)
        cheeks, lower = _cut(ycc, cheeks_at, origin), _cut(ycc, mouth_at, origin)
        if cheeks.size and lower.size:
            shift = float(np.abs(cheeks[..., 1:].reshape(-1, 2).mean(0) - lower[..., 1:].reshape(-1, 2).mean(0)).sum())
            lower_flat = shift >= CHROMA_SHIFT
    if lower_flat:
        notes.append(LOWER_HIDDEN)
    elif t_eyes < FLAT_RATIO * t_mouth:
        notes.append(EYES_HIDDEN)
    return notes


def _vote(turns: Sequence[int], n: int) -> int:
    """The turn more than half of ``n`` checked frames gave (0 when none did)."""
    nonzero = [t for t in turns if t]
    for t in set(nonzero):
        if nonzero.count(t) > n / 2:
            return t
    return 0


def _vote_settled(turns: Sequence[int], remaining: int, n: int) -> bool:
    """Whether :func:`_vote` over ``n`` frames is already decided by ``turns`` (the
    frames checked so far), whatever the ``remaining`` ones give."""
    counts = [turns.count(t) for t in (90, 180, 270)]
    return max(counts) > n / 2 or all(c + remaining <= n / 2 for c in counts)


def check_faces(frames: Sequence[np.ndarray], boxes: Sequence[Box | None], *, max_checked: int = 5,
                orientation: bool = True) -> FaceChecks:
    """Orientation and occlusion over up to ``max_checked`` of ``frames`` (evenly spread
    among those with a box): the turn is the one most checked frames agree on (0 on a
    tie or when undecided), a hidden-part note is kept when at least half of the checked
    frames give it. ``boxes`` in ``frames`` pixels, the raw detections (with keypoints
    when the finder gives them). ``orientation=False``: occlusion only (the turn is
    known; the cascade, the costly part, is not run) and ``turn`` 0."""
    have = [i for i, b in enumerate(boxes) if b is not None]
    if not have:
        return FaceChecks()
    pick = [have[int(round(j))] for j in np.linspace(0, len(have) - 1, min(max_checked, len(have)))]
    pick = list(dict.fromkeys(pick))
    classifier = _haar() if orientation else None
    turns: list[int] = []
    notes: list[str] = []
    for k, i in enumerate(pick):
        frame, box = np.asarray(frames[i]), boxes[i]
        # the cascade (up to four passes a frame) only until the vote is settled: a turn
        # already past half of all picks, or none that the remaining picks could carry there
        settled = _vote_settled(turns, len(pick) - k, len(pick))
        turn = upright_turn(square_crop(frame, box), classifier) if orientation and not settled else 0
        if not settled:
            turns.append(0 if turn is None else turn)
        notes += hidden_parts(frame, box)
    turn = _vote(turns, len(pick))
    kept = [n for n in dict.fromkeys(notes) if notes.count(n) * 2 >= len(pick)]
    return FaceChecks(turn, kept)
