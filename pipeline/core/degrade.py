"""Recording conditions as training copies: noise, other voices, rooms, telephones and codecs.

Each function takes a mono float32 waveform ``y`` at ``sr`` Hz and a numpy
``Generator`` and returns a new waveform of the same rate (float32; the length may
change only for codecs, by a few ms of encoder delay). They are the conditions people
record in that RAVDESS and TESS lack (both are studio-quiet, close-microphone, one
speaker): :func:`pipeline.core.audio.augment` dispatches to them by name, for training
folds only.

- :func:`add_at_snr` -- any noise mixed at a signal-to-noise ratio (dB) over the speech part;
- :func:`babble` -- several other speakers talking at once (Krishnamurthy & Hansen 2009,
  "Babble noise: modeling, analysis, and applications": 3-6 talkers sound like a crowd);
- :func:`reverberate` -- a synthetic room impulse response: exponentially decaying
  Gaussian noise of reverberation time RT60 0.2-0.9 s (Polack's statistical model);
- :func:`telephone` -- the 300-3,400 Hz band of narrow-band telephony (ITU-T G.712) at
  8 kHz, 8-bit mu-law (G.711);
- :func:`codec_round_trip` -- encoded with Opus, AAC or AMR-NB by PyAV and decoded
  again by the project's own decoder (:func:`pipeline.core.media.load_audio`).
"""
from __future__ import annotations

import io
from typing import Sequence

import numpy as np

#: The conditions :func:`apply` knows, by name (training copies, like
#: :data:`pipeline.core.audio.AUGMENTATIONS`).
CONDITIONS: tuple[str, ...] = ("gain", "noise_snr", "babble", "reverb", "telephone", "opus", "aac", "amr_nb")
#: Conditions that need other speakers' sound (:func:`apply`'s ``others``).
NEEDS_OTHERS: tuple[str, ...] = ("babble",)
#: Range (dB) of the ``gain`` condition: from a quiet far microphone to a loud close one.
GAIN_DB: tuple[float, float] = (-30.0, 10.0)
#: SNR range (dB) of the noise and babble conditions (the issue's 0-20 dB).
SNR_DB: tuple[float, float] = (0.0, 20.0)
#: Talkers mixed into babble.
BABBLE_TALKERS: tuple[int, int] = (3, 6)
#: Reverberation time range (s).
RT60_S: tuple[float, float] = (0.2, 0.9)
#: Codec -> (container format, sample rate, bit rates in bit/s to draw from).
CODECS: dict[str, tuple[str, int, tuple[int, ...]]] = {
    "opus": ("ogg", 16000, (8000, 12000, 16000, 24000)),
    "aac": ("adts", 16000, (16000, 24000, 32000)),
    "amr_nb": ("amr", 8000, (4750, 7950, 12200)),
}


def _power(y: np.ndarray) -> float:
    """Mean power of the loud part of ``y`` (frames within 35 dB of the loudest): the
    speech, not the pauses around it."""
    from pipeline.core.audio import frame_levels

    levels = frame_levels(y, 16000)
    if levels.size == 0 or not np.isfinite(levels.max()):
        return 0.0
    loud = levels[levels >= levels.max() - 35.0]
    return float(np.mean(10.0 ** (loud / 10.0)))


def add_at_snr(y: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``y`` plus ``noise`` (tiled or cut to ``y``'s length) scaled to ``snr_db`` dB below
    the speech power. float32."""
    y = np.asarray(y, np.float32)
    noise = np.resize(np.asarray(noise, np.float32), y.shape)
    p_y, p_n = _power(y), float(np.mean(noise.astype(np.float64) ** 2))
    if p_y <= 0 or p_n <= 0:
        return y.copy()
    return (y + noise * np.float32(np.sqrt(p_y / (p_n * 10.0 ** (snr_db / 10.0))))).astype(np.float32)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """``(n,)`` float32 pink (1/f power) noise, unit variance: white noise shaped in the
    frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(max(n, 2)))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1.0))
    out = np.fft.irfft(spectrum, n=max(n, 2))[:n]
    return (out / max(float(out.std()), 1e-12)).astype(np.float32)


