"""Decode audio and video from any file or bytes a user may bring, with PyAV.

One decoder for every path (training, CLI, dashboard): wav, flac, mp3, ogg, m4a,
mp4, mov, webm, avi. librosa cannot read audio out of video containers here (no
ffmpeg binary), so PyAV does all decoding and librosa only computes features.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Union

import numpy as np

Source = Union[str, os.PathLike, bytes, bytearray, memoryview]

#: Largest file we agree to decode (bytes); beyond it a clear error, not an OOM.
MAX_BYTES = 500 * 1024 * 1024


class MediaError(ValueError):
    """A file that cannot be used, with a one-line reason a person can act on."""


@dataclass(frozen=True)
class MediaInfo:
    """What a container holds. Durations in seconds (0.0 when unknown)."""

    has_audio: bool
    has_video: bool
    duration: float
    audio_rate: int = 0
    video_fps: float = 0.0
    width: int = 0
    height: int = 0
    n_video_frames: int = 0
    rotation: int = 0


def _name(source: Source) -> str:
    return "uploaded bytes" if isinstance(source, (bytes, bytearray, memoryview)) else str(source)


def _open(source: Source):
    """Open a container, turning every failure into a :class:`MediaError`."""
    import av

    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise MediaError("the file is empty (0 bytes)")
        if len(data) > MAX_BYTES:
            raise MediaError(f"the file is too large ({len(data) / 2**20:.0f} MB > {MAX_BYTES // 2**20} MB)")
        handle: object = io.BytesIO(data)
    else:
        path = Path(source)
        if not path.exists():
            raise MediaError(f"file not found: {path}")
        if path.is_dir():
            raise MediaError(f"{path} is a folder, not a media file")
        size = path.stat().st_size
        if size == 0:
            raise MediaError(f"{path.name} is empty (0 bytes)")
        if size > MAX_BYTES:
            raise MediaError(f"{path.name} is too large ({size / 2**20:.0f} MB > {MAX_BYTES // 2**20} MB)")
        handle = str(path)
    try:
        return av.open(handle, mode="r", metadata_errors="ignore")
    except Exception as err:  # PyAV raises many subclasses (InvalidDataError, ...)
        raise MediaError(f"{_name(source)} is not a readable audio or video file ({type(err).__name__})") from err


def _rotation(stream) -> int:
    """Clockwise display rotation of a video stream in degrees (phone videos)."""
    try:
        for side in stream.codec_context.side_data if hasattr(stream.codec_context, "side_data") else []:
            if "DISPLAYMATRIX" in str(side.type).upper():
                return int(round(-side.to_ndarray().view(np.int32)[0] / 65536.0)) % 360
    except Exception:
        pass
    meta = getattr(stream, "metadata", {}) or {}
    try:
        return int(meta.get("rotate", 0)) % 360
    except (TypeError, ValueError):
        return 0


def probe(source: Source) -> MediaInfo:
    """Describe a media file's streams without decoding it."""
    with _open(source) as container:
        audio = container.streams.audio[0] if container.streams.audio else None
        video = container.streams.video[0] if container.streams.video else None
        duration = float(container.duration / 1_000_000) if container.duration else 0.0
        if video is not None:
            fps = float(video.average_rate or video.guessed_rate or 0.0)
            frames = int(video.frames or 0)
            if not duration and video.duration and video.time_base:
                duration = float(video.duration * video.time_base)
            if not frames and duration and fps:
                frames = int(round(duration * fps))
        return MediaInfo(
            has_audio=audio is not None,
            has_video=video is not None,
            duration=duration,
            audio_rate=int(audio.rate) if audio is not None else 0,
            video_fps=fps if video is not None else 0.0,
            width=int(video.codec_context.width) if video is not None else 0,
            height=int(video.codec_context.height) if video is not None else 0,
            n_video_frames=frames if video is not None else 0,
            rotation=_rotation(video) if video is not None else 0,
        )


def load_audio(source: Source, sample_rate: int, *, max_seconds: float | None = None) -> np.ndarray:
    """Decode the first audio stream to mono float32 in [-1, 1] at ``sample_rate`` Hz.

    Stereo is averaged, any input rate is resampled. ``max_seconds`` stops decoding
    early (a bound on memory for very long uploads). Raises :class:`MediaError` with a
    plain reason for empty, corrupt, non-media or audio-less input.
    """
    import av

    with _open(source) as container:
        if not container.streams.audio:
            raise MediaError(f"{_name(source)} has no audio track")
        stream = container.streams.audio[0]
        # Keep the source layout and average channels ourselves (librosa's to_mono
        # convention); FFmpeg's own downmix scales by -3 dB per channel instead.
        resampler = av.AudioResampler(format="fltp", rate=int(sample_rate))
        chunks: list[np.ndarray] = []
        n = 0
        limit = int(max_seconds * sample_rate) if max_seconds else None
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().mean(axis=0)
                    chunks.append(chunk)
                    n += chunk.size
                if limit is not None and n >= limit:
                    break
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().mean(axis=0))
        except av.error.FFmpegError as err:
            if not chunks:
                raise MediaError(f"{_name(source)}: the audio stream cannot be decoded ({err})") from err
    if not chunks:
        raise MediaError(f"{_name(source)}: the audio track holds no samples")
    audio = np.concatenate(chunks).astype(np.float32, copy=False)
    if limit is not None:
        audio = audio[:limit]
    if not np.all(np.isfinite(audio)):
        audio = np.nan_to_num(audio)
    return audio


def _frame_rotation(frame) -> int:
    """Clockwise display rotation from a decoded frame's display matrix (FFmpeg 7 no
    longer exposes it as a ``rotate`` tag; PyAV reports it counter-clockwise)."""
    try:
        return int(round(-float(frame.rotation))) % 360
    except Exception:
        return 0


def _rotate(frame: np.ndarray, rotation: int) -> np.ndarray:
    if rotation == 90:
        return np.ascontiguousarray(np.rot90(frame, k=-1))
    if rotation == 180:
        return np.ascontiguousarray(frame[::-1, ::-1])
    if rotation == 270:
        return np.ascontiguousarray(np.rot90(frame, k=1))
    return frame


def iter_frames(source: Source, *, max_side: int | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(time_s, rgb)`` for every decodable frame of the first video stream.

    Frames are (H, W, 3) uint8 RGB, upright (display rotation applied), optionally
    downscaled so the longer side is at most ``max_side`` pixels. Times come from
    presentation timestamps, so variable frame rates are honoured.
    """
    import av

    with _open(source) as container:
        if not container.streams.video:
            raise MediaError(f"{_name(source)} has no video track")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rotation = _rotation(stream)
        base = stream.time_base or Fraction(1, 1000)
        fps = float(stream.average_rate or stream.guessed_rate or 30.0)
        index = 0
        try:
            for frame in container.decode(stream):
                t = float(frame.pts * base) if frame.pts is not None else index / fps
                width, height = frame.width, frame.height
                if max_side and max(width, height) > max_side:
                    scale = max_side / max(width, height)
                    width = max(2, int(round(width * scale)))
                    height = max(2, int(round(height * scale)))
                    rgb = frame.to_ndarray(format="rgb24", width=width, height=height)
                else:
                    rgb = frame.to_ndarray(format="rgb24")
                index += 1
                yield t, _rotate(rgb, rotation or _frame_rotation(frame))
        except av.error.FFmpegError as err:
            if index == 0:
                raise MediaError(f"{_name(source)}: the video stream cannot be decoded ({err})") from err
