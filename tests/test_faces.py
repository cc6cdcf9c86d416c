"""Face boxes: geometry, the choice among several faces, tracking, landmark CSVs, and the
real detectors on the RAVDESS stills (when AVE_SHARED_DATA is set)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.core import faces
from pipeline.core.faces import Box


class FixedDetector:
    """A real FaceDetector that reports preset boxes per call (frames in order)."""

    name = "fixed"

    def __init__(self, per_call: list[list[Box]]) -> None:
        self.per_call = per_call
        self.calls = 0
        self.sizes: list[tuple[int, int]] = []

    def detect(self, rgb: np.ndarray) -> list[Box]:
        self.sizes.append(rgb.shape[:2])
        boxes = self.per_call[min(self.calls, len(self.per_call) - 1)]
        self.calls += 1
        return list(boxes)


def test_detectors_follow_the_protocol() -> None:
    assert isinstance(faces.HaarDetector(), faces.FaceDetector)
    assert isinstance(faces.MtcnnDetector(), faces.FaceDetector)  # lazy: no TensorFlow yet
    assert isinstance(FixedDetector([[]]), faces.FaceDetector)
    with pytest.raises(ValueError, match="unknown face detector"):
        faces.make_detector("dlib")


def test_square_box_adds_margin_and_stays_inside() -> None:
    box = faces.square_box(Box(100, 50, 140, 110), margin=0.25, frame_size=(320, 180))
    assert box.width == pytest.approx(box.height) == pytest.approx(60 * 1.5)
    assert box.center == pytest.approx((120, 80))
    # near a corner: shifted inside, never cut, never stretched
    corner = faces.square_box(Box(0, 0, 50, 40), margin=0.2, frame_size=(320, 180))
    assert (corner.x0, corner.y0) == (0, 0) and corner.width == pytest.approx(70)
    # bigger than the frame: capped at the shorter side
    huge = faces.square_box(Box(0, 0, 300, 300), margin=0.5, frame_size=(320, 180))
    assert huge.width == pytest.approx(180) and huge.y0 == 0 and 0 <= huge.x0 <= 140


def test_choose_face_prefers_large_central_then_follows_previous() -> None:
    small_center = Box(150, 80, 170, 100)
    big_corner = Box(0, 0, 60, 60)
    big_center = Box(130, 60, 190, 120)
    assert faces.choose_face([small_center, big_center, big_corner], (320, 180)) == big_center
    # largest first, wherever it is (the rule every finder shares) ...
    assert faces.choose_face([Box(0, 0, 64, 64), Box(135, 65, 185, 115)], (320, 180)) == Box(0, 0, 64, 64)
    # ... then, among faces of about the same size (within SAME_SIZE), the most central
    assert faces.choose_face([Box(0, 0, 60, 60), Box(133, 63, 189, 119)], (320, 180)) == Box(133, 63, 189, 119)
    # a finder drawing every box 30% bigger picks the same face
    scaled = [Box(0, 0, 78, 78), Box(126, 56, 199, 129)]
    assert faces.choose_face(scaled, (320, 180)) == scaled[1]
    # once following a face, overlap with it wins over size
    assert faces.choose_face([big_center, Box(2, 2, 62, 62)], (320, 180), previous=big_corner) == Box(2, 2, 62, 62)
    assert faces.choose_face([], (320, 180)) is None


def test_track_boxes_two_faces_keeps_one_and_interpolates() -> None:
    frames = np.zeros((10, 180, 320, 3), np.uint8)
    # the main face drifts right by 3 px per frame; a smaller face sits at the left edge
    main = [Box(100 + 3 * i, 50, 160 + 3 * i, 110, 0.99) for i in range(10)]
    other = Box(5, 60, 45, 100, 0.99)
    keys = [0, 3, 6, 9]
    detector = FixedDetector([[other, main[k]] for k in keys])
    boxes = faces.track_boxes(frames, detector, every=3, margin=0.0, window=1)
    assert detector.calls == 4  # detected on frames 0, 3, 6, 9 only
    assert all(b is not None for b in boxes)
    for i, b in enumerate(boxes):
        assert b.center == pytest.approx(main[i].center, abs=1e-6)  # interpolated between detections
        assert b.width == pytest.approx(60)


def test_track_boxes_no_face_gives_none_and_gaps_are_bridged_only_nearby() -> None:
    frames = np.zeros((13, 90, 160, 3), np.uint8)
    assert faces.track_boxes(frames, FixedDetector([[]]), every=3) == [None] * 13
    face = Box(60, 20, 100, 60)
    # found at frames 0 and 3, lost at 6, 9, 12: frames 0..6 boxed (within 3 of a hit), 7.. none
    detector = FixedDetector([[face], [face], [], [], []])
    boxes = faces.track_boxes(frames, detector, every=3)
    assert [b is not None for b in boxes] == [True] * 7 + [False] * 6


def test_track_boxes_detects_on_downscaled_frames() -> None:
    frames = np.zeros((2, 720, 1280, 3), np.uint8)
    detector = FixedDetector([[Box(40, 20, 80, 60)]])  # in the 320-px image
    boxes = faces.track_boxes(frames, detector, every=1, margin=0.0, detect_side=320, window=1)
    assert detector.sizes[0] == (180, 320)
    assert boxes[0].as_tuple() == (160, 80, 320, 240)  # scaled back to 1280 x 720 pixels


def test_smoothing_removes_a_jittering_detection() -> None:
    keys = np.arange(5)
    jitter = [Box(10, 10, 50, 50), Box(10, 10, 50, 50), Box(22, 10, 62, 50), Box(10, 10, 50, 50), Box(10, 10, 50, 50)]
    smooth = faces.fill_and_smooth(keys, jitter, 5, max_gap=1, window=3)
    assert smooth[2].x0 == pytest.approx(14)  # the 12 px jump is cut to 4 px


def _write_openface_csv(path: Path, rows: list[tuple[float, float, int, np.ndarray, np.ndarray]]) -> None:
    """An OpenFace-like CSV (names padded with spaces, extra columns) with given points."""
    header = ["frame", " face_id", " timestamp", " confidence", " success", " gaze_0_x"]
    header += [f" x_{i}" for i in range(68)] + [f" y_{i}" for i in range(68)] + [" AU01_r"]
    lines = [",".join(header)]
    for k, (t, conf, ok, xs, ys) in enumerate(rows):
        values = [k + 1, 0, t, conf, ok, 0.1, *xs, *ys, 0.5]
        lines.append(", ".join(f"{v:g}" for v in values))
    path.write_text("\n".join(lines) + "\n")


def test_boxes_from_landmarks_scale_margin_and_low_confidence(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)

    def points(x0, y0, x1, y1):  # 68 points whose bounding box is exactly (x0, y0, x1, y1)
        xs = rng.uniform(x0, x1, 68)
        ys = rng.uniform(y0, y1, 68)
        xs[:2] = (x0, x1)
        ys[:2] = (y0, y1)
        return xs, ys

    rows = [(0.0, 0.98, 1, *points(500, 200, 700, 400)),
            (0.1, 0.10, 1, *points(0, 0, 50, 50)),        # low confidence: ignored
            (0.2, 0.95, 0, *points(0, 0, 50, 50)),        # tracking failed: ignored
            (0.3, 0.97, 1, *points(560, 200, 760, 400)),
            (2.0, 0.97, 1, *points(560, 200, 760, 400))]
    csv = tmp_path / "01-01-01-01-01-01.csv"
    _write_openface_csv(csv, rows)
    boxes = faces.boxes_from_landmarks(csv, [0.0, 0.15, 0.3, 1.0], frame_size=(320, 180),
                                       video_size=(1280, 720), margin=0.1)
    first = boxes[0]
    assert first.center == pytest.approx((150, 75))           # (600, 300) / 4
    assert first.width == pytest.approx(first.height) == pytest.approx(50 * 1.2)
    assert boxes[1].center == pytest.approx((157.5, 75))     # interpolated over the bad rows
    assert boxes[2].center == pytest.approx((165, 75))
    assert boxes[3] is None                                  # 0.7 s from any usable row


def test_landmark_csv_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not found"):
        faces.read_landmarks(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("frame,timestamp,confidence\n1,0.0,0.9\n")
    with pytest.raises(ValueError, match="lacks OpenFace columns"):
        faces.read_landmarks(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="not a readable landmark CSV"):
        faces.read_landmarks(empty)


def test_haar_finds_nothing_in_black_or_noise() -> None:
    haar = faces.HaarDetector()
    assert haar.detect(np.zeros((180, 320, 3), np.uint8)) == []
    noise = np.random.default_rng(1).integers(0, 256, (180, 320, 3)).astype(np.uint8)
    assert haar.detect(noise) == []
    assert haar.detect(np.zeros((10, 10, 3), np.uint8)) == []
    with pytest.raises(ValueError, match="RGB image"):
        haar.detect(np.zeros((10, 10), np.uint8))


def test_crop_is_square_uint8() -> None:
    image = np.zeros((180, 320, 3), np.uint8)
    image[40:100, 100:160] = (200, 30, 30)
    out = faces.crop(image, Box(100, 40, 160, 100), 64)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert np.all(out[8:56, 8:56] == (200, 30, 30))


def _stills(shared_data: Path) -> list[Path]:
    stills = sorted((shared_data / "ravdess-faces").glob("Actor_*.png"))
    if len(stills) != 24:
        pytest.skip("ravdess-faces stills not found under AVE_SHARED_DATA")
    return stills


def _rgb(path: Path) -> np.ndarray:
    import cv2

    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_haar_finds_the_real_ravdess_faces(shared_data: Path) -> None:
    haar = faces.HaarDetector()
    found = 0
    for path in _stills(shared_data):
        image = _rgb(path)
        boxes = haar.detect(image)
        if boxes:
            found += 1
            face = faces.choose_face(boxes, (image.shape[1], image.shape[0]))
            # RAVDESS actors face the camera at the centre of the frame
            assert abs(face.center[0] - image.shape[1] / 2) < image.shape[1] * 0.15
    assert found >= 23


def test_mtcnn_finds_real_ravdess_faces(shared_data: Path) -> None:
    mtcnn = faces.MtcnnDetector()
    stills = _stills(shared_data)
    for path in stills[::8]:  # three actors: MTCNN is ~0.1 s a frame after a slow load
        image = _rgb(path)
        boxes = mtcnn.detect(image)
        assert len(boxes) == 1 and boxes[0].score > 0.95
        assert 0.2 < boxes[0].height / image.shape[0] < 0.9
    assert mtcnn.detect(np.zeros((180, 320, 3), np.uint8)) == []


def test_a_detector_failing_on_one_frame_costs_only_that_frame() -> None:
    class Flaky:
        name = "flaky"

        def __init__(self) -> None:
            self.calls = 0

        def detect(self, rgb: np.ndarray) -> list[Box]:
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("decoder hiccup")
            return [Box(40, 20, 80, 60, 0.9)]

    boxes = faces.track_boxes(np.zeros((7, 90, 160, 3), np.uint8), Flaky(), every=3)
    assert all(b is not None for b in boxes)  # frame 3's failure is bridged by 0 and 6
    assert isinstance(faces.make_detector("haar"), faces.HaarDetector)


class IndexedDetector:
    """A FaceDetector whose answer depends on the frame it is shown: frame ``i`` holds
    ``i`` in its first pixel, and ``boxes_at(i)`` gives what it finds there."""

    name = "indexed"

    def __init__(self, boxes_at) -> None:
        self.boxes_at = boxes_at
        self.seen: list[int] = []

    def detect(self, rgb: np.ndarray) -> list[Box]:
        index = int(rgb[0, 0, 0])
        self.seen.append(index)
        return list(self.boxes_at(index))


def _numbered(n: int) -> np.ndarray:
    frames = np.zeros((n, 90, 160, 3), np.uint8)
    frames[:, 0, 0, 0] = np.arange(n)
    return frames


def test_coarse_to_fine_looks_half_as_often_at_a_still_face() -> None:
    frames = _numbered(61)
    still = IndexedDetector(lambda i: [Box(60, 20, 100, 60, 0.99)])
    keys, found = faces.detect_coarse_to_fine(still, frames, 5, None)
    assert keys == faces.track_keys(61, 10) == sorted(still.seen)  # every 10th and the last
    assert all(f == [Box(60, 20, 100, 60, 0.99)] for f in found)
    # the track over them is the one every 5th frame gives
    coarse = faces.track_from_detections(keys, found, 61, (160, 90), every=5)
    fine = faces.track_faces(frames, IndexedDetector(still.boxes_at), every=5, detect_side=None)
    assert coarse.boxes == fine.boxes and coarse.faces_seen == fine.faces_seen == 1


def test_coarse_to_fine_looks_between_where_the_face_moves_or_is_lost() -> None:
    frames = _numbered(41)

    def moving(i: int) -> list[Box]:
        if 18 <= i <= 22:
            return []  # lost around frame 20
        x = 0 if i < 30 else 3 * (i - 30)  # still, then walking right from frame 30
        return [Box(10 + x, 20, 50 + x, 60, 0.99)]

    detector = IndexedDetector(moving)
    keys, found = faces.detect_coarse_to_fine(detector, frames, 5, None)
    # coarse: 0, 10, 20, 30, 40; between 10-20, 20-30 (lost at 20) and 30-40 (moved
    # 30 px: IoU under STEADY_IOU) the every-5 frames are looked at too; not between 0-10
    assert keys == [0, 10, 15, 20, 25, 30, 35, 40]
    assert found[keys.index(20)] == [] and found[keys.index(35)] == moving(35)
    assert sorted(set(detector.seen)) == keys  # (a miss is also looked at again, rescued: detect_many)


def test_coarse_to_fine_refines_where_the_number_of_faces_changes() -> None:
    frames = _numbered(21)
    main, other = Box(60, 20, 100, 60, 0.99), Box(120, 30, 150, 60, 0.99)
    detector = IndexedDetector(lambda i: [main, other] if i >= 20 else [main])
    keys, _ = faces.detect_coarse_to_fine(detector, frames, 5, None)
    assert keys == [0, 10, 15, 20]
    assert faces.detect_coarse_to_fine(detector, frames[:0], 5, None) == ([], [])
