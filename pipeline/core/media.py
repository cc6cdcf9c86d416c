"""Decode audio and video from any file or bytes a user may bring, with PyAV.

One decoder for every path (training, CLI, dashboard): every extension of
:data:`ACCEPTED_EXTENSIONS` (the one list the uploader, the CLI help and the docs use).
librosa cannot read audio out of video containers here (no ffmpeg binary), so PyAV does
all decoding and librosa only computes features.

Two things a file can hold that are not what they seem: a picture attached to an audio
file (cover art, stream disposition ``attached_pic``) and a video track holding a single
still frame. Neither is a face on camera, so neither counts as video here
(:func:`probe`, :func:`iter_frames`); :attr:`MediaInfo.still_picture` says one was there.

The prediction path decodes a clip once: :func:`decode` opens the container one time and
returns one :class:`Media` (facts, the waveform at the rate the audio model needs, what
the video decode saw), while the frames stream into a :class:`FrameSink` that converts
and keeps only the frames it asks for (bounded memory, whatever the clip's length).
"""
from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, Protocol, Union

import numpy as np

log = logging.getLogger(__name__)

Source = Union[str, os.PathLike, bytes, bytearray, memoryview]

#: Largest file we agree to decode (bytes); beyond it a clear error, not an OOM.
MAX_BYTES = 500 * 1024 * 1024
#: Largest still image decoded (pixels): a 50-megapixel phone photo takes ~0.15 GB as
#: RGB; a small PNG can claim 16,000 x 16,000 pixels (0.77 GB decoded, 1.8 GB and 25 s
#: at peak), so the size the file's header states is checked before decoding.
MAX_PIXELS = 50_000_000


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
    #: The file holds a picture that is not video: cover art (``attached_pic``) or a
    #: video track of a single still frame. ``has_video`` is False for such a file.
    still_picture: bool = False
    #: Seconds of the video stream itself (frames / rate, else the stream's duration,
    #: else ``duration``); 0.0 without video. Sound may run longer than the pictures.
    video_duration: float = 0.0


def printable(text: str) -> str:
    """``text`` as one printable line: a file name holding a newline, tab or other
    control character is shown with Python's escapes (``a\\nb.wav``), so a message or
    a report line naming it cannot be split or garbled."""
    return text if text.isprintable() else repr(text)[1:-1]


#: How messages name a file given as bytes (callers that know its name put it in place).
UPLOADED = "uploaded bytes"


def _name(source: Source) -> str:
    return UPLOADED if isinstance(source, (bytes, bytearray, memoryview)) else printable(str(source))


def check_path(path: str | os.PathLike[str]) -> Path:
    """``path`` if it names a regular file this process may read; else
    :class:`MediaError` with the reason: not found, a folder, not a regular file (a
    named pipe, socket or device, which would block or never end), or no permission."""
    import stat

    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as err:  # (a dangling link or a loop of links too)
        raise MediaError(f"{_name(path)}: no such file") from err
    except OSError as err:  # a folder on the way that may not be entered, a loop of links
        raise MediaError(f"{_name(path)} cannot be read ({err.strerror or type(err).__name__})") from err
    if stat.S_ISDIR(mode):
        raise MediaError(f"{_name(path)} is a folder, not a file: name one clip or photo in it")
    if not stat.S_ISREG(mode):
        raise MediaError(f"{_name(path)} is not a regular file (a named pipe, socket or device): name a saved clip or photo")
    if not os.access(path, os.R_OK):
        raise MediaError(f"{_name(path)} cannot be read: permission denied")
    return path


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
        path = check_path(source)
        size = path.stat().st_size
        if size == 0:
            raise MediaError(f"{printable(path.name)} is empty (0 bytes)")
        if size > MAX_BYTES:
            raise MediaError(f"{printable(path.name)} is too large ({size / 2**20:.0f} MB > {MAX_BYTES // 2**20} MB)")
        handle = str(path)
    try:
        return av.open(handle, mode="r", metadata_errors="ignore")
    except Exception as err:  # PyAV raises many subclasses (InvalidDataError, ...)
        cut = cut_short_reason(source)
        if cut:
            raise MediaError(f"{_name(source)}: the file is incomplete (cut short): {cut}") from err
        log.debug("PyAV cannot open %s: %r", _name(source), err)
        raise MediaError(f"{_name(source)} is not a readable audio or video file") from err


#: Top-level box types of an ISO base media file (MP4, M4A, MOV, 3GP; ISO/IEC 14496-12
#: section 4.2 and QuickTime's atoms): a file opening with one of them is read as boxes.
_ISO_BOXES: frozenset[bytes] = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot",
                                          b"uuid", b"styp", b"sidx", b"moof", b"meta", b"pdin"})


