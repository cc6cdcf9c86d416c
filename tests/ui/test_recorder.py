"""The camera recorder keeps the pictures when the sound arrives first (aiortc's
MediaRecorder alone then writes sound only), and keeps the sound when no picture ever
comes. Fake WebRTC tracks play generated frames; the mp4 is read back with PyAV."""
from __future__ import annotations

import asyncio
import fractions
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("aiortc")


def _tracks(video_delay_s: float | None, seconds: float = 1.0):
    """A microphone track sending 20 ms of 48 kHz sound every 20 ms from the start, and a camera track
    (224 x 398, 30 fps) whose first picture comes ``video_delay_s`` later (None: no camera)."""
    import av
    from aiortc import MediaStreamTrack
    from aiortc.mediastreams import MediaStreamError

    class Microphone(MediaStreamTrack):
        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self.n = 0

        async def recv(self):
            if self.n * 0.02 >= seconds + (video_delay_s or 0.0):
                raise MediaStreamError
            await asyncio.sleep(0.02)
            tone = (3000 * np.sin(np.arange(960) * 0.05)).astype(np.int16)[None]
            frame = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 48000, self.n * 960, fractions.Fraction(1, 48000)
            self.n += 1
            return frame

    class Camera(MediaStreamTrack):
        kind = "video"

        def __init__(self) -> None:
            super().__init__()
            self.n = 0

        async def recv(self):
            if self.n == 0:
                await asyncio.sleep(video_delay_s)
            if self.n >= int(30 * seconds):
                raise MediaStreamError
            await asyncio.sleep(1 / 30)
            picture = np.full((224, 398, 3), 40 + self.n, np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = self.n * 3000, fractions.Fraction(1, 90000)
            self.n += 1
            return frame

    return [Microphone()] + ([Camera()] if video_delay_s is not None else [])


def _record(path: Path, tracks, wait_s: float = 3.0) -> dict[str, int]:
    import av

    from dashboard.recorder import PictureFirstRecorder

    async def run() -> None:
        recorder = PictureFirstRecorder(str(path), wait_s=wait_s)
        for track in tracks:
            recorder.addTrack(track)
        await recorder.start()
        await asyncio.sleep(1.6)
        await recorder.stop()

    asyncio.run(run())
    counts: dict[str, int] = {}
    with av.open(str(path)) as container:
        for packet in container.demux():  # one pass over the file
            if packet.size and packet.stream.type in ("audio", "video"):
                counts[packet.stream.type] = counts.get(packet.stream.type, 0) + 1
    return counts


def test_pictures_are_kept_when_the_sound_comes_first(tmp_path: Path) -> None:
    counts = _record(tmp_path / "late_camera.mp4", _tracks(video_delay_s=0.4))
    assert counts.get("video", 0) >= 10, counts  # a plain MediaRecorder writes no video stream here
    assert counts.get("audio", 0) >= 10, counts


def test_the_sound_is_kept_when_no_picture_ever_comes(tmp_path: Path) -> None:
    counts = _record(tmp_path / "no_camera.mp4", _tracks(video_delay_s=None), wait_s=0.2)
    assert counts.get("audio", 0) >= 10 and "video" not in counts, counts
