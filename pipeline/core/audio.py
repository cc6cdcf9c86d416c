"""Audio preprocessing: the analysis window, MFCC / log-mel / openSMILE features and
training-time augmentations.

This is the only audio preprocessing path: training, evaluation, the CLI and the
dashboard all call :func:`featurize` on a waveform decoded by
:func:`pipeline.core.media.load_audio` at ``params.sample_rate``, which has already passed
through :func:`remove_drift` (DC offset and sub-audio drift removed; the live page
calls it on its microphone buffer). Every feature is a pure function of
``(waveform, params, kind)``, so the same clip always gives the same numbers wherever
it is computed. :func:`voice_activity` says where a clip holds the person (the one
voice-activity hook); a window with less than :func:`min_speech_seconds` of it makes
the branch abstain ("too short").

Shapes and units (``params`` = :class:`pipeline.core.preprocessing.Preprocessing`):

- waveforms are float32 mono in [-1, 1] at ``params.sample_rate`` Hz;
- the window is ``params.window_samples`` samples (``duration`` s from ``offset`` s);
- ``mfcc_matrix`` is ``(n_mfcc, T)`` with ``T = 1 + window_samples // hop_length``
  frames (librosa centres frames), ``logmel`` is ``(n_mels, T)`` in dB re 1.0
  (full-scale power), floored at -100 dB;
- openSMILE functionals (``egemaps`` 88, ``compare`` 6373 values) are computed over
  the clip trimmed of leading/trailing quiet (see :func:`functional_span`), not the
  fixed window, because they are statistics over time and need no fixed length; with
  ``params.level_db`` set, that span is first brought to that speech level
  (:func:`normalise_level`), as for the speech-encoder kinds.

librosa and openSMILE are imported inside the functions that need them, so importing
this module is cheap.
"""
from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from pipeline.core.preprocessing import Preprocessing

log = logging.getLogger(__name__)

#: Names accepted by :func:`augment`, in the order the report applies them.
#: (Recording conditions, noise and babble at 0-20 dB, rooms, telephone and codecs, are
#: :data:`pipeline.core.degrade.CONDITIONS`.)
AUGMENTATIONS: tuple[str, ...] = ("noise", "stretch_slow", "stretch_fast", "pitch_up",
                                  "pitch_down", "speed_slow", "speed_fast")

#: Speed perturbation rates (resampling: tempo and pitch change together, like a
#: different speaker's rate; Ko et al. 2015, "Audio augmentation for speech recognition").
SPEED_RATES: dict[str, float] = {"speed_slow": 0.9, "speed_fast": 1.1}

#: SNR range (dB) of the additive white Gaussian noise augmentation.
NOISE_SNR_DB: tuple[float, float] = (15.0, 30.0)

#: Time-stretch rates (librosa ``rate``: < 1 slows down, > 1 speeds up).
STRETCH_RATES: dict[str, float] = {"stretch_slow": 0.5, "stretch_fast": 1.5}

#: Semitones of the pitch-shift augmentation.
PITCH_STEPS: float = 2.0

#: Floor of the log-mel spectrogram (dB re full-scale power).
LOGMEL_FLOOR_DB: float = -100.0

#: Cut-off (Hz) of the high-pass that removes DC offset and sub-audio drift. 20 Hz is
#: the conventional lower limit of hearing; the lowest voices have F0 near 60-80 Hz,
#: so nothing of the voice is touched.
DRIFT_CUTOFF_HZ: float = 20.0

#: A 20 ms frame holds the person when its RMS level is within this many dB of the
#: clip's loudest frame (speech's own dynamic range; room noise and the silence before
#: and after a sentence sit lower) ...
SPEECH_RANGE_DB: float = 35.0
#: ... and above this absolute floor (dBFS): zero padding and digital near-silence
#: never count, however quiet the clip (real RAVDESS takes peak as low as -51 dBFS).
SPEECH_FLOOR_DB: float = -65.0

#: Least speech (seconds) in an analysis window for the audio branch to answer; below
#: it the branch abstains ("too short: 0.3 s of speech, at least 1.0 s needed").
#: Why 1 s: the models learn from acted sentences (RAVDESS "Kids are talking by the
#: door", the synthetic corpus the same) that hold about 1.5-2 s of speech inside the
#: 3 s window, and utterance-level speech emotion recognition is trained and reported
#: on utterances of a second or more; a window with less voice than that is mostly
#: padding and silence, a kind of input the models never saw (the issue's 20 ms tone
#: and 0.3 s snippet both got the answer of an all-zero window). Measured on real
#: RAVDESS speech (960 clips, docs/audio.md): the median window holds 1.66 s of voice
#: by :func:`voice_activity` and 5 of 960 windows (0.5%) fall below 1 s, so the limit
#: turns away snippets, not the people the models learned from. Capped at half the window
#: for bundles trained on shorter windows (:func:`min_speech_seconds`).
MIN_SPEECH_SECONDS: float = 1.0