def _head_and_size(source: Source, n: int) -> tuple[bytes, int, Callable[[int, int], bytes]]:
    """The first ``n`` bytes of ``source``, its size, and a reader ``read(offset, k)``."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return data[:n], len(data), lambda offset, k: data[offset:offset + k]
    path = Path(source)

    def read(offset: int, k: int) -> bytes:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read(k)

    return read(0, n), path.stat().st_size, read


def cut_short_reason(source: Source) -> str:
    """Why an ISO base media file (MP4, M4A, MOV, 3GP) is incomplete, or ``""``.

    Walks the top-level boxes (size, type: ISO/IEC 14496-12 section 4.2) from the
    start: a box running past the end of the file, or a file whose boxes end without
    the index (``moov``), was cut short (a copy or upload stopped early; a camera
    writes the index last). Reads only the 8 or 16 bytes of each box header. Any other
    kind of file, or one that cannot be read, gives ``""``."""
    try:
        head, size, read = _head_and_size(source, 16)
    except OSError:
        return ""
    if len(head) < 8 or head[4:8] not in _ISO_BOXES:
        return ""
    offset, seen = 0, set()
    for _ in range(100_000):  # a bound on the walk, far above any real file's box count
        if offset == size:
            break
        header = read(offset, 16)
        if len(header) < 8:
            return f"a box header is cut off at byte {offset} of {size}"
        box_size, kind = int.from_bytes(header[:4], "big"), header[4:8]
        if box_size == 1:  # 64-bit size follows the type
            if len(header) < 16:
                return f"a box header is cut off at byte {offset} of {size}"
            box_size = int.from_bytes(header[8:16], "big")
        elif box_size == 0:  # the last box runs to the end of the file
            box_size = size - offset
        if box_size < 8 or not _is_chunk_id(kind):
            return ""  # not a box structure we understand (damaged inside): let the decoder judge
        seen.add(kind)
        if offset + box_size > size:
            where = "inside its index (moov)" if kind == b"moov" else f"inside its {kind.decode('latin-1')!r} box"
            missing = "" if b"moov" in seen else " and the index (moov) is missing"
            return f"it ends at byte {size}, {where}{missing}"
        offset += box_size
    if b"moov" not in seen and b"moof" not in seen:
        return "the index (moov) that a recording writes last is missing"
    return ""


#: Chunks a WAV file may carry after its sound (RIFF metadata: LIST INFO, ID3 tags,
#: Broadcast WAVE 'bext' (EBU Tech 3285), iXML, cue points, sampler and padding chunks).
_WAV_TRAILERS: tuple[bytes, ...] = (b"LIST", b"JUNK", b"id3 ", b"ID3 ", b"bext", b"iXML", b"cue ", b"smpl",
                                    b"inst", b"PAD ", b"FLLR", b"_PMX", b"axml", b"cart", b"fact", b"PEAK")
#: Bytes at the end of a WAV file searched for the metadata that follows its sound.
WAV_TAIL_BYTES: int = 1 << 20
#: Declared 'data' sizes that mean "unknown": 0 and 0xFFFFFFFF, what recorders and
#: streaming writers put before they know the length (and leave when they stop early).
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


def _is_chunk_id(kind: bytes) -> bool:
    """Whether ``kind`` is a well-formed 4-character chunk or box type (printable ASCII:
    RIFF chunks and ISO boxes alike)."""
    return len(kind) == 4 and all(0x20 <= c <= 0x7E for c in kind)


def _riff_chunks(read: Callable[[int, int], bytes], offset: int, size: int) -> Iterator[tuple[int, bytes, int]]:
    """``(offset, id, body length)`` of consecutive RIFF chunks from ``offset`` (a
    4-character ID, a little-endian 32-bit length, the body padded to an even length),
    stopping at a header that is cut off or not a chunk's, or after 64 chunks."""
    for _ in range(64):
        header = read(offset, 8)
        if len(header) < 8 or not _is_chunk_id(header[:4]):
            return
        body = int.from_bytes(header[4:8], "little")
        yield offset, header[:4], body
        offset += 8 + body + body % 2
        if offset >= size:
            return


def _chunks_reach_end(read: Callable[[int, int], bytes], offset: int, size: int) -> bool:
    """Whether RIFF chunks (:func:`_riff_chunks`) run from ``offset`` exactly to the end
    of a file of ``size`` bytes (the last one's pad byte may be missing)."""
    return any(at + 8 + body in (size, size - body % 2) for at, _, body in _riff_chunks(read, offset, size))


def wav_sound_seconds(source: Source) -> float | None:
    """The length (seconds) of the sound in a WAV file (RIFF/WAVE) whose header does not
    give it, when metadata chunks follow the sound; None otherwise (not a WAV file, a
    header that gives the length, nothing recognisable after the sound).

    A WAV header states the byte length of its 'data' chunk; recorders and streaming
    writers put 0 or 0xFFFFFFFF there until they know it, and leave it so when they stop
    early or write to a pipe. FFmpeg then reads to the end of the file and decodes any
    metadata written after the sound (a LIST, ID3 or bext chunk) as noise. Here the last
    :data:`WAV_TAIL_BYTES` are searched for the earliest chunk of :data:`_WAV_TRAILERS`,
    on a sample-frame boundary, from which well-formed chunks run exactly to the end of
    the file (Microsoft/IBM RIFF chunks; EBU Tech 3285): the sound ends there. Reads the
    header and the tail only."""
    try:
        head, size, read = _head_and_size(source, 12)
    except OSError:
        return None
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    block_align, byte_rate, data_start, declared = 0, 0, 0, 0
    for offset, kind, body in _riff_chunks(read, 12, size):  # fmt, LIST, bext, ... then data
        if kind == b"fmt ":
            fmt = read(offset + 8, 16)
            if len(fmt) < 16:
                return None
            byte_rate = int.from_bytes(fmt[8:12], "little")
            block_align = int.from_bytes(fmt[12:14], "little")
        elif kind == b"data":
            data_start, declared = offset + 8, body
            break
    if not data_start or byte_rate <= 0 or block_align <= 0:
        return None
    if declared not in _UNKNOWN_SIZES and data_start + declared <= size:
        return None  # the header gives the length: FFmpeg stops there
    tail_start = max(data_start, size - WAV_TAIL_BYTES)
    tail = read(tail_start, size - tail_start)
    ends = []
    for kind in _WAV_TRAILERS:
        at = tail.find(kind)
        while at >= 0:
            where = tail_start + at
            if (where - data_start) % block_align == 0 and _chunks_reach_end(read, where, size):
                ends.append(where)
                break
            at = tail.find(kind, at + 1)
    return (min(ends) - data_start) / byte_rate if ends else None


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


def _is_picture(stream) -> bool:
    """True for a video stream that is an attached picture (cover art) or flagged as
    still images: a picture stored beside the sound, not footage of anyone."""
    try:
        from av.stream import Disposition

        flags = stream.disposition
        return bool(flags & Disposition.attached_pic) or bool(flags & Disposition.still_image)
    except Exception:  # an older PyAV without dispositions: nothing to exclude
        return False


def _video_stream(container):
    """The first video stream that is footage (not a picture), or None."""
    return next((s for s in container.streams.video if not _is_picture(s)), None)


def probe(source: Source) -> MediaInfo:
    """Describe a media file's streams without decoding it.

    Attached pictures (cover art) are not video; nor is a video track the container
    says holds a single frame. Both set ``still_picture`` and leave ``has_video`` False.
    """
    with _open(source) as container:
        return _describe(container)


