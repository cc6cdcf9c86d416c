"""Recording camera + microphone from a WebRTC session into one mp4 that keeps the pictures.

aiortc's :class:`~aiortc.contrib.media.MediaRecorder` sizes the video stream from the
first picture it receives, and PyAV opens every stream's encoder when the first packet
is written. When the microphone's first packet reaches the file before the camera's
first picture (the usual order on a busy machine: the browser starts its video encoder
last), the video encoder opens without a size, the first picture fails with "Cannot
change width after codec is open", and the recording holds sound only.
:class:`PictureFirstRecorder` wraps that recorder and holds the sound back until the
first picture has arrived (or ``wait_s`` seconds after the first sound, so a camera
that never sends still leaves a sound recording), which makes the picture's size known
before anything is written. Nothing else changes: the same encoders (H.264, AAC), the
same container, frames timed as they came.

:func:`finished_recording` waits for the file to be closed and readable;
:class:`RecordingFile` names a session's recording (nothing is made on disk until the
recorder starts) and removes it; :func:`prune_recordings` removes recordings left by
sessions long gone (a server killed before it could remove them).
"""
from __future__ import annotations

import secrets
import time
import weakref
from pathlib import Path
from typing import Any

#: Recordings older than this (seconds) belong to sessions long gone and are removed
#: when a session starts recording; a session's own file is rewritten by each take.
RECORDING_MAX_AGE_S = 3600.0


class _PictureGate:
    """Opens at the first picture, or ``wait_s`` seconds after the first sound."""

    def __init__(self, wait_s: float) -> None:
        self.wait_s = float(wait_s)
        self.opened = False
        self._first_sound: float | None = None

    def picture(self) -> None:
        self.opened = True

    def lets_sound_through(self) -> bool:
        if self.opened:
            return True
        now = time.monotonic()
        if self._first_sound is None:
            self._first_sound = now
        if now - self._first_sound >= self.wait_s:
            self.opened = True
        return self.opened


def _gated_track(source: Any, gate: _PictureGate) -> Any:
    """``source`` seen through ``gate``: a video track opens it with its first frame; an
    audio track drops its frames until it is open."""
    from aiortc import MediaStreamTrack

    class GatedTrack(MediaStreamTrack):
        kind = source.kind

        async def recv(self) -> Any:
            while True:
                frame = await source.recv()
                if self.kind == "video":
                    gate.picture()
                    return frame
                if gate.lets_sound_through():
                    return frame

    return GatedTrack()


class PictureFirstRecorder:
    """A :class:`~aiortc.contrib.media.MediaRecorder` (same ``addTrack`` / ``start`` /
    ``stop``) into ``path`` (mp4) that writes no sound before the first picture, so the
    video stream is never lost (module docstring). A recording with no video track
    added records the sound as it comes."""

    def __init__(self, path: str, *, format: str = "mp4", wait_s: float = 3.0) -> None:
        from aiortc.contrib.media import MediaRecorder

        self.path = path
        self._recorder = MediaRecorder(path, format=format)
        self._gate = _PictureGate(wait_s)
        self._kinds: list[str] = []

    def addTrack(self, track: Any) -> None:  # noqa: N802 (aiortc's name)
        self._kinds.append(track.kind)
        self._recorder.addTrack(_gated_track(track, self._gate))

    async def start(self) -> None:
        if "video" not in self._kinds:
            self._gate.picture()  # nothing to wait for
        await self._recorder.start()

    async def stop(self) -> None:
        await self._recorder.stop()


def finished_recording(path: Path, wait_s: float = 5.0) -> tuple[bytes, Any] | None:
    """The recording's bytes and :class:`pipeline.core.media.MediaInfo` once the recorder has
    finished writing it; None when it does not open as media within ``wait_s`` seconds
    (STOP reruns the page while the recorder may still be closing the mp4)."""
    from pipeline.core.media import MediaError, probe

    deadline = time.monotonic() + wait_s
    while True:
        try:
            info = probe(path)
            return path.read_bytes(), info
        except MediaError:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.25)


def remove_recording(path: Path) -> None:
    """Remove a recording file if it is there (errors other than its absence are logged
    by the caller's logger: a file that cannot be removed is pruned later)."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


class RecordingFile:
    """Where one session's camera recording goes: ``ave-recording-<random>.mp4`` in
    ``folder`` (an unguessable name, 64 random bits), not created here (the recorder
    makes it when the person presses START). :meth:`remove` deletes it; so does the
    end of the Python process (``weakref.finalize`` at exit)."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / f"ave-recording-{secrets.token_hex(8)}.mp4"
        self._finalizer = weakref.finalize(self, remove_recording, self.path)

    def remove(self) -> None:
        remove_recording(self.path)

    def take(self, wait_s: float = 5.0) -> tuple[bytes, Any] | None:
        """The finished recording (:func:`finished_recording`) read into memory, and the
        file removed at once, readable or not: None when it never became readable."""
        try:
            return finished_recording(self.path, wait_s=wait_s)
        finally:
            self.remove()


def prune_recordings(folder: Path, max_age_s: float = RECORDING_MAX_AGE_S, now: float | None = None) -> int:
    """Remove ``ave-recording-*.mp4`` files in ``folder`` not written for ``max_age_s``
    seconds; returns how many went. Files that vanish or cannot be removed are skipped."""
    now = time.time() if now is None else now
    removed = 0
    for old in folder.glob("ave-recording-*.mp4"):
        try:
            if now - old.stat().st_mtime > max_age_s:
                old.unlink()
                removed += 1
        except OSError:
            continue
    return removed