#: Leading/trailing audio quieter than this many dB below the clip's peak is trimmed
#: before openSMILE functionals. 30 dB was best of 20-50 dB on real RAVDESS (ComParE +
#: linear SVM, leave-one-actor-out; docs/audio.md): it keeps the voiced span and drops
#: breaths and room tails.
TRIM_TOP_DB: float = 30.0


class FeatureError(ValueError):
    """A feature that cannot be computed, with a one-line reason."""


@dataclass(frozen=True)
class FeatureKind:
    """One feature kind: its name, layout and what it is for.

    ``ndim`` is 1 for vectors and 2 for (coefficients, frames) matrices.
    """

    name: str
    ndim: int
    description: str


FEATURE_KINDS: dict[str, FeatureKind] = {
    k.name: k
    for k in (
        FeatureKind("mfcc_mean", 1, "time-averaged MFCC over the window, (n_mfcc,)"),
        FeatureKind(
            "mfcc_stats", 1,
            "MFCC mean, std, delta mean, delta std over the window, (4 * n_mfcc,)",
        ),
        FeatureKind("mfcc_matrix", 2, "MFCC over time, (n_mfcc, T)"),
        FeatureKind("logmel", 2, "log-mel spectrogram in dB, (n_mels, T)"),
        FeatureKind("egemaps", 1, "openSMILE eGeMAPSv02 functionals of the trimmed clip, (88,)"),
        FeatureKind("compare", 1, "openSMILE ComParE_2016 functionals of the trimmed clip, (6373,)"),
        FeatureKind("whisper_base", 1,
                    "Whisper base encoder blocks `encoder_layers` (averaged), mean and std over the trimmed clip, (1024,)"),
        FeatureKind("whisper_tiny", 1,
                    "Whisper tiny.en encoder blocks `encoder_layers` (averaged), mean and std over the trimmed clip, (768,)"),
        FeatureKind("whisper_base_layers", 2,
                    "every block of Whisper base (stem + 6), mean and std over the trimmed clip, (7, 1024): "
                    "for choosing a layer"),
        FeatureKind("whisper_tiny_layers", 2,
                    "every block of Whisper tiny.en (stem + 4), mean and std over the trimmed clip, (5, 768)"),
    )
}
#: Feature kinds computed by a pretrained speech encoder (16 kHz input); ``*_layers``
#: hold every block at once (row k = what ``encoder_layers=(k,)`` gives).
ENCODER_KINDS: tuple[str, ...] = ("whisper_base", "whisper_tiny", "whisper_base_layers", "whisper_tiny_layers")
#: Feature kinds that are statistics over the trimmed clip (any length), 1-D vectors.
FUNCTIONAL_KINDS: tuple[str, ...] = ("egemaps", "compare") + ENCODER_KINDS

_OPENSMILE_SIZES: dict[str, int] = {"egemaps": 88, "compare": 6373}


# --------------------------------------------------------------------------- window
def window(y: np.ndarray, params: Preprocessing) -> np.ndarray:
    """Cut the analysis window out of a waveform: ``(params.window_samples,)`` float32.

    The window starts ``params.offset`` s into the clip (RAVDESS clips open with
    ~0.5 s of silence) and lasts ``params.duration`` s. A clip that ends before the
    window does keeps what there is from the offset, zero-padded at the end. A clip
    shorter than the offset itself (a short upload) is taken from its start instead,
    so it is never reduced to silence.
    """
    y = _as_waveform(y)
    n = params.window_samples
    start = int(round(params.offset * params.sample_rate))
    if y.size <= start:
        start = 0
    seg = y[start:start + n]
    if seg.size < n:
        seg = np.pad(seg, (0, n - seg.size))
    return np.ascontiguousarray(seg, dtype=np.float32)


def n_frames(params: Preprocessing) -> int:
    """Frames ``T`` of an MFCC / log-mel matrix over the window (librosa centring)."""
    return 1 + params.window_samples // params.hop_length


def mfcc_times(n_frames_: int, params: Preprocessing) -> np.ndarray:
    """Centre times in seconds, measured from the clip start, of ``n_frames_`` feature
    frames of the window (for plot axes). ``(n_frames_,)`` float64. Assumes the
    window began at the offset (clips shorter than the offset start at 0 instead)."""
    return params.offset + np.arange(int(n_frames_)) * params.hop_length / params.sample_rate