#: Packets :func:`check_input` reads looking for one decodable frame before it calls
#: the file unreadable (a few seconds of any stream; a bound on the work).
CHECK_PACKETS: int = 200


def check_input(source: Source, name: str | None = None) -> MediaInfo | None:
    """Refuse at once, before any model loads, what cannot be analysed; cheap (headers
    and one decoded frame). Returns the container's :class:`MediaInfo`, or None for a
    still image (:func:`is_image`; ``name`` is the upload's file name, for its extension).

    Raises :class:`MediaError` with a plain reason: a missing path or a folder, an empty
    or oversized file, an MP4/M4A/MOV cut short before its index ("the file is
    incomplete (cut short)", :func:`cut_short_reason`), a file that is not audio, video
    or an image, one with neither sound nor pictures, or one whose first
    :data:`CHECK_PACKETS` packets yield no frame.
    """
    import av

    if is_image(source, name):
        load_image(source)
        return None
    label = name or _name(source)
    with _open(source) as container:
        info = _describe(container)
        if not (info.has_audio or info.has_video or container.streams.video):
            raise MediaError(f"{label} holds neither an audio nor a video track")
        # (a still picture alone is judged by the analysis, which says what it is)
        stream = container.streams.audio[0] if info.has_audio else (_video_stream(container)
                                                                     or container.streams.video[0])
        kind = stream.type  # read now: the stream object must not be touched once the file is closed
        if kind == "audio":
            _check_stream(stream, label)
        error: Exception | None = None
        carried = 0  # packets with data (demux ends with empty ones that flush the decoder)
        try:
            for i, packet in enumerate(container.demux(stream)):
                if i >= CHECK_PACKETS:
                    break
                carried += packet.size > 0
                try:
                    if packet.decode():  # frames are only counted: nothing converted here
                        return info
                except av.error.FFmpegError as err:  # one bad packet: try the next
                    error = err
            else:  # every packet read: the decoder may still hold frames (B-frame delay)
                try:
                    if stream.codec_context.decode(None):
                        return info
                except av.error.FFmpegError as err:
                    error = err
        except av.error.FFmpegError as err:  # the container itself cannot be read on
            error = err
    if not carried:
        raise MediaError(f"{label}: its {kind} track is empty (no samples or frames at all)")
    why = f" ({error})" if error is not None else ""
    raise MediaError(f"{label}: no {kind} frame decodes from its first {CHECK_PACKETS} packets{why} "
                     "(a damaged file, or not audio or video)")


def _describe(container) -> MediaInfo:
    """:class:`MediaInfo` of an open container (reads headers only)."""
    audio = container.streams.audio[0] if container.streams.audio else None
    video = _video_stream(container)
    still = len(container.streams.video) > 0 and video is None
    if video is not None and int(video.frames or 0) == 1:
        video, still = None, True  # one coded frame: a still picture, not a moving face
    duration = float(container.duration / 1_000_000) if container.duration else 0.0
    fps, frames, video_duration = 0.0, 0, 0.0
    if video is not None:
        fps = float(video.average_rate or video.guessed_rate or 0.0)
        frames = int(video.frames or 0)
        stream_duration = float(video.duration * video.time_base) if video.duration and video.time_base else 0.0
        if not duration:
            duration = stream_duration
        if not frames and duration and fps:
            frames = int(round(duration * fps))
        video_duration = (frames / fps if frames and fps else 0.0) or stream_duration or duration
    return MediaInfo(
        has_audio=audio is not None,
        has_video=video is not None,
        duration=duration,
        audio_rate=int(audio.rate) if audio is not None else 0,
        video_fps=fps,
        width=int(video.codec_context.width) if video is not None else 0,
        height=int(video.codec_context.height) if video is not None else 0,
        n_video_frames=frames,
        rotation=_rotation(video) if video is not None else 0,
        still_picture=still,
        video_duration=video_duration,
    )


#: A downmix that keeps less than this fraction of its channels' mean energy has
#: cancelled the signal (phase-inverted wiring, some stereo microphones): the channel
#: with the most energy is used alone instead. 0.1 = more than 90% of the energy lost;
#: two independent channels lose at most half of it, so only cancellation gets here.
DOWNMIX_KEEP_MIN: float = 0.1

#: A channel whose speech-band energy is more than this many dB below the strongest
#: channel's carries no voice worth hearing: it is left out of the mix, so a voice in
#: 2 of 6 channels is not diluted by the silent 4 (20 log10(2/6) = -9.5 dB).
DOWNMIX_DROP_DB: float = 20.0

#: Band (Hz) whose energy says which channels hold the voice: the telephone band
#: widened to the first formants' low end (ITU-T G.712 passes 300-3400 Hz), so mains
#: hum and rumble below and hiss above do not count as voice.
SPEECH_BAND_HZ: tuple[float, float] = (100.0, 4000.0)

#: Longest stretch (s) measured for the channel energies; longer sound is measured on
#: this many one-second blocks spread evenly over it (a bound on the work, not on
#: the result: the mix itself uses every sample).
ENERGY_BLOCKS: int = 120

#: Level (fraction of full scale) at or above which a sample counts as clipped, and the
#: share of clipped samples above which the sound is called clipped. Not one sample of
#: 240 RAVDESS takes (every fourth of the 960) reaches it; a recording driven 32 dB too
#: hot has 8% of its samples there.
CLIPPED_LEVEL: float = 0.98
CLIPPED_FRACTION: float = 0.002
#: Largest sample magnitude read as it is. Float files can hold any finite value; past
#: this (80 dB above full scale) the sound is scaled to a peak of 1, a plain gain that no
#: feature sees (the speech level is normalised), before squares and spectra could
#: overflow float32 (a float WAV of speech x 1e30 gave MFCCs of inf and NaN).
MAX_PEAK: float = 1e4


def clipped_fraction(channels: np.ndarray) -> float:
    """Share of samples (all channels) at or above :data:`CLIPPED_LEVEL` of full scale
    (float samples, full scale 1.0). Float formats may hold samples beyond full scale
    without clipping them: then the level is taken relative to the loudest sample, so
    only a flattened top counts. 0.0 for an empty array."""
    magnitude = np.abs(np.asarray(channels))
    if not magnitude.size:
        return 0.0
    return float(np.mean(magnitude >= CLIPPED_LEVEL * max(float(magnitude.max()), 1.0)))