def noise(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """White or pink noise at an SNR drawn from :data:`SNR_DB`."""
    n = rng.standard_normal(len(y)).astype(np.float32) if rng.random() < 0.5 else pink_noise(len(y), rng)
    return add_at_snr(y, n, float(rng.uniform(*SNR_DB)))


def babble(y: np.ndarray, others: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """``y`` under the babble of ``others`` (waveforms of other speakers, same rate): 3-6
    of them, each level-matched, at random offsets, summed, at an SNR from :data:`SNR_DB`.
    Without others, ``y`` unchanged."""
    voices = [np.asarray(o, np.float32) for o in others if np.size(o) > 0]
    if not voices:
        return np.asarray(y, np.float32).copy()
    k = int(rng.integers(BABBLE_TALKERS[0], BABBLE_TALKERS[1] + 1))
    mix = np.zeros(len(y), np.float32)
    for i in rng.choice(len(voices), size=k, replace=len(voices) < k):
        v = voices[i]
        v = v / np.float32(np.sqrt(max(_power(v), 1e-12)))
        start = int(rng.integers(0, max(len(v), 1)))
        mix += np.resize(np.roll(v, -start), len(y))
    return add_at_snr(y, mix, float(rng.uniform(*SNR_DB)))


def room_response(sr: int, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room impulse response: a unit direct path, then Gaussian noise decaying
    by 60 dB in ``rt60`` s (from 2 ms on), at a direct-to-reverberant ratio of 0-10 dB."""
    n = int(rt60 * sr)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.908 * t / rt60)  # ln(1000) = 6.908: -60 dB at rt60
    tail[: int(0.002 * sr)] = 0.0
    drr = 10.0 ** (float(rng.uniform(0.0, 10.0)) / 10.0)
    tail *= np.sqrt(1.0 / (drr * max(float(np.sum(tail ** 2)), 1e-12)))
    tail[0] = 1.0
    return tail.astype(np.float32)


def reverberate(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """``y`` in a room of RT60 from :data:`RT60_S` (:func:`room_response`), same length
    and speech level."""
    from scipy.signal import fftconvolve

    y = np.asarray(y, np.float32)
    wet = fftconvolve(y, room_response(sr, float(rng.uniform(*RT60_S)), rng))[: len(y)]
    return (wet * np.float32(np.sqrt(_power(y) / max(_power(wet), 1e-12)))).astype(np.float32)


def telephone(y: np.ndarray, sr: int) -> np.ndarray:
    """Narrow-band telephone sound: band-passed to 300-3,400 Hz, resampled to 8 kHz,
    companded by 8-bit mu-law (G.711) and back to ``sr``."""
    import librosa
    from scipy.signal import butter, sosfiltfilt

    y = np.asarray(y, np.float32)
    sos = butter(4, [300.0, 3400.0], btype="bandpass", fs=sr, output="sos")
    band = sosfiltfilt(sos, y).astype(np.float32)
    narrow = librosa.resample(band, orig_sr=sr, target_sr=8000)
    peak = max(float(np.abs(narrow).max()), 1e-9)
    x = np.clip(narrow / peak, -1.0, 1.0)
    mu = 255.0
    coded = np.round(np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu) * 127.0) / 127.0
    decoded = np.sign(coded) * ((1.0 + mu) ** np.abs(coded) - 1.0) / mu * peak
    out = librosa.resample(decoded.astype(np.float32), orig_sr=8000, target_sr=sr)
    return np.resize(out, len(y)).astype(np.float32)


def encode(y: np.ndarray, sr: int, codec: str, bit_rate: int) -> bytes:
    """``y`` encoded with ``codec`` (a key of :data:`CODECS`) at ``bit_rate`` bit/s in its
    usual container, as bytes (PyAV). The signal is resampled to the codec's rate and
    clipped to full scale first, as a recorder would."""
    import av
    import librosa

    container_format, rate, _ = CODECS[codec]
    x = np.clip(librosa.resample(np.asarray(y, np.float32), orig_sr=sr, target_sr=rate), -1.0, 1.0)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container_format) as out:
        stream = out.add_stream(codec if codec != "opus" else "libopus", rate=rate)
        stream.bit_rate = int(bit_rate)
        stream.layout = "mono"
        fmt = stream.codec_context.codec.audio_formats[0].name
        samples = (x * 32767).astype(np.int16) if fmt.startswith("s16") else x.astype(np.float32)
        frame_size = stream.codec_context.frame_size or 1024
        resampler = av.AudioResampler(format=fmt, layout="mono", rate=rate)
        for start in range(0, len(samples), frame_size):
            chunk = samples[start:start + frame_size]
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="s16" if samples.dtype == np.int16 else "flt",
                                               layout="mono")
            frame.sample_rate = rate
            for piece in resampler.resample(frame):
                for packet in stream.encode(piece):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def codec_round_trip(y: np.ndarray, sr: int, codec: str, rng: np.random.Generator) -> np.ndarray:
    """``y`` encoded by ``codec`` at a bit rate drawn from :data:`CODECS` and decoded by
    :func:`pipeline.core.media.load_audio` at ``sr``; cut or zero-padded to ``len(y)``."""
    from pipeline.core.media import load_audio

    rates = CODECS[codec][2]
    data = encode(y, sr, codec, int(rates[int(rng.integers(len(rates)))]))
    out = load_audio(data, sr)
    return np.resize(np.pad(out, (0, max(0, len(y) - len(out)))), len(y)).astype(np.float32)


def apply(y: np.ndarray, sr: int, name: str, rng: np.random.Generator,
          others: Sequence[np.ndarray] = ()) -> np.ndarray:
    """``y`` under condition ``name`` (:data:`CONDITIONS`): ``gain`` (a plain gain from
    :data:`GAIN_DB`), ``noise_snr`` (:func:`noise`), ``babble`` (:func:`babble` of
    ``others``, other speakers' waveforms at ``sr``), ``reverb`` (:func:`reverberate`),
    ``telephone`` (:func:`telephone`), ``opus`` / ``aac`` / ``amr_nb``
    (:func:`codec_round_trip`). float32; deterministic given ``rng``'s state. Raises
    ValueError for an unknown name."""
    y = np.asarray(y, np.float32).reshape(-1)
    if name == "gain":
        return (y * np.float32(10.0 ** (float(rng.uniform(*GAIN_DB)) / 20.0))).astype(np.float32)
    if name == "noise_snr":
        return noise(y, rng)
    if name == "babble":
        return babble(y, others, rng)
    if name == "reverb":
        return reverberate(y, sr, rng)
    if name == "telephone":
        return telephone(y, sr)
    if name in CODECS:
        return codec_round_trip(y, sr, name, rng)
    raise ValueError(f"unknown recording condition {name!r}; choose one of: {', '.join(CONDITIONS)}")