def functional_span(y: np.ndarray, params: Preprocessing) -> np.ndarray:
    """The span openSMILE functionals cover.

    ``params.speech_span == "trim"`` (default): the clip with leading/trailing audio more
    than ``TRIM_TOP_DB`` dB below its peak trimmed (librosa, 2048-sample frames).
    ``"vad"``: only the segments Silero VAD marks as speech, joined
    (:func:`pipeline.core.vad.speech_only`); a clip where it finds none falls back to the
    trim. Falls back to the analysis window for silent or sub-0.1 s input.
    """
    import librosa

    y = _as_waveform(y)
    if params.speech_span == "vad" and y.size >= params.sample_rate // 10 and np.any(y):
        from pipeline.core import vad

        speech = vad.speech_only(y, params.sample_rate)
        if speech.size >= params.sample_rate // 10:
            return np.ascontiguousarray(speech, dtype=np.float32)
        log.debug("VAD found no speech: trimming instead")
    if y.size < params.sample_rate // 10 or not np.any(y):
        log.debug("clip too short or silent to trim (%d samples): using the window", y.size)
        return window(y, params)
    trimmed, _ = librosa.effects.trim(y, top_db=TRIM_TOP_DB, frame_length=2048, hop_length=512)
    if trimmed.size < params.sample_rate // 10:
        log.debug("trimmed span under 0.1 s: using the window")
        return window(y, params)
    return np.ascontiguousarray(trimmed, dtype=np.float32)


#: Target of the speech-level normalisation (dBFS): ITU-T P.56's nominal active speech level.
SPEECH_LEVEL_DB: float = -26.0


def speech_level_db(y: np.ndarray, sr: int) -> float:
    """Active speech level of ``y`` in dBFS: the RMS over the 20 ms frames that hold the
    voice (:func:`energy_segments`' rule: within :data:`SPEECH_RANGE_DB` of the loudest
    frame and above :data:`SPEECH_FLOOR_DB`), a simplified ITU-T P.56. -inf for silence."""
    levels = frame_levels(y, sr)
    if levels.size == 0 or levels.max() < SPEECH_FLOOR_DB:
        return float("-inf")
    voiced = levels >= max(float(levels.max()) - SPEECH_RANGE_DB, SPEECH_FLOOR_DB)
    power = np.mean(10.0 ** (levels[voiced] / 10.0))
    return float(10.0 * np.log10(power))


def normalise_level(y: np.ndarray, sr: int, target_db: float | None) -> np.ndarray:
    """``y`` scaled so its :func:`speech_level_db` is ``target_db`` dBFS (float32, may
    exceed full scale: nothing is clipped). Unchanged when ``target_db`` is None or the
    clip is silent. A plain gain: the shape of the sound is untouched."""
    y = _as_waveform(y)
    level = speech_level_db(y, sr) if target_db is not None else float("-inf")
    if not np.isfinite(level):
        return y
    return (y * np.float32(10.0 ** ((float(target_db) - level) / 20.0))).astype(np.float32)


def encoder_input(y: np.ndarray, params: Preprocessing) -> np.ndarray:
    """What a speech encoder hears of clip ``y``: the span functionals cover
    (:func:`functional_span`), level-normalised to ``params.level_db``; ``(n,)`` float32
    at ``params.sample_rate`` (which must be the encoder's 16 kHz: :class:`FeatureError`)."""
    from pipeline.core.speech_encoder import SAMPLE_RATE

    if params.sample_rate != SAMPLE_RATE:
        raise FeatureError(f"speech-encoder features need sample_rate {SAMPLE_RATE}, not {params.sample_rate}")
    return normalise_level(functional_span(y, params), params.sample_rate, params.level_db)


def split_kind(kind: str) -> tuple[str, ...]:
    """The parts of a feature kind: ``"whisper_base+egemaps"`` -> ``("whisper_base",
    "egemaps")`` (a combination concatenates 1-D kinds), ``"compare"`` -> ``("compare",)``.
    Raises :class:`FeatureError` for an unknown part or a 2-D part in a combination."""
    parts = tuple(p.strip() for p in str(kind).split("+"))
    unknown = [p for p in parts if p not in FEATURE_KINDS]
    if unknown or not parts:
        raise FeatureError(f"unknown audio feature kind {unknown[0] if unknown else kind!r}; choose one of: "
                           f"{', '.join(FEATURE_KINDS)} or 1-D kinds joined by '+'")
    if len(parts) > 1 and any(FEATURE_KINDS[p].ndim != 1 for p in parts):
        raise FeatureError(f"only 1-D feature kinds combine with '+': {kind!r}")
    return parts


def is_feature_kind(kind: str) -> bool:
    """Whether ``kind`` names an audio feature (one kind or a '+' combination)."""
    try:
        split_kind(kind)
    except FeatureError:
        return False
    return True