def channel_speech_energy(channels: np.ndarray, sample_rate: int | None = None) -> np.ndarray:
    """Mean power of each row of ``(n_channels, n)`` float samples in the speech band
    (:data:`SPEECH_BAND_HZ`, a 4th-order Butterworth band-pass, as SOS sections), shape
    ``(n_channels,)``. Without ``sample_rate`` (or a rate too low for the band) it is the
    variance about each channel's mean: a DC offset never counts as sound. Sound longer
    than :data:`ENERGY_BLOCKS` seconds is measured on that many evenly spread 1 s blocks.
    """
    channels = np.asarray(channels, dtype=np.float32)
    if channels.ndim != 2 or channels.shape[1] == 0:
        raise ValueError(f"expected (n_channels, n_samples) samples, got shape {channels.shape}")
    if sample_rate and channels.shape[1] > ENERGY_BLOCKS * sample_rate:
        starts = np.linspace(0, channels.shape[1] - sample_rate, ENERGY_BLOCKS).astype(int)
        channels = np.concatenate([channels[:, s:s + sample_rate] for s in starts], axis=1)
    low, high = SPEECH_BAND_HZ
    if not sample_rate or high >= sample_rate / 2 or channels.shape[1] < 64:
        return channels.astype(np.float64).var(axis=1)
    from scipy.signal import butter, sosfilt

    sos = butter(4, [low, high], btype="bandpass", fs=float(sample_rate), output="sos")
    band = sosfilt(sos, channels - channels.mean(axis=1, keepdims=True), axis=1)
    return np.mean(np.square(band, dtype=np.float64), axis=1)


def _channel_list(indices: np.ndarray) -> str:
    """1-based channel numbers in words: ``"1 and 2"``, ``"1, 3 and 4"``."""
    names = [str(int(i) + 1) for i in indices]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def downmix(channels: np.ndarray, sample_rate: int | None = None) -> tuple[np.ndarray, str]:
    """Mono from ``(n_channels, n)`` float samples, and a note when it had to choose.

    The channels that carry the voice are averaged (librosa's ``to_mono`` convention
    over them): a channel whose speech-band energy (:func:`channel_speech_energy`) is
    more than :data:`DOWNMIX_DROP_DB` below the strongest channel's is left out, so a
    voice recorded on 2 of 6 channels keeps its level, and the note says which were
    used. If the average of the kept channels keeps less than :data:`DOWNMIX_KEEP_MIN`
    of their mean energy (energy about each channel's mean, so a DC offset neither hides
    nor fakes cancellation), they cancel each other: the most energetic channel is
    returned alone, the same signal as that channel recorded on its own, and the note
    says so. ``(n,)`` input is returned as is.
    """
    channels = np.asarray(channels)
    if channels.ndim == 1:
        return channels, ""
    if channels.shape[0] == 1:
        return channels[0], ""
    n_channels = channels.shape[0]
    speech = channel_speech_energy(channels, sample_rate)
    if float(speech.max()) <= 1e-12:  # (near) digital silence: nothing to choose
        return channels.mean(axis=0), ""
    keep = np.flatnonzero(speech >= speech.max() * 10.0 ** (-DOWNMIX_DROP_DB / 10.0))
    note = ""
    if len(keep) < n_channels:
        channels = channels[keep]
        note = (f"the voice is in channel{'s' if len(keep) > 1 else ''} {_channel_list(keep)} of the "
                f"{n_channels} sound channels; the other {n_channels - len(keep)}, near silent, were left out "
                "of the mix")
    if len(keep) == 1:
        return channels[0], note
    mono = channels.mean(axis=0)
    energy = channels.astype(np.float64).var(axis=1)
    mean_energy = float(energy.mean())
    if mean_energy <= 1e-12:
        return mono, note
    kept = float(np.var(mono, dtype=np.float64)) / mean_energy
    if kept >= DOWNMIX_KEEP_MIN:
        return mono, note
    best = int(np.argmax(energy))
    note = (f"the {len(keep)} sound channels cancel each other when mixed ({100 * (1 - kept):.0f}% "
            f"of their energy lost, as with phase-inverted wiring): channel {int(keep[best]) + 1} was analysed alone")
    return channels[best], note


def load_audio(source: Source, sample_rate: int, *, max_seconds: float | None = None,
               notes: list[str] | None = None) -> np.ndarray:
    """Decode the first audio stream to mono float32 in [-1, 1] at ``sample_rate`` Hz.

    Any input rate is resampled; channels are mixed by :func:`downmix` (the average,
    or the strongest channel when the average cancels them out). The result then has
    its DC offset and sub-audio drift removed (:func:`pipeline.core.audio.remove_drift`):
    this is the one place every file's sound passes (training, CLI, dashboard; the
    prediction path reaches it through :func:`decode`), so the silence checks and every
    feature see the sound, not the offset of a cheap converter. ``max_seconds`` stops
    decoding early (a bound on memory for very long uploads). ``notes``, when given,
    receives a plain sentence for anything the decoder decided on the user's behalf (a
    channel chosen). Raises :class:`MediaError` with a plain reason for empty, corrupt,
    non-media or audio-less input.
    """
    with _open(source) as container:
        sound_s = wav_sound_seconds(source) if _is_wav(container) else None
        return _read_audio(container, _name(source), sample_rate, _sooner(max_seconds, sound_s), notes)


def _is_wav(container) -> bool:
    """Whether FFmpeg opened the file as WAV (only then is its header read again, by
    :func:`wav_sound_seconds`)."""
    return "wav" in str(getattr(getattr(container, "format", None), "name", "")).split(",")


def _sooner(max_seconds: float | None, sound_seconds: float | None) -> float | None:
    """Where to stop reading the sound: ``max_seconds``, or the end of the sound of a WAV
    file whose header does not say (:func:`wav_sound_seconds`) when that comes first."""
    if sound_seconds is None:
        return max_seconds
    return sound_seconds if max_seconds is None else min(max_seconds, sound_seconds)


