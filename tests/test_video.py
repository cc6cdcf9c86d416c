"""Frame sampling, statuses for bad clips, face cropping from landmarks or a detector,
on small clips written here with PyAV (real faces only when AVE_SHARED_DATA is set)."""
from __future__ import annotations

import wave
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest

from pipeline.core import faces, media, video
from pipeline.core.faces import Box
from pipeline.core.preprocessing import Preprocessing

PARAMS = Preprocessing()


def write_clip(path: Path, frames: Sequence[np.ndarray], *, fps: int = 30, codec: str = "libx264",
               pts_ms: Sequence[int] | None = None, rotation: float | None = None) -> Path:
    """Encode RGB frames; ``pts_ms`` gives variable frame times, ``rotation`` a display
    matrix (counter-clockwise degrees) as phones write it."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        if pts_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = int(pts_ms[i]), Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def numbered_frames(n: int, size: tuple[int, int] = (96, 160)) -> list[np.ndarray]:
    """Frames whose grey level encodes their index (index * 8), for checking sampling."""
    return [np.full((*size, 3), min(255, 8 * i), np.uint8) for i in range(n)]


def frame_index(rgb: np.ndarray) -> int:
    return int(round(float(rgb.mean()) / 8))


class SquareDetector:
    """Finds the red square(s) drawn by :func:`squares_clip`: a stand-in for a face
    detector that implements the protocol for real (thresholding, not presets)."""

    name = "squares"

    def detect(self, rgb: np.ndarray) -> list[Box]:
        import cv2

        mask = ((rgb[..., 0] > 150) & (rgb[..., 1] < 100)).astype(np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        return [Box(float(x), float(y), float(x + w), float(y + h), 0.99)
                for x, y, w, h, area in stats[1:] if area > 20]


def squares_clip(path: Path, n: int = 40, *, second: bool = False) -> Path:
    """A 320x180 grey clip with a red 60-px 'face' drifting right (and, with ``second``,
    a smaller one at the left edge)."""
    frames = []
    for i in range(n):
        rgb = np.full((180, 320, 3), 90, np.uint8)
        x = 120 + i
        rgb[50:110, x:x + 60] = (220, 30, 30)
        if second:
            rgb[70:100, 5:35] = (220, 30, 30)
        frames.append(rgb)
    return write_clip(path, frames)


# --------------------------------------------------------------------------- sampling
def test_thin_evenly_bounds_memory_and_spans_the_clip() -> None:
    stream = ((i / 30, np.full((2, 2, 3), i % 256, np.uint8)) for i in range(1001))
    kept, seen = video.thin_evenly(stream, cap=120)
    times = np.array([t for t, _ in kept])
    assert seen == 1001 and len(kept) <= 121
    assert times[0] == 0 and times[-1] == pytest.approx(1000 / 30)
    steps = np.diff(times[:-1])
    assert np.allclose(steps, steps[0])  # evenly spaced (the last frame is added on top)


def test_pick_even_repeats_short_clips_evenly() -> None:
    assert video.pick_even(np.arange(3.0), 6).tolist() == [0, 0, 1, 1, 2, 2]
    assert video.pick_even(np.arange(90) / 30, 30).tolist() == np.round(np.linspace(0, 89, 30)).astype(int).tolist()
    assert video.pick_even(np.array([5.0]), 4).tolist() == [0, 0, 0, 0]


def test_sample_frames_evenly_in_time(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c.mp4", numbered_frames(31))
    times, frames, decoded = video.sample_frames(clip, 11)
    assert decoded == 31 and frames.shape == (11, 96, 160, 3)
    assert np.allclose(times, np.arange(0, 31, 3) / 30, atol=1e-3)
    assert [frame_index(f) for f in frames] == list(range(0, 31, 3))


def test_variable_frame_rate_is_sampled_by_time(tmp_path: Path) -> None:
    pts = [0, 10, 20, 30, 40, 500, 1000, 1010, 1020, 1500, 2000]
    clip = write_clip(tmp_path / "vfr.mp4", numbered_frames(len(pts)), pts_ms=pts)
    times, frames, _ = video.sample_frames(clip, 5)  # targets 0, 0.5, 1, 1.5, 2 s
    assert np.allclose(times, [0, 0.5, 1.0, 1.5, 2.0], atol=1e-3)
    assert [frame_index(f) for f in frames] == [0, 5, 6, 9, 10]


def test_long_clip_is_downscaled_and_bounded(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "big.mp4", numbered_frames(32, size=(360, 640)))
    times, frames, decoded = video.sample_frames(clip, 4, max_side=320)
    assert frames.shape == (4, 180, 320, 3) and decoded == 32
    short = video.sample_frames(clip, 4, max_seconds=0.5)
    assert short[0][-1] <= 0.5 + 1e-6


def test_rotated_phone_video_is_upright(tmp_path: Path) -> None:
    rgb = np.zeros((32, 64, 3), np.uint8)
    rgb[:, :10] = 255  # a white band on the left of the stored (landscape) picture
    clip = write_clip(tmp_path / "phone.mp4", [rgb] * 3, rotation=-90)  # shown turned 90 deg clockwise
    _, frames, _ = video.sample_frames(clip, 2)
    assert frames.shape == (2, 64, 32, 3)
    assert frames[0, :8].mean() > 200 and frames[0, 16:].mean() < 50  # the band is now on top


@pytest.mark.parametrize("suffix,codec", [(".webm", "libvpx"), (".avi", "mpeg4"), (".mov", "libx264")])
def test_containers(tmp_path: Path, suffix: str, codec: str) -> None:
    clip = write_clip(tmp_path / f"c{suffix}", numbered_frames(12), codec=codec)
    sample = video.clip_frames(clip, PARAMS, full_frame=True)
    assert sample.ok and sample.crops.shape == (30, 64, 64, 3) and sample.n_decoded == 12


# --------------------------------------------------------------------------- statuses
def test_unusable_inputs_give_plain_statuses(tmp_path: Path) -> None:
    wav = tmp_path / "voice.wav"
    with wave.open(str(wav), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(np.zeros(1600, np.int16).tobytes())
    assert video.clip_frames(wav, PARAMS).status == video.NO_VIDEO
    assert video.clip_frames(b"definitely not a video" * 10, PARAMS).status == video.NOT_READABLE
    assert video.clip_frames(tmp_path / "missing.mp4", PARAMS).status == video.NOT_READABLE
    sample = video.clip_frames(b"", PARAMS)
    assert sample.status == video.NOT_READABLE and "empty" in sample.detail
    with pytest.raises(media.MediaError, match="no video track") as err:
        video.featurize(wav, PARAMS)
    assert not isinstance(err.value, video.NoFaceError)


def test_corrupt_streams(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c.mp4", numbered_frames(30))
    data = bytearray(clip.read_bytes())
    # cut short: the index (moov, written last) is lost, the container is unreadable
    cut = video.clip_frames(bytes(data[: len(data) // 2]), PARAMS, full_frame=True)
    assert cut.status == video.NOT_READABLE and cut.crops.shape[0] == 0
    # index intact, compressed pictures zeroed: the container opens, the codec refuses
    start, end = data.find(b"mdat") + 4, data.find(b"moov") - 4
    data[start:end] = bytes(end - start)
    sample = video.clip_frames(bytes(data), PARAMS, full_frame=True)
    assert sample.status == video.UNDECODABLE and "cannot be decoded" in sample.detail
    with pytest.raises(media.MediaError, match="cannot be decoded"):
        video.featurize(bytes(data), PARAMS, full_frame=True)


def test_black_and_noise_clips_have_no_face(tmp_path: Path) -> None:
    haar = faces.HaarDetector()
    black = write_clip(tmp_path / "black.mp4", [np.zeros((180, 320, 3), np.uint8)] * 20)
    rng = np.random.default_rng(3)
    noise = write_clip(tmp_path / "noise.mp4", [rng.integers(0, 256, (180, 320, 3)).astype(np.uint8) for _ in range(20)])
    for clip in (black, noise):
        sample = video.clip_frames(clip, PARAMS, detector=haar)
        assert sample.status == video.NO_FACE and sample.frames_with_face == 0
        assert sample.frames.shape == (30, 180, 320, 3) and sample.boxes == [None] * 30
        assert sample.crops.shape == (0, 64, 64, 3)
    with pytest.raises(video.NoFaceError, match="no face found"):
        video.featurize(black, PARAMS, detector=haar)


# --------------------------------------------------------------------------- cropping
def test_detector_crops_follow_the_main_face(tmp_path: Path) -> None:
    clip = squares_clip(tmp_path / "two.mp4", second=True)
    sample = video.clip_frames(clip, PARAMS, detector=SquareDetector())
    assert sample.ok and sample.frames_with_face == 30 and sample.method == "squares"
    assert sample.crops.shape == (30, 64, 64, 3) and sample.crops.dtype == np.uint8
    for box in sample.boxes:
        assert box[2] - box[0] == box[3] - box[1]  # square
        assert box[0] > 100                        # the big central face, not the edge one
    center = sample.crops[:, 24:40, 24:40].reshape(-1, 3).mean(axis=0)
    assert center[0] > 180 and center[1] < 70       # the crop centre is the red face


def test_short_clip_repeats_frames_and_says_so(tmp_path: Path) -> None:
    clip = squares_clip(tmp_path / "short.mp4", n=8)
    sample = video.clip_frames(clip, PARAMS, detector=SquareDetector(), every=1)
    assert sample.ok and sample.n_decoded == 8 and len(sample.times) == 30
    assert "only 8 frames" in sample.detail
    assert len(np.unique(sample.times)) == 8


def test_landmark_csv_drives_the_crop(tmp_path: Path) -> None:
    # a 640x360 clip: a green square at (400..520, 100..220) in video pixels
    frames = []
    for _ in range(10):
        rgb = np.full((360, 640, 3), 90, np.uint8)
        rgb[100:220, 400:520] = (30, 200, 30)
        frames.append(rgb)
    clip = write_clip(tmp_path / "01-01-01-01-01-01-01.mp4", frames)
    header = ["frame", " timestamp", " confidence", " success"]
    header += [f" x_{i}" for i in range(68)] + [f" y_{i}" for i in range(68)]
    xs = np.linspace(400, 520, 68)
    ys = np.linspace(100, 220, 68)[::-1]
    rows = [",".join(header)]
    rows += [", ".join(map(str, [k + 1, k / 30, 0.98, 1, *xs, *ys])) for k in range(10)]
    csv = tmp_path / "01-01-01-01-01-01.csv"
    csv.write_text("\n".join(rows) + "\n")
    params = Preprocessing(crop_margin=0.0)
    sample = video.clip_frames(clip, params, landmarks_path=csv, detector=SquareDetector())
    assert sample.ok and sample.method == "landmarks" and sample.frames_with_face == 30
    assert sample.boxes[0] == (200, 50, 260, 110)  # halved: frames are 320x180
    assert np.all(np.abs(sample.crops[:, 4:60, 4:60].astype(int) - (30, 200, 30)).max(axis=-1) < 40)
    # an unusable landmark file falls back to the detector and says so
    bad = tmp_path / "bad.csv"
    bad.write_text("nothing useful\n")
    fallback = video.clip_frames(clip, params, landmarks_path=bad, detector=faces.HaarDetector())
    assert fallback.method == "haar" and "landmarks unusable" in fallback.detail


def test_full_frame_and_bytes_input(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c.mp4", numbered_frames(30))
    crops = video.featurize(clip.read_bytes(), PARAMS, full_frame=True)
    assert crops.shape == (30, 64, 64, 3) and crops.dtype == np.uint8
    assert [frame_index(c) for c in crops] == list(range(30))


def test_real_face_clip(tmp_path: Path, shared_data: Path) -> None:
    import cv2

    still = shared_data / "ravdess-faces" / "Actor_05.png"
    if not still.is_file():
        pytest.skip("ravdess-faces stills not found")
    image = cv2.resize(cv2.cvtColor(cv2.imread(str(still)), cv2.COLOR_BGR2RGB), (640, 360))
    frames = []
    for i in range(24):  # slow zoom and pan, like a talking head moving
        zoom, dx = 1 + 0.15 * i / 24, 20 * np.sin(i / 6)
        warp = np.float32([[zoom, 0, dx - (zoom - 1) * 320], [0, zoom, -(zoom - 1) * 180]])
        frames.append(cv2.warpAffine(image, warp, (640, 360)))
    clip = write_clip(tmp_path / "actor.mp4", frames)
    sample = video.clip_frames(clip, PARAMS, detector=faces.HaarDetector())
    assert sample.ok and sample.frames_with_face == 30, sample.detail
    widths = [b[2] - b[0] for b in sample.boxes]
    assert max(widths) / min(widths) < 1.4  # stable box, growing with the zoom only
    centers = [((b[0] + b[2]) / 2) for b in sample.boxes]
    assert all(abs(c - 160) < 40 for c in centers)


def test_a_batch_of_windows_judges_the_turn_once(monkeypatch) -> None:
    """Several windows of one clip: the turn that makes the face upright is judged once
    over their key frames, and a window where no face was found is not searched turned
    when the others showed one upright (each window is searched when none did)."""
    searched: list[int] = []
    real_find_turn = video.find_turn
    monkeypatch.setattr(video, "find_turn", lambda frames, det: searched.append(len(frames)) or real_find_turn(frames, det))

    class FirstHalf:
        name = "first half"

        def __init__(self, until: int) -> None:
            self.until = until

        def detect(self, rgb: np.ndarray) -> list[Box]:
            index = int(rgb[..., 0].max())
            return [Box(40, 20, 100, 80, 0.99)] if index < self.until else []

    frames = np.zeros((60, 96, 160, 3), np.uint8)
    frames[..., 0] = np.arange(60)[:, None, None]  # every pixel says its frame, however turned
    times = np.arange(30) / 10.0
    windows = [(times, frames[:30]), (times + 3.0, frames[30:])]
    out = video.face_samples(windows, PARAMS, detector=FirstHalf(20), every=5)
    assert out[0].ok and out[1].status == video.NO_FACE and searched == []
    out = video.face_samples(windows, PARAMS, detector=FirstHalf(0), every=5)
    assert [s.status for s in out] == [video.NO_FACE] * 2 and searched == [30, 30]


def test_a_turn_judged_before_is_confirmed_on_one_frame(monkeypatch) -> None:
    """A later batch of a clip's windows checks the turn the earlier ones needed on one
    key frame, and judges it afresh (up to five) only when that frame disagrees."""
    from pipeline.core import face_checks

    looked: list[int] = []
    real = face_checks.check_faces

    def counting(frames, boxes, *, max_checked=5, orientation=True):
        if orientation:
            looked.append(max_checked)
        return real(frames, boxes, max_checked=max_checked, orientation=orientation)

    monkeypatch.setattr(face_checks, "check_faces", counting)
    frames = np.zeros((60, 96, 160, 3), np.uint8)  # no cascade fires on black: upright (0)
    times = np.arange(30) / 10.0
    windows = [(times, frames[:30]), (times + 3.0, frames[30:])]
    detector = SquareDetector()
    detector.detect = lambda rgb: [Box(40, 20, 100, 80, 0.99)]
    video.face_samples(windows, PARAMS, detector=detector, every=5, expect_turn=0)
    assert looked == [1]  # confirmed
    looked.clear()
    video.face_samples(windows, PARAMS, detector=detector, every=5, expect_turn=180)
    assert looked == [1, 5]  # disagreed: judged again
    looked.clear()
    video.face_samples(windows, PARAMS, detector=detector, every=5)
    assert looked == [5]