# ------------------------------------------------------------------------- features
def featurize(y: np.ndarray, params: Preprocessing, kind: str) -> np.ndarray:
    """Compute feature ``kind`` (a key of :data:`FEATURE_KINDS`, or 1-D kinds joined by
    ``+``, concatenated in that order) of a decoded waveform.

    ``y`` is the whole decoded clip (mono, ``params.sample_rate`` Hz); the window is
    cut here, so callers never window themselves. Returns float32: see the module
    docstring for shapes. Raises :class:`FeatureError` for an unknown kind or an
    unusable waveform.
    """
    parts = split_kind(kind)
    y = _as_waveform(y)
    if len(parts) > 1:
        return np.concatenate([featurize(y, params, p) for p in parts]).astype(np.float32)
    if kind in ENCODER_KINDS:
        from pipeline.core import speech_encoder

        try:
            if kind.endswith("_layers"):
                return speech_encoder.layer_embeddings(encoder_input(y, params), kind[: -len("_layers")])
            return speech_encoder.embedding(encoder_input(y, params), params.encoder_layers, kind)
        except speech_encoder.EncoderError as err:
            raise FeatureError(str(err)) from err
    if kind in _OPENSMILE_SIZES:
        span = normalise_level(functional_span(y, params), params.sample_rate, params.level_db)
        return _opensmile_functionals(span, params.sample_rate, kind)
    seg = window(y, params)
    if kind == "logmel":
        return logmel(seg, params)
    mfcc = mfcc_matrix(seg, params)
    if kind == "mfcc_matrix":
        return mfcc
    if kind == "mfcc_mean":
        return mfcc.mean(axis=1).astype(np.float32)
    return mfcc_statistics(mfcc)


def feature_shape(params: Preprocessing, kind: str) -> tuple[int, ...]:
    """Shape :func:`featurize` returns for ``kind`` (a model's ``input_shape``)."""
    parts = split_kind(kind)
    if len(parts) > 1:
        return (sum(feature_shape(params, p)[0] for p in parts),)
    if kind in ENCODER_KINDS:
        from pipeline.core.speech_encoder import ENCODERS

        if kind.endswith("_layers"):
            source = ENCODERS[kind[: -len("_layers")]]
            return (source.layers + 1, 2 * source.width)
        return (2 * ENCODERS[kind].width,)
    return {
        "mfcc_mean": (params.n_mfcc,),
        "mfcc_stats": (4 * params.n_mfcc,),
        "mfcc_matrix": (params.n_mfcc, n_frames(params)),
        "logmel": (params.n_mels, n_frames(params)),
    }.get(kind) or (_OPENSMILE_SIZES[kind],)


def mfcc_matrix(seg: np.ndarray, params: Preprocessing) -> np.ndarray:
    """MFCC of a windowed segment: ``(n_mfcc, T)`` float32 (librosa, HTK-free defaults)."""
    import librosa

    m = librosa.feature.mfcc(
        y=np.asarray(seg, dtype=np.float32), sr=params.sample_rate, n_mfcc=params.n_mfcc,
        n_fft=params.n_fft, hop_length=params.hop_length, n_mels=params.n_mels,
    )
    return m.astype(np.float32)


def mfcc_statistics(mfcc: np.ndarray) -> np.ndarray:
    """Per-coefficient mean and std of the MFCC and of its first delta:
    ``(4 * n_mfcc,)`` float32, the standardisable summary the classical models use."""
    import librosa

    width = min(9, mfcc.shape[1] - (1 - mfcc.shape[1] % 2))
    delta = librosa.feature.delta(mfcc, width=width) if width >= 3 else np.zeros_like(mfcc)
    parts = (mfcc.mean(axis=1), mfcc.std(axis=1), delta.mean(axis=1), delta.std(axis=1))
    return np.concatenate(parts).astype(np.float32)


def logmel(seg: np.ndarray, params: Preprocessing) -> np.ndarray:
    """Log-mel power spectrogram of a windowed segment: ``(n_mels, T)`` float32, dB re
    full-scale power, floored at :data:`LOGMEL_FLOOR_DB` (no per-clip max
    normalisation, so levels are comparable between clips)."""
    import librosa

    mel = librosa.feature.melspectrogram(
        y=np.asarray(seg, dtype=np.float32), sr=params.sample_rate, n_fft=params.n_fft,
        hop_length=params.hop_length, n_mels=params.n_mels,
    )
    amin = 10.0 ** (LOGMEL_FLOOR_DB / 10.0)
    return librosa.power_to_db(mel, ref=1.0, amin=amin, top_db=None).astype(np.float32)


@functools.lru_cache(maxsize=2)
def _smile(kind: str):
    """A configured openSMILE extractor and the lock serialising its use (built once
    per kind and process; the binary and configs ship in the wheel, nothing downloads)."""
    try:
        import opensmile
    except ImportError as err:  # pragma: no cover - opensmile is a declared dependency
        raise FeatureError(f"feature kind {kind!r} needs the 'opensmile' package ({err})") from err
    feature_set = {"egemaps": opensmile.FeatureSet.eGeMAPSv02, "compare": opensmile.FeatureSet.ComParE_2016}[kind]
    smile = opensmile.Smile(feature_set=feature_set, feature_level=opensmile.FeatureLevel.Functionals)
    return smile, threading.Lock()