#: Most sound channels accepted: FFmpeg's resampler mixes at most 64 (``SWR_CH_MAX``);
#: the widest common layouts are 22.2 (24) and Ambisonics of 3rd order (16).
MAX_CHANNELS: int = 64
#: Sample rates accepted (Hz): telephone 8 kHz down to 1 kHz, studio 768 kHz at most.
MIN_RATE: int = 1_000
MAX_RATE: int = 768_000


def check_audio_layout(channels: int, rate: int, sample_format: str, name: str) -> None:
    """Refuse, with a :class:`MediaError`, a decoded sound layout the decoder must not
    hand to native code: no channels or more than :data:`MAX_CHANNELS`, a rate outside
    :data:`MIN_RATE` .. :data:`MAX_RATE` Hz, or no known sample format."""
    if not 1 <= int(channels or 0) <= MAX_CHANNELS:
        raise MediaError(f"{name}: the sound has {int(channels or 0)} channels; 1 to {MAX_CHANNELS} can be read")
    if not MIN_RATE <= int(rate or 0) <= MAX_RATE:
        raise MediaError(f"{name}: the sound's sample rate ({int(rate or 0)} Hz) is outside "
                         f"{MIN_RATE} to {MAX_RATE} Hz")
    if not sample_format:
        raise MediaError(f"{name}: the sound's sample format is unknown")


def _check_stream(stream, name: str) -> None:
    """The audio stream's header, before any frame is decoded: channel counts and rates
    beyond what can be read are refused at once (a header that says 0, unknown until
    decoded, is left to the per-frame check of :func:`check_audio_layout`)."""
    context = stream.codec_context
    channels = int(context.layout.nb_channels) if context.layout is not None else 0
    if channels > MAX_CHANNELS:
        raise MediaError(f"{name}: the sound has {channels} channels; 1 to {MAX_CHANNELS} can be read")
    if int(context.sample_rate or 0) > MAX_RATE:
        raise MediaError(f"{name}: the sound's sample rate ({int(context.sample_rate)} Hz) is above {MAX_RATE} Hz")


class PackedFloat:
    """Frames of any channel count, rate and sample format as ``(channels, n)`` float32
    at one rate, through FFmpeg's resampler to *packed* float (``flt``: one plane).

    Never planar out: PyAV reads a planar frame's planes from the frame's first eight
    data pointers, so a planar frame of 8 or more channels (7.1 AAC decodes to ``fltp``)
    crashes the process in ``to_ndarray``; a packed frame is one buffer whatever its
    channel count. Decoded frames go to the resampler untouched (native code reads them
    through ``extended_data``). A frame whose layout, rate or format differs from the
    last one starts a fresh resampler (the old one flushed first)."""

    def __init__(self, rate: int, name: str) -> None:
        self.rate, self.name = int(rate), name
        self._key: tuple | None = None
        self._resampler = None

    def _drain(self, frames) -> list[np.ndarray]:
        out = []
        for frame in frames:
            width = int(frame.layout.nb_channels)
            data = frame.to_ndarray()  # (1, samples * channels), interleaved
            out.append(np.ascontiguousarray(data.reshape(-1, width).T))
        return out

    def convert(self, frame) -> list[np.ndarray]:
        """The float32 ``(channels, n)`` chunks ``frame`` yields (possibly none yet)."""
        import av

        fmt = frame.format.name if frame.format is not None else ""
        check_audio_layout(frame.layout.nb_channels, frame.sample_rate, fmt, self.name)
        key = (fmt, frame.layout.name, int(frame.layout.nb_channels), int(frame.sample_rate))
        chunks: list[np.ndarray] = []
        if key != self._key:
            chunks += self.flush()
            self._key, self._resampler = key, av.AudioResampler(format="flt", rate=self.rate)
        return chunks + self._drain(self._resampler.resample(frame))

    def flush(self) -> list[np.ndarray]:
        """What the resampler still holds (end of stream, or before a change)."""
        if self._resampler is None:
            return []
        chunks = self._drain(self._resampler.resample(None))
        self._resampler = None
        return chunks


def _read_audio(container, name: str, sample_rate: int, max_seconds: float | None,
                notes: list[str] | None) -> np.ndarray:
    """The body of :func:`load_audio` on an open container (from its start).

    The stream's header is checked before any frame is decoded (:func:`_check_stream`),
    every decoded frame before it is converted (:func:`check_audio_layout`), and frames become numbers only
    through packed float (:class:`PackedFloat`): no channel count or sample format
    can crash the process."""
    import av

    from pipeline.core.audio import remove_drift

    if not container.streams.audio:
        raise MediaError(f"{name} has no audio track")
    stream = container.streams.audio[0]
    _check_stream(stream, name)
    # Keep the source layout and mix channels ourselves (see downmix); FFmpeg's own
    # downmix scales by -3 dB per channel instead and cannot choose the voice.
    packer = PackedFloat(int(sample_rate), name)
    chunks: list[np.ndarray] = []
    n = 0
    limit = int(max_seconds * sample_rate) if max_seconds else None
    try:
        for frame in container.decode(stream):
            for chunk in packer.convert(frame):
                chunks.append(chunk)
                n += chunk.shape[-1]
            if limit is not None and n >= limit:
                break
        chunks += packer.flush()
    except av.error.FFmpegError as err:
        if not chunks:
            raise MediaError(f"{name}: the audio stream cannot be decoded ({err})") from err
    chunks = [c for c in chunks if c.size]
    if not chunks:
        raise MediaError(f"{name}: the audio track holds no samples")
    width = min(c.shape[0] for c in chunks)  # a layout change mid-stream keeps the common channels
    channels = np.concatenate([c[:width] for c in chunks], axis=1).astype(np.float32, copy=False)
    del chunks
    if limit is not None:
        channels = channels[:, :limit]
    if not np.all(np.isfinite(channels)):  # float files can hold them; no sound is NaN or infinite
        # no count: these are samples after resampling, which spreads one bad value over several
        raise MediaError(f"{name}: the sound holds NaN or infinite sample values (a damaged or "
                         "wrongly written file)")
    peak = float(np.abs(channels).max())
    if peak > MAX_PEAK:
        channels = channels / np.float32(peak)
        if notes is not None:
            notes.append(f"the sound's samples go far beyond full scale (peak {peak:.2g}): read scaled to full scale")
    clipped = clipped_fraction(channels)
    if clipped > CLIPPED_FRACTION and notes is not None:
        notes.append(f"the sound is clipped ({100 * clipped:.1f}% of its samples at full scale): a distorted "
                     "recording is read less reliably")
    audio, note = downmix(channels, sample_rate)
    if note and notes is not None:
        notes.append(note)
    return remove_drift(audio, sample_rate)


