"""Faces at every size and framing (issue 19): a small face in a large frame, a face
that fills the picture, a face upside down, a face behind a mask.

The unit tests use stand-in detectors and drawn pictures; the end-to-end ones build
their inputs from the real stills and FER2013 faces in ``AVE_SHARED_DATA`` (skipped
without it) and go through ``analyze`` and ``predict --json`` with ``bundles/real``
(MTCNN), as a user would."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.core import face_checks, faces, media, video
from pipeline.core.faces import Box
from pipeline.core.preprocessing import Preprocessing

ROOT = Path(__file__).resolve().parents[1]
FACE = Preprocessing(crop_size=48, color="gray", labels="seven", n_frames=4, crop_margin=0.15)


# --------------------------------------------------------------------------- stand-ins
class SizedDetector:
    """Finds the bright square of a picture only when it is at least ``least`` pixels
    wide in the image it is given (as MTCNN misses faces under 20 px), counting calls."""

    name = "sized"

    def __init__(self, least: int = 20) -> None:
        self.least = least
        self.calls: list[tuple[int, int]] = []

    def detect(self, rgb: np.ndarray) -> list[Box]:
        self.calls.append(rgb.shape[:2])
        mask = rgb[..., 0] > 200
        if not mask.any():
            return []
        ys, xs = np.nonzero(mask)
        box = Box(float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1), 0.99)
        return [box] if box.width >= self.least else []


def _square_frame(width: int, height: int, side: int, at: tuple[int, int]) -> np.ndarray:
    frame = np.full((height, width, 3), 60, np.uint8)
    x, y = at
    frame[y:y + side, x:x + side] = 255
    return frame


def test_a_small_face_in_a_4k_frame_is_found_by_the_finer_pass() -> None:
    """A 128 px "face" (1/30 of 3840) is 11 px at 320: lost by the first pass, found by
    the finer one, its box in the 4K frame's own pixels."""
    frame = _square_frame(3840, 2160, 128, (2600, 1200))
    detector = SizedDetector()
    found = faces.detect_many(detector, [frame], 320)
    assert len(found[0]) == 1
    box = found[0][0]
    assert box.x0 == pytest.approx(2600, abs=8) and box.width == pytest.approx(128, abs=8)
    assert faces.detect_many(SizedDetector(), [frame], 320, rescue=False) == [[]]


def test_the_slower_passes_are_bounded_on_faceless_frames() -> None:
    """Twenty faceless key frames: only RESCUE_PROBE of them try the slower passes."""
    frames = [np.full((2160, 3840, 3), 60, np.uint8)] * 20
    detector = SizedDetector()
    assert faces.detect_many(detector, frames, 320) == [[]] * 20
    first_pass = 20
    per_rescue = 2  # the finer pass and the padded view (no whole-image scorer here)
    assert len(detector.calls) == first_pass + faces.RESCUE_PROBE * per_rescue


def test_frames_are_shown_at_display_size_with_boxes_scaled() -> None:
    """Serving decodes finer frames for the finder; the sample it returns holds them
    shrunk to the display size, boxes alike, crops cut from the fine frames."""
    frames = np.stack([_square_frame(960, 540, 64, (600, 300))] * 4)
    sample = video.sample_from_frames(frames, np.arange(4) / 10, FACE, detector=SizedDetector(), every=1,
                                      display_side=320)
    assert sample.ok and sample.frames.shape[1:3] == (180, 320)
    x0, y0, x1, y1 = sample.boxes[0]
    assert 190 <= x0 <= 205 and 90 <= y0 <= 105 and x1 - x0 == y1 - y0


# --------------------------------------------------------------------------- checks
def test_landmarks_plausible_only_for_an_upright_layout() -> None:
    box = Box(0, 0, 100, 100, 0.99, ((30, 35), (70, 35), (50, 55), (35, 75), (65, 75)))
    assert faces.landmarks_plausible(box)
    flipped = Box(0, 0, 100, 100, 0.99, tuple((x, 100 - y) for x, y in box.keypoints))
    assert not faces.landmarks_plausible(flipped)
    assert not faces.landmarks_plausible(Box(0, 0, 100, 100, 0.99))
    squeezed = Box(0, 0, 100, 100, 0.99, ((48, 35), (52, 35), (50, 55), (35, 75), (65, 75)))
    assert not faces.landmarks_plausible(squeezed)


def test_turned_turns_clockwise() -> None:
    img = np.zeros((2, 3, 3), np.uint8)
    img[0, 0] = 255  # top-left
    assert media.turned(img, 90).shape == (3, 2, 3) and media.turned(img, 90)[0, 1, 0] == 255
    assert media.turned(img, 180)[1, 2, 0] == 255
    assert media.turned(img, 0) is img and media.turned(img, 360) is img
    assert np.array_equal(media.turned(img, 270), np.rot90(img, 1)) and np.array_equal(media.turned(img, -90), np.rot90(img, 1))
    grey = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert np.array_equal(media.turned(grey, 90), np.rot90(grey, -1))