def _opensmile_functionals(y: np.ndarray, sr: int, kind: str) -> np.ndarray:
    """openSMILE functionals of ``y``: ``(88,)`` or ``(6373,)`` float32, NaN-free."""
    try:
        smile, lock = _smile(kind)
        with lock:  # the dashboard's live thread and a page may call at once
            table = smile.process_signal(y, sr)
    except FeatureError:
        raise
    except Exception as err:
        raise FeatureError(f"openSMILE could not compute {kind!r} ({type(err).__name__}: {err})") from err
    values = np.nan_to_num(table.to_numpy(dtype=np.float32).reshape(-1), nan=0.0, posinf=0.0, neginf=0.0)
    if values.size != _OPENSMILE_SIZES[kind]:
        raise FeatureError(f"openSMILE returned {values.size} values for {kind!r}, expected {_OPENSMILE_SIZES[kind]}")
    return values


# --------------------------------------------------------------------- augmentation
def augment(y: np.ndarray, sr: int, name: str, rng: np.random.Generator) -> np.ndarray:
    """Return an augmented copy of waveform ``y`` (training folds only).

    ``noise``: additive white Gaussian noise at an SNR drawn uniformly from
    :data:`NOISE_SNR_DB`; ``stretch_slow`` / ``stretch_fast``: time stretch by rate
    0.5 / 1.5 (the clip becomes 2x longer / 1.5x shorter; :func:`featurize` re-windows
    it); ``pitch_up`` / ``pitch_down``: +/-2 semitones; ``speed_slow`` / ``speed_fast``:
    speed perturbation by 0.9 / 1.1 (:data:`SPEED_RATES`). Deterministic given ``rng``'s
    state. (Recording conditions: :func:`pipeline.core.degrade.apply`.)
    """
    funcs: dict[str, Callable[[], np.ndarray]] = {
        "noise": lambda: add_noise(y, rng),
        "stretch_slow": lambda: _stretch(y, STRETCH_RATES["stretch_slow"]),
        "stretch_fast": lambda: _stretch(y, STRETCH_RATES["stretch_fast"]),
        "pitch_up": lambda: _pitch(y, sr, PITCH_STEPS),
        "pitch_down": lambda: _pitch(y, sr, -PITCH_STEPS),
        "speed_slow": lambda: _speed(y, sr, SPEED_RATES["speed_slow"]),
        "speed_fast": lambda: _speed(y, sr, SPEED_RATES["speed_fast"]),
    }
    if name not in funcs:
        raise ValueError(f"unknown augmentation {name!r}; choose one of: {', '.join(AUGMENTATIONS)}")
    y = _as_waveform(y)
    return np.ascontiguousarray(funcs[name](), dtype=np.float32)


def add_noise(y: np.ndarray, rng: np.random.Generator, snr_db: float | None = None) -> np.ndarray:
    """``y`` plus white Gaussian noise whose power is the signal power / 10^(SNR/10).
    SNR in dB, drawn from :data:`NOISE_SNR_DB` when not given."""
    y = _as_waveform(y)
    snr = float(rng.uniform(*NOISE_SNR_DB)) if snr_db is None else float(snr_db)
    power = float(np.mean(y.astype(np.float64) ** 2)) if y.size else 0.0
    noise = rng.standard_normal(y.size) * np.sqrt(power / 10.0 ** (snr / 10.0))
    return (y + noise).astype(np.float32)


def _stretch(y: np.ndarray, rate: float) -> np.ndarray:
    import librosa

    if y.size < 2048:
        return y.copy()
    return librosa.effects.time_stretch(y, rate=rate)


def _speed(y: np.ndarray, sr: int, rate: float) -> np.ndarray:
    """Play ``y`` ``rate`` times faster (resampled; pitch moves with tempo)."""
    import librosa

    return librosa.resample(np.asarray(y, dtype=np.float32), orig_sr=sr * rate, target_sr=sr, res_type="soxr_hq")


def _pitch(y: np.ndarray, sr: int, steps: float) -> np.ndarray:
    import librosa

    if y.size < 2048:
        return y.copy()
    return librosa.effects.pitch_shift(y, sr=sr, n_steps=steps)