def _frame_rotation(frame) -> int:
    """Clockwise display rotation from a decoded frame's display matrix (FFmpeg 7 no
    longer exposes it as a ``rotate`` tag; PyAV reports it counter-clockwise)."""
    try:
        return int(round(-float(frame.rotation))) % 360
    except Exception:
        return 0


def turned(rgb: np.ndarray, turn: int) -> np.ndarray:
    """``rgb`` (H, W[, C]) turned clockwise by ``turn`` degrees (a multiple of 90),
    contiguous; the same array for 0. OpenCV's ``rotate``: 0.3 ms for a 960 x 540 RGB
    frame, where numpy's ``rot90`` copied into a contiguous array took 2.2 ms (a tenth
    of a phone clip's analysis went to turning its frames upright)."""
    import cv2

    k = (int(turn) // 90) % 4
    if not k:
        return rgb
    code = (cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_180, cv2.ROTATE_90_COUNTERCLOCKWISE)[k - 1]
    return cv2.rotate(np.ascontiguousarray(rgb), code)


#: Least scale (new side / old side) at which :func:`_to_rgb` converts a frame at its own
#: size and shrinks it with OpenCV's bilinear resize: 0.9 ms for a 720p frame to 960 px
#: against 2.7 ms in FFmpeg's swscale converting and scaling at once
#: (``bench/bench_floor.py``: a 5-minute clip converts about 1,500 frames). Below it
#: (a 4K frame to 960 px) swscale's filter, which widens with the shrink, keeps fine
#: detail from aliasing.
CONVERT_THEN_SHRINK: float = 0.5


def _to_rgb(frame, max_side: int | None, rotation: int) -> np.ndarray:
    """A decoded video frame as upright (H, W, 3) uint8 RGB, the longer side at most
    ``max_side`` pixels: converted by FFmpeg's swscale, and scaled either by OpenCV
    afterwards (a shrink to no less than :data:`CONVERT_THEN_SHRINK` of the side) or
    by swscale while converting."""
    width, height = frame.width, frame.height
    if max_side and max(width, height) > max_side:
        scale = max_side / max(width, height)
        width = max(2, int(round(width * scale)))
        height = max(2, int(round(height * scale)))
        if scale >= CONVERT_THEN_SHRINK:
            import cv2

            rgb = cv2.resize(frame.to_ndarray(format="rgb24"), (width, height), interpolation=cv2.INTER_LINEAR)
        else:
            rgb = frame.to_ndarray(format="rgb24", width=width, height=height)
    else:
        rgb = frame.to_ndarray(format="rgb24")
    return turned(rgb, rotation or _frame_rotation(frame))


def iter_frames(source: Source, *, max_side: int | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(time_s, rgb)`` for every decodable frame of the first video stream
    that is footage (attached pictures such as cover art are skipped: not video).

    Frames are (H, W, 3) uint8 RGB, upright (display rotation applied), optionally
    downscaled so the longer side is at most ``max_side`` pixels. Times come from
    presentation timestamps, so variable frame rates are honoured.
    """
    import av

    with _open(source) as container:
        stream = _video_stream(container)
        if stream is None:
            raise MediaError(f"{_name(source)} has no video track")
        stream.thread_type = "AUTO"
        rotation = _rotation(stream)
        base = stream.time_base or Fraction(1, 1000)
        fps = float(stream.average_rate or stream.guessed_rate or 30.0)
        index = 0
        try:
            for frame in container.decode(stream):
                t = float(frame.pts * base) if frame.pts is not None else index / fps
                index += 1
                yield t, _to_rgb(frame, max_side, rotation)
        except av.error.FFmpegError as err:
            if index == 0:
                raise MediaError(f"{_name(source)}: the video stream cannot be decoded ({err})") from err


# --------------------------------------------------------------------------- decode once
class FrameSink(Protocol):
    """Where :func:`decode` sends video frames. ``wants(t)`` is asked first, from the
    frame's time alone (seconds from the first frame), so frames nobody keeps are never
    converted to RGB; ``add(t, rgb)`` receives the kept ones, upright and downscaled.
    ``needed`` is how many frames the sink will keep at most (None: unknown); when the
    stream holds many more, :func:`decode` may let the decoder skip frames no other frame
    depends on. ``decoder_threads`` (optional; None: FFmpeg's choice, one per core): the
    threads FFmpeg's video decoder may use, for a caller whose own threads already share
    the cores."""

    needed: int | None

    def wants(self, t: float) -> bool: ...

    def add(self, t: float, rgb: np.ndarray) -> None: ...


@dataclass
class Media:
    """One clip decoded once: what the audio branch, the video branch, the timeline and
    the display all read (:func:`decode`).

    ``info``: the container's facts (streams, duration, rotation, cover art / still).
    ``waveform``: mono float32 at ``sample_rate`` Hz (drift removed, as
    :func:`load_audio`), None when no rate was asked for or the sound is unusable, and
    then ``audio_error`` says why ("... has no audio track", "... holds no samples",
    "... cannot be decoded (...)"). ``notes``: the decoder's decisions in plain words.
    ``n_frames``: video frames the decoder produced (within ``max_seconds``), of which
    ``n_kept`` went to the sink; ``first_frame_s``/``last_frame_s`` their times;
    ``video_error``: why the pictures could not be decoded ("" when they could).
    ``seconds``: wall time spent decoding, each stream (the sink's own work excluded).
    """

    name: str
    info: MediaInfo
    waveform: np.ndarray | None = None
    sample_rate: int = 0
    audio_error: str = ""
    notes: list[str] = field(default_factory=list)
    n_frames: int = 0
    n_kept: int = 0
    first_frame_s: float = 0.0
    last_frame_s: float = 0.0
    frame_step_s: float = 0.0
    video_error: str = ""
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        """The clip's length in seconds: the container's, else what was decoded."""
        if self.info.duration > 0:
            return float(self.info.duration)
        return self.decoded_seconds

    @property
    def decoded_seconds(self) -> float:
        """How much of the clip was actually decoded (s): the longer of the sound and the
        pictures decoded (0.0 when neither was). Less than :attr:`duration` for a file
        cut short or damaged."""
        return float(max(self.heard_seconds, self.seen_seconds))

    @property
    def heard_seconds(self) -> float:
        """Seconds of sound decoded (0.0 without sound)."""
        return self.waveform.size / self.sample_rate if self.waveform is not None and self.sample_rate else 0.0

    @property
    def seen_seconds(self) -> float:
        """Seconds the decoded pictures span, the last frame's duration included (0.0
        without pictures)."""
        return (self.last_frame_s - self.first_frame_s + self.frame_step_s) if self.n_frames else 0.0

    @property
    def still(self) -> bool:
        """The video stream decoded to a single picture: not a moving face."""
        return self.n_frames == 1


#: Seconds a decoded stream may fall short of the length the container states before
#: the file is called damaged or cut short (encoder padding and rounding stay under it).
TRUNCATED_SLACK_S: float = 0.5


def _note_cut_short(notes: list[str], what: str, decoded_s: float, claimed_s: float,
                    max_seconds: float | None) -> None:
    """Add a note when a stream decoded to more than :data:`TRUNCATED_SLACK_S` less than
    the container claims (within ``max_seconds``): a damaged or cut-short file."""
    claimed_s = min(claimed_s, max_seconds) if max_seconds else claimed_s
    if claimed_s - decoded_s > TRUNCATED_SLACK_S:
        notes.append(f"the {what} end{'s' if what == 'sound' else ''} at {decoded_s:.1f} s of the "
                     f"{claimed_s:.1f} s the file claims: the file is damaged or cut short")


def decode(source: Source, *, sample_rate: int | None = None, max_seconds: float | None = None,
           max_side: int | None = None, frames: FrameSink | None = None,
           plan: Callable[[Media], FrameSink | None] | None = None) -> Media:
    """Open ``source`` once and decode what the caller needs: the sound at
    ``sample_rate`` Hz (when given and the file has sound) and the video frames a
    :class:`FrameSink` asks for (when the file has footage).

    The sound is decoded first (a few hundred milliseconds even for five minutes). Then
    ``plan(media)`` is called with the facts and the sound, and returns the sink for the
    pictures (or None: skip them), so the caller can plan its windows from the real
    length and start on the sound while the pictures decode; without ``plan``,
    ``frames`` is the sink. The container is then rewound and the video stream decoded,
    each frame's time offered to the sink, frames converted to RGB (longer side at most
    ``max_side``) only when it wants them. Both streams stop at ``max_seconds``; FFmpeg
    decodes with its own threads. Raises :class:`MediaError` for a file that cannot be
    opened; a stream that cannot be decoded is reported in ``audio_error`` /
    ``video_error``.
    """
    import time

    import av

    name = _name(source)
    began = time.perf_counter()
    with _open(source) as container:
        media = Media(name=name, info=_describe(container))
        info = media.info
        sound_s = wav_sound_seconds(source) if _is_wav(container) else None
        if sound_s is not None:  # FFmpeg's estimate counts the metadata after the sound
            media.info = info = replace(info, duration=sound_s)
        media.seconds["open"] = time.perf_counter() - began
        if sample_rate and info.has_audio:
            start = time.perf_counter()
            try:
                media.waveform = _read_audio(container, name, int(sample_rate), _sooner(max_seconds, sound_s),
                                             media.notes)
                media.sample_rate = int(sample_rate)
                _note_cut_short(media.notes, "sound", media.heard_seconds,
                                info.duration, max_seconds)
            except MediaError as err:
                media.audio_error = str(err)
            media.seconds["audio"] = time.perf_counter() - start
        elif not info.has_audio:
            media.audio_error = f"{name} has no audio track"
        if plan is not None:
            frames = plan(media)
        if frames is not None and info.has_video:
            if sample_rate and info.has_audio:
                try:
                    container.seek(0)
                except (av.error.FFmpegError, OSError, ValueError) as err:
                    media.video_error = f"{name}: the file cannot be rewound to read its pictures ({err})"
                    return media
            _read_frames(container, media, frames, max_side, max_seconds)
        return media


def _read_frames(container, media: Media, sink: FrameSink, max_side: int | None,
                 max_seconds: float | None) -> None:
    """Decode the footage stream of an open container into ``sink`` (see :func:`decode`)."""
    import time

    import av

    stream = _video_stream(container)
    if stream is None:
        media.video_error = f"{media.name} has no video track"
        return
    stream.thread_type = "AUTO"
    threads = getattr(sink, "decoder_threads", None)
    if threads:
        stream.codec_context.thread_count = int(threads)
    needed, total = getattr(sink, "needed", None), media.info.n_video_frames
    if needed and total > 4 * needed:
        # Far more frames than wanted: skip decoding those no other frame is predicted
        # from (B-frames, mostly): the rest are decoded exactly as before.
        stream.codec_context.skip_frame = "NONREF"
    rotation = _rotation(stream)
    base = stream.time_base or Fraction(1, 1000)
    fps = float(stream.average_rate or stream.guessed_rate or 30.0)
    media.frame_step_s = 1.0 / fps if fps > 0 else 0.0
    start, spent = time.perf_counter(), 0.0
    first: float | None = None
    try:
        for frame in container.decode(stream):
            t = float(frame.pts * base) if frame.pts is not None else media.n_frames / fps
            first = t if first is None else first
            rel = t - first
            if max_seconds is not None and rel > max_seconds:
                break
            media.n_frames += 1
            media.last_frame_s = t
            if sink.wants(rel):
                rgb = _to_rgb(frame, max_side, rotation)
                began = time.perf_counter()
                sink.add(rel, rgb)
                spent += time.perf_counter() - began
                media.n_kept += 1
    except av.error.FFmpegError as err:
        if media.n_frames == 0:
            media.video_error = f"{media.name}: the video stream cannot be decoded ({err})"
    media.first_frame_s = first or 0.0
    seen, heard = media.seen_seconds, media.heard_seconds
    if media.n_frames and not media.info.has_audio:
        _note_cut_short(media.notes, "pictures", seen, media.info.video_duration or media.info.duration, max_seconds)
    elif media.n_frames > 1 and heard:  # (a cut-short file's sound has its own note)
        if heard - seen > TRUNCATED_SLACK_S and not (max_seconds and seen >= max_seconds - TRUNCATED_SLACK_S):
            media.notes.append(f"the pictures end at {seen:.1f} s, the sound at {heard:.1f} s: "
                               f"only the first {seen:.1f} s can show a face")
    media.seconds["video"] = time.perf_counter() - start - spent
    media.seconds["sink"] = spent


#: Still-image extensions analysed as one-frame clips (lower case, with the dot).
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
#: Sound-only containers the decoder reads (lower case, with the dot): voice notes
#: (.opus, .oga, .amr, .aac) as well as music and corpus formats.
AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".amr")
#: Containers that may hold video (phone, browser and camera recordings).
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".3gp")
#: The one list of file types the product accepts: the dashboard uploader, the
#: ``predict`` help and the docs all read it (``tests/test_inputs.py`` decodes one file
#: of each sound and video type written by PyAV).
ACCEPTED_EXTENSIONS: tuple[str, ...] = AUDIO_EXTENSIONS + VIDEO_EXTENSIONS + IMAGE_EXTENSIONS


def accepted_types(*, images: bool = True) -> list[str]:
    """:data:`ACCEPTED_EXTENSIONS` without dots (``st.file_uploader(type=...)``);
    ``images=False``: sound and video only (a recording of a voice)."""
    return [e.lstrip(".") for e in ACCEPTED_EXTENSIONS if images or e not in IMAGE_EXTENSIONS]


def accepted_text() -> str:
    """The accepted types in words, for help texts: ``"wav, flac, ... (sound); ..."``."""
    words = lambda exts: ", ".join(e.lstrip(".") for e in exts)  # noqa: E731
    return (f"{words(AUDIO_EXTENSIONS)} (sound); {words(VIDEO_EXTENSIONS)} (video); "
            f"{words(IMAGE_EXTENSIONS)} (still images)")


def _image_magic(head: bytes) -> bool:
    """True when ``head`` (a file's first 12 bytes) opens a JPEG, PNG, WebP or BMP."""
    return (head.startswith(b"\xff\xd8\xff") or head.startswith(b"\x89PNG")
            or (head[:4] == b"RIFF" and head[8:12] == b"WEBP") or head.startswith(b"BM"))


def is_image(source: Source, name: str | None = None) -> bool:
    """True when ``source`` is a still image: by the file's magic number (JPEG, PNG,
    WebP, BMP), so a photo renamed ``.mp4`` is still a photo, or by the extension of
    ``name`` or the path."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        head = bytes(source[:12])
    elif not Path(source).is_file():  # (never open a pipe or device: reading could block)
        head = b""
    else:
        try:
            with open(source, "rb") as handle:
                head = handle.read(12)
        except OSError:
            head = b""
    if _image_magic(head):
        return True
    label = name if name is not None else (None if isinstance(source, (bytes, bytearray, memoryview)) else str(source))
    return label is not None and Path(label).suffix.lower() in IMAGE_EXTENSIONS


def _check_pixels(data: bytes, label: str) -> None:
    """:class:`MediaError` when the image's header states more than :data:`MAX_PIXELS`
    pixels (read by Pillow from the header alone, nothing decoded), or when a PNG's
    chunks are cut short or fail their CRC (Pillow's ``verify``); a header Pillow cannot
    read is left to OpenCV's decoder."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as picture:
                width, height = picture.size
                kind = picture.format
    except Image.DecompressionBombError as err:  # beyond Pillow's own hard limit (~179 megapixels)
        raise MediaError(f"{label}: the picture is too large (over {MAX_PIXELS / 1e6:g} megapixels): "
                         "make it smaller and try again") from err
    except Exception:  # not a header Pillow knows: OpenCV decides
        return
    if width * height > MAX_PIXELS:
        raise MediaError(f"{label}: the picture is too large ({width} x {height} pixels, over "
                         f"{MAX_PIXELS / 1e6:g} megapixels): make it smaller and try again")
    if kind == "PNG":  # every chunk present and intact (libpng would print to stderr, then fail)
        try:
            with Image.open(io.BytesIO(data)) as picture:
                picture.verify()
        except Exception as err:
            raise MediaError(f"{label}: the picture is incomplete or damaged (a PNG cut short?): "
                             "save or copy it again") from err


def load_image(source: Source) -> np.ndarray:
    """Decode a still image (file or bytes) to (H, W, 3) uint8 RGB with OpenCV.

    Greyscale images get three equal channels; an alpha channel is dropped. Raises
    :class:`MediaError` for an empty, missing, oversized or undecodable image.
    """
    import cv2

    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        path = check_path(source)
        try:
            data = path.read_bytes()
        except OSError as err:
            raise MediaError(f"{_name(path)} cannot be read ({err.strerror or type(err).__name__})") from err
    if not data:
        raise MediaError(f"{_name(source)}: the file is empty (0 bytes)")
    if len(data) > MAX_BYTES:
        raise MediaError(f"{_name(source)}: the file is too large ({len(data) / 2**20:.0f} MB)")
    _check_pixels(data, _name(source))
    # OpenCV prints its own "[ERROR] imdecode_ ..." line for a damaged picture; the
    # reason below is the one a user reads
    logging_ = cv2.utils.logging
    level = logging_.getLogLevel()
    logging_.setLogLevel(logging_.LOG_LEVEL_SILENT)
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    finally:
        logging_.setLogLevel(level)
    if image is None or image.size == 0:
        raise MediaError(f"{_name(source)}: not a readable image (jpg, png, webp or bmp)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