def _drawn_face(size: int = 200) -> tuple[np.ndarray, Box]:
    """A textured drawn face (skin with noise, brows, eyes, nose, open mouth) and its box."""
    rng = np.random.default_rng(3)
    img = np.full((size, size, 3), (70, 90, 80), np.uint8)
    c = size // 2
    cv2.ellipse(img, (c, c), (int(size * 0.32), int(size * 0.42)), 0, 0, 360, (205, 160, 135), -1)
    for dx in (-1, 1):
        cv2.line(img, (c + dx * size // 5, c - size // 5), (c + dx * size // 12, c - size // 6), (60, 40, 30), 3)
        cv2.ellipse(img, (c + dx * size // 7, c - size // 10), (size // 18, size // 30), 0, 0, 360, (250, 250, 250), -1)
        cv2.circle(img, (c + dx * size // 7, c - size // 10), size // 40, (40, 30, 30), -1)
    cv2.line(img, (c, c - size // 20), (c - size // 30, c + size // 12), (150, 105, 90), 2)
    cv2.ellipse(img, (c, c + size // 5), (size // 8, size // 22), 0, 0, 360, (150, 50, 60), -1)
    cv2.line(img, (c - size // 9, c + size // 5), (c + size // 9, c + size // 5), (60, 20, 25), 2)
    img = np.clip(img.astype(int) + rng.integers(-12, 13, img.shape), 0, 255).astype(np.uint8)
    box = Box(c - 0.32 * size, c - 0.36 * size, c + 0.32 * size, c + 0.42 * size, 0.99,
              ((c - size / 7, c - size / 10), (c + size / 7, c - size / 10), (c, c + size / 20),
               (c - size / 8, c + size / 5), (c + size / 8, c + size / 5)))
    return img, box


@pytest.mark.parametrize("colour", [(150, 150, 150), (120, 170, 220)])
def test_a_mask_over_the_lower_face_is_noted(colour) -> None:
    face, box = _drawn_face()
    assert face_checks.hidden_parts(face, box) == []
    masked = face.copy()
    masked[int(box.y0 + 0.55 * box.height):int(box.y1), int(box.x0):int(box.x1)] = colour
    assert face_checks.hidden_parts(masked, box) == [face_checks.LOWER_HIDDEN]
    checks = face_checks.check_faces([masked] * 3, [box] * 3)
    assert checks.notes == [face_checks.LOWER_HIDDEN]


# --------------------------------------------------------------------------- end to end (real faces, MTCNN)
@pytest.fixture(scope="module")
def real_bundle():
    pytest.importorskip("mtcnn")
    from pipeline.serve import bundle as bundle_mod

    path = ROOT / "bundles" / "real"
    if not (path / "bundle.json").is_file():
        pytest.skip("bundles/real is not in this checkout")
    return bundle_mod.load_bundle(path)


@pytest.fixture(scope="module")
def inputs(shared_data: Path, tmp_path_factory, real_bundle) -> dict[str, Path]:
    """Generated inputs from one real RAVDESS still and FER2013 faces."""
    import av

    out = tmp_path_factory.mktemp("framing")
    rgb = cv2.cvtColor(cv2.imread(str(shared_data / "ravdess-faces" / "Actor_01.png")), cv2.COLOR_BGR2RGB)
    box = faces.choose_face(real_bundle.face_detector().detect(rgb), (rgb.shape[1], rgb.shape[0]))
    assert box is not None
    cx, cy = box.center
    side = int(max(box.width, box.height) * 1.5)
    head = rgb[max(0, int(cy - side / 2)):int(cy + side / 2), max(0, int(cx - side / 2)):int(cx + side / 2)]
    big = np.full((2160, 3840, 3), (90, 110, 100), np.uint8)
    big[1200:1380, 2600:2780] = cv2.resize(head, (180, 180), interpolation=cv2.INTER_AREA)  # head 180 px of 3840
    paths: dict[str, Path] = {}

    def save(name: str, img: np.ndarray) -> None:
        paths[name] = out / name
        cv2.imwrite(str(paths[name]), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))

    def clip(name: str, frame: np.ndarray, n: int = 10) -> None:
        paths[name] = out / name
        with av.open(str(paths[name]), "w") as container:
            stream = container.add_stream("libx264", rate=10)
            stream.height, stream.width = frame.shape[:2]
            stream.pix_fmt = "yuv420p"
            for _ in range(n):
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)

    save("small_face_4k.jpg", big)
    clip("small_face_4k.mp4", big)
    tight = rgb[int(box.y0):int(box.y1), int(box.x0):int(box.x1)]
    save("tight.png", cv2.resize(tight, (400, round(400 * tight.shape[0] / tight.shape[1]))))
    save("upside_down.png", np.ascontiguousarray(rgb[::-1, ::-1]))
    clip("upside_down.mp4", np.ascontiguousarray(cv2.resize(rgb, (640, 360))[::-1, ::-1]))
    masked = rgb.copy()
    masked[int(box.y0 + 0.55 * box.height):int(box.y1 + 0.05 * box.height), int(box.x0):int(box.x1)] = (120, 170, 220)
    save("masked.png", masked)
    save("plain.png", rgb)
    for name in ("happy/Training_10019449.jpg", "angry/Training_21134448.jpg", "surprise/Training_33007338.jpg"):
        source = shared_data / "fer2013" / "train" / name
        if source.is_file():
            save(f"fer_{source.stem}.jpg", cv2.cvtColor(cv2.imread(str(source)), cv2.COLOR_BGR2RGB))
    return paths


@pytest.mark.parametrize("name", ["small_face_4k.jpg", "small_face_4k.mp4", "tight.png"])
def test_a_face_at_any_size_is_answered(inputs, real_bundle, name) -> None:
    from pipeline.serve.inference import analyze

    result = analyze(inputs[name], real_bundle)
    assert result.video.ok, (name, result.video.status, result.video.detail)
    assert result.frames_with_face >= 1
    if name.endswith(".mp4"):
        assert result.frames.shape[2] <= 320  # shown at the display size


def test_tight_face_photos_in_the_face_models_own_format_are_answered(inputs, real_bundle) -> None:
    from pipeline.serve.inference import analyze

    fer = [p for n, p in inputs.items() if n.startswith("fer_")]
    if not fer:
        pytest.skip("the FER2013 images are not in the shared data folder")
    for path in fer:
        result = analyze(path, real_bundle)
        assert result.video.ok, (path.name, result.video.status, result.video.detail)


@pytest.mark.parametrize("name", ["upside_down.png", "upside_down.mp4"])
def test_a_face_upside_down_is_turned_upright_and_says_so(inputs, real_bundle, name) -> None:
    from pipeline.serve.inference import analyze

    upright = analyze(inputs["plain.png"], real_bundle)
    result = analyze(inputs[name], real_bundle)
    if result.video.ok:
        assert face_checks.TURNED_NOTE[180] in result.video.notes
        assert result.video.winner[0] == upright.video.winner[0]  # read as the upright face is
    else:  # the other acceptable outcome: an abstention that says why
        assert result.video.status == video.FACE_TURNED


def test_a_masked_face_is_noted_and_never_sure(inputs, real_bundle, capsys) -> None:
    from pipeline.entry.cli import main
    from pipeline.serve.inference import analyze

    plain = analyze(inputs["plain.png"], real_bundle)
    assert face_checks.LOWER_HIDDEN not in plain.video.notes
    result = analyze(inputs["masked.png"], real_bundle)
    assert result.video.ok and face_checks.LOWER_HIDDEN in result.video.notes
    assert result.video.confidence == "not sure" and result.fused.confidence == "not sure"
    assert main(["predict", str(inputs["masked.png"]), "--bundle", str(ROOT / "bundles" / "real"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert face_checks.LOWER_HIDDEN in out["video"]["notes"] and out["video"]["confidence"] == "not sure"
    assert out["fused"]["confidence"] == "not sure"


@pytest.mark.parametrize("answers, expected, looked", [
    ([0, 0, 0, 0, 0], 0, 3),             # three upright of five: no turn can reach a majority
    ([None, None, None, 180, 180], 0, 3),  # undecided counts as upright
    ([180, 180, 180, 0, 0], 180, 3),      # three of five: settled
    ([180, 0, 180, 0, 180], 180, 5),
    ([90, 180, 90, 0, 0], 0, 5),          # 90 could still win until the last
])
def test_the_turn_vote_stops_once_it_is_settled(monkeypatch, answers, expected, looked) -> None:
    """The cascade (up to four passes a frame) runs only until the vote is decided; the
    decision is the one all five frames give, and every frame is still looked at for
    hidden parts."""
    from pipeline.core import face_checks
    from pipeline.core.faces import Box

    asked: list[int] = []

    def upright_turn(crop, classifier=None):
        asked.append(1)
        return answers[len(asked) - 1]

    monkeypatch.setattr(face_checks, "upright_turn", upright_turn)
    seen: list[int] = []
    monkeypatch.setattr(face_checks, "hidden_parts", lambda frame, box: seen.append(1) or [])
    frames = [np.zeros((64, 64, 3), np.uint8)] * 5
    checks = face_checks.check_faces(frames, [Box(10, 10, 50, 50, 0.99)] * 5)
    assert checks.turn == expected and len(asked) == looked and len(seen) == 5