# ------------------------------------------------------------------- conditioning
def remove_drift(y: np.ndarray, sr: int, cutoff_hz: float = DRIFT_CUTOFF_HZ) -> np.ndarray:
    """``y`` without its DC offset and sub-audio drift: ``(n,)`` float32.

    The mean is subtracted, then a zero-phase (forward-backward, so nothing moves in
    time) 2nd-order Butterworth high-pass at ``cutoff_hz`` removes slow drift (cheap
    USB microphones, bad converters). Speech, whose lowest fundamental is ~60 Hz, is
    unchanged; a constant offset becomes silence, so the silence checks and every
    feature see the sound rather than the offset. Applying it twice changes nothing
    audible. Called once per clip by :func:`pipeline.core.media.load_audio`.
    """
    y = np.nan_to_num(np.asarray(y, dtype=np.float64).reshape(-1), nan=0.0, posinf=0.0, neginf=0.0)
    if y.size == 0:
        return y.astype(np.float32)
    y = y - y.mean()
    if 0.0 < cutoff_hz < sr / 2.0 and y.size > 64:
        from scipy.signal import butter, sosfiltfilt

        sos = butter(2, cutoff_hz, btype="highpass", fs=sr, output="sos")
        # odd-extend by three periods of the cut-off (scipy's default, 9 samples, leaves
        # an edge transient of up to +50% on a tone that starts or stops abruptly)
        y = sosfiltfilt(sos, y, padlen=min(y.size - 1, int(3 * sr / cutoff_hz)))
    return y.astype(np.float32)


def frame_levels(y: np.ndarray, sr: int, frame_s: float = 0.02) -> np.ndarray:
    """RMS level in dBFS of consecutive ``frame_s``-long frames of ``y``: ``(n_frames,)``
    float64 (a last partial frame counts as a frame; -240 dB for digital zero)."""
    y = np.nan_to_num(np.asarray(y, dtype=np.float64).reshape(-1), nan=0.0, posinf=0.0, neginf=0.0)
    step = max(1, int(round(frame_s * sr)))
    if y.size == 0:
        return np.zeros(0)
    pad = (-y.size) % step
    frames = np.pad(y, (0, pad)).reshape(-1, step)
    sizes = np.full(len(frames), step)
    sizes[-1] = step - pad
    rms = np.sqrt((frames ** 2).sum(axis=1) / sizes)
    return 20.0 * np.log10(np.maximum(rms, 1e-12))


def energy_segments(y: np.ndarray, sr: int, frame_s: float = 0.02) -> list[tuple[float, float]]:
    """Stretches of ``y`` loud enough to hold a voice: runs of ``frame_s`` frames whose
    level is within :data:`SPEECH_RANGE_DB` of the loudest frame of ``y`` and above
    :data:`SPEECH_FLOOR_DB`, as ``(start_s, end_s)``. Zero padding and silence never
    count; steady noise as loud as speech does (that is what the VAD is for)."""
    levels = frame_levels(y, sr, frame_s)
    if levels.size == 0:
        return []
    voiced = levels >= max(float(levels.max()) - SPEECH_RANGE_DB, SPEECH_FLOOR_DB)
    step, n = max(1, int(round(frame_s * sr))), np.size(y)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]])))
    return [(a * step / sr, min(b * step, n) / sr) for a, b in zip(edges[::2], edges[1::2])]


@dataclass(frozen=True)
class VoiceActivity:
    """Where a clip holds the person's voice: ``segments`` ``(start_s, end_s)`` in the
    clip's seconds, found by ``method`` (``"silero vad"`` or ``"energy"``)."""

    segments: tuple[tuple[float, float], ...]
    method: str

    def seconds(self, start: float = 0.0, end: float = float("inf")) -> float:
        """Seconds of voice between ``start`` and ``end`` (clip seconds)."""
        return float(sum(max(0.0, min(e, end) - max(s, start)) for s, e in self.segments))


#: How :func:`voice_activity` finds the voice: ``"energy"`` (the level,
#: :func:`energy_segments`) or ``"vad"`` (Silero VAD where it hears speech, else the
#: level). Setting ``AVE_VOICE_ACTIVITY``; read at each call. ``energy`` is the default
#: for now: Silero takes the first 0.4-2.7 s of steady 140-250 Hz harmonic tones (the
#: stand-in voices of the tests' tiny bundles) for speech, so "vad" would turn those
#: analyses into partial, arbitrary counts. It becomes the default together with the
#: voice issue's "no speech" check, once those fixtures speak with synthetic voices.
VOICE_ACTIVITY_DEFAULT: str = "energy"


def voice_activity(y: np.ndarray, sr: int, method: str | None = None, *,
                   probabilities: np.ndarray | None = None) -> VoiceActivity:
    """Where the whole clip ``y`` ((n,) mono at ``sr`` Hz) holds the person's voice: what
    "too short" is measured on, the one hook for voice activity.

    ``method`` (default the ``AVE_VOICE_ACTIVITY`` setting, else
    :data:`VOICE_ACTIVITY_DEFAULT`): ``"energy"`` counts the loud stretches
    (:func:`energy_segments`): padding and silence never count, steady noise does.
    ``"vad"``: Silero VAD (:func:`pipeline.core.vad.speech_segments`, unpadded) counts the
    speech when it hears any, at any level (a voice too quiet for the loud stretches
    counts), so noise, music or a tone around the words does not count;
    when it hears none (silence, a tone, noise, a snippet too short for it, a shouted take
    it misses), whether there is a voice at all is not decided here (that is the "no
    speech" check of :mod:`pipeline.core.vad`) and the loud stretches count instead.
    ``probabilities``: Silero's per-frame scores of ``y``
    (:func:`pipeline.core.vad.speech_probabilities`) when the caller already has them (the
    costly part: about 1 ms per 32 ms of sound), so a clip is scored once.
    """
    import os

    method = method or os.environ.get("AVE_VOICE_ACTIVITY", "") or VOICE_ACTIVITY_DEFAULT
    if method not in ("energy", "vad"):
        raise ValueError(f"voice activity method must be 'energy' or 'vad', not {method!r}")
    loud = energy_segments(y, sr)
    if method == "energy":
        return VoiceActivity(tuple(loud), "energy")
    try:  # (Silero first, even when nothing is loud: it hears a quiet voice at any level)
        from pipeline.core import vad

        found = (vad.speech_segments(np.asarray(y, np.float32), int(sr), pad_s=0.0) if probabilities is None
                 else vad.segments_from_probabilities(probabilities, np.size(y) / sr, pad_s=0.0))
    except ImportError:  # onnxruntime or the Silero model package not installed: the level alone
        found = []
    if found:
        return VoiceActivity(tuple((float(s), float(e)) for s, e in found), "silero vad")
    return VoiceActivity(tuple(loud), "energy")


def window_span(y: np.ndarray, params: Preprocessing) -> tuple[float, float]:
    """``(start_s, end_s)``: the part of clip ``y`` that :func:`window` cuts out (the
    rest of the window is zero padding)."""
    n, sr = np.size(y), params.sample_rate
    start = int(round(params.offset * sr))
    if n <= start:
        start = 0
    return start / sr, min(start + params.window_samples, n) / sr


#: A voice's pitch moves. The median absolute deviation of F0 (YIN) over the VAD speech
#: segments was at least 0.52 semitones in 120 real RAVDESS clips (median 2.0); a held
#: pure tone that Silero takes for speech (loud, 170-210 Hz) measures about 0.01.
STEADY_PITCH_SEMITONES: float = 0.1

NO_SPEECH = "no speech"
#: Most seconds of heard speech whose pitch :func:`no_speech_reason` measures (evenly
#: spread 2 s pieces of it on longer clips): plenty to tell a voice from a held tone,
#: and YIN's memory stays bounded (its frames over 4 minutes of speech took 0.5 GB).
PITCH_CHECK_SECONDS: float = 20.0


def pitch_spread(y: np.ndarray, sr: int) -> float:
    """Median absolute deviation, in semitones, of the fundamental frequency (librosa's
    YIN, 60-600 Hz, 1024-sample frames) over the frames of ``y`` within 20 dB of its
    loudest: how much the pitch moves. NaN for input under one frame."""
    import librosa

    y = _as_waveform(y)
    if y.size < 1024:
        return float("nan")
    f0 = librosa.yin(y, fmin=60, fmax=600, sr=sr, frame_length=1024)
    rms = librosa.feature.rms(y=y, frame_length=1024, hop_length=256)[0]
    n = min(len(f0), len(rms))
    f0 = f0[:n][rms[:n] > 0.1 * rms[:n].max()]
    if f0.size == 0:
        return float("nan")
    return float(np.median(np.abs(12.0 * np.log2(f0 / np.median(f0)))))


def no_speech_reason(y: np.ndarray, sr: int, *, probabilities: np.ndarray | None = None) -> str:
    """Why ``y`` holds no voice, in plain words, or ``""`` when it does.

    Silero VAD (:func:`pipeline.core.vad.speech_segments`, segments of 64 ms and longer, so
    shouted takes it scores low still count) must hear speech, and the pitch of what
    it heard must move (:data:`STEADY_PITCH_SEMITONES`): a held tone near a voice's
    pitch fools Silero, not this. ``probabilities``: as for :func:`voice_activity`.
    """
    from pipeline.core import vad

    segments = (vad.speech_segments(np.asarray(y, np.float32), int(sr), min_speech_s=0.064) if probabilities is None
                else vad.segments_from_probabilities(probabilities, np.size(y) / sr, min_speech_s=0.064))
    if not segments:
        return "Silero VAD heard no voice (music, a tone, noise or silence?)"
    heard = np.concatenate([y[int(a * sr):int(b * sr)] for a, b in segments])
    limit, piece = int(PITCH_CHECK_SECONDS * sr), int(2.0 * sr)
    if heard.size > limit:  # long clips: evenly spread 2 s pieces of what was heard
        starts = np.linspace(0, heard.size - piece, max(1, limit // piece)).astype(int)
        heard = np.concatenate([heard[s:s + piece] for s in starts])
    spread = pitch_spread(heard, sr)
    if np.isfinite(spread) and spread < STEADY_PITCH_SEMITONES:
        return f"a steady tone, not a voice: its pitch moves {spread:.2f} semitones, a voice's several"
    return ""


def speech_seconds(y: np.ndarray, sr: int) -> float:
    """Seconds of voice in ``y`` (:func:`voice_activity`)."""
    return voice_activity(y, sr).seconds()


def min_speech_seconds(params: Preprocessing) -> float:
    """The least speech a window of ``params`` must hold: :data:`MIN_SPEECH_SECONDS`,
    at most half the window (``params.duration``)."""
    return float(min(MIN_SPEECH_SECONDS, 0.5 * params.duration))


def too_short(seconds: float, needed: float, what: str = "speech") -> str:
    """The abstention status: ``"too short: 0.3 s of speech, at least 1.0 s needed"``
    (hundredths under 0.1 s, so a 20 ms tap does not read "0.0 s")."""
    said = f"{seconds:.2f}" if 0.0 < seconds < 0.095 else f"{seconds:.1f}"
    return f"too short: {said} s of {what}, at least {needed:.1f} s needed"


# ------------------------------------------------------------------------ utilities
def is_silent(y: np.ndarray, threshold_db: float = -45.0, frame: int = 2048) -> bool:
    """True when no ``frame``-sample stretch of ``y`` has an RMS level above
    ``threshold_db`` dB re full scale (so a short word in a long pause still counts)."""
    y = np.nan_to_num(np.asarray(y, dtype=np.float64).reshape(-1), nan=0.0, posinf=0.0, neginf=0.0)
    if y.size == 0:
        return True
    n = max(1, y.size // frame)
    frames = y[: n * frame].reshape(n, -1) if y.size >= frame else y.reshape(1, -1)
    rms = np.sqrt(np.mean(frames ** 2, axis=1))
    level = 20.0 * np.log10(max(float(rms.max()), 1e-12))
    return level < threshold_db


def speaker_normalise(X: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    """Standardise each speaker's feature rows by that speaker's own mean and std.

    ``X`` is ``(n_clips, n_features)``, ``speakers`` ``(n_clips,)``; returns float64 of
    ``X``'s shape. It uses no labels, so applying it to test speakers is legitimate,
    but it needs several clips of the same speaker (their statistics): it cannot serve
    a single uploaded clip. Constant features of a speaker map to 0.
    """
    X = np.asarray(X, dtype=np.float64)
    speakers = np.asarray(speakers)
    if X.ndim != 2 or speakers.shape != (X.shape[0],):
        raise ValueError(f"need X (n, d) and speakers (n,), got {X.shape} and {speakers.shape}")
    out = np.empty_like(X)
    for s in np.unique(speakers):
        rows = speakers == s
        sd = X[rows].std(axis=0)
        out[rows] = (X[rows] - X[rows].mean(axis=0)) / np.where(sd > 1e-8, sd, 1.0)
    return out


def warm_up(params: Preprocessing | None = None) -> None:
    """Run each librosa kernel the project uses once on a tiny tone (MFCC, deltas, RMS,
    trimming, YIN pitch), so numba compiles them and writes its on-disk cache now (~17 s
    on a fresh environment) rather than on a user's first request.

    Call it in one process **before** starting processes that use librosa (feature
    workers, test workers, the dashboard's analysis child): numba writes each
    ``guvectorize(cache=True)`` kernel as two cache files, non-atomically, so processes
    compiling the same kernel at once can leave a mismatched pair that crashes the next
    process with a segmentation fault (numba issue #10128, librosa issue #1998; seen
    here in ``librosa.yin`` under two test workers on a fresh environment)."""
    params = params or Preprocessing()
    t = np.arange(params.sample_rate // 2) / params.sample_rate
    tone = (0.1 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)
    mfcc_statistics(mfcc_matrix(tone, params))
    functional_span(tone, replace(params, speech_span="trim"))
    pitch_spread(tone, params.sample_rate)


def _as_waveform(y: np.ndarray) -> np.ndarray:
    """Validate a waveform: 1-D (or squeezable) finite float32; raise a clear error."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        arr = arr.squeeze()
        if arr.ndim != 1:
            raise FeatureError(f"expected a mono waveform (1-D array), got shape {np.asarray(y).shape}")
    if arr.size == 0:
        raise FeatureError("the waveform is empty (0 samples)")
    if not np.issubdtype(arr.dtype, np.number):
        raise FeatureError(f"expected a numeric waveform, got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    if not np.all(np.isfinite(arr)):
        arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
    return arr
