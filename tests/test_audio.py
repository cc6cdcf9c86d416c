"""pipeline.core.audio: the window, feature shapes and units, augmentations, silence."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from pipeline.core import audio
from pipeline.core.preprocessing import Preprocessing

P = Preprocessing()
SR = P.sample_rate


def tone(freq: float = 440.0, seconds: float = 4.0, amp: float = 0.3, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def voice(seconds: float = 3.0, f0: float = 140.0, sr: int = SR, seed: int = 0) -> np.ndarray:
    """A crude voiced signal (harmonics with a slow pitch glide and syllable envelope)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.5 * t))) / sr
    y = sum(np.sin(k * phase) / k for k in range(1, 12))
    env = 0.5 * (1 - np.cos(2 * np.pi * 3 * t)) * (t > 0.3) * (t < seconds - 0.3)
    return (0.2 * y * env + 1e-3 * rng.standard_normal(t.size)).astype(np.float32)


def dominant_freq(y: np.ndarray, sr: int = SR) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    return float(np.fft.rfftfreq(y.size, 1 / sr)[spectrum.argmax()])


# -------------------------------------------------------------------------- window
def test_window_takes_duration_from_offset() -> None:
    y = np.arange(5 * SR, dtype=np.float32)
    w = audio.window(y, P)
    assert w.shape == (P.window_samples,) and w.dtype == np.float32
    start = int(round(P.offset * SR))
    np.testing.assert_array_equal(w, y[start:start + P.window_samples])


def test_window_pads_short_clip_with_zeros_at_the_end() -> None:
    y = np.ones(2 * SR, dtype=np.float32)  # ends 1.5 s into the 3 s window
    w = audio.window(y, P)
    kept = 2 * SR - int(round(P.offset * SR))
    assert np.all(w[:kept] == 1) and np.all(w[kept:] == 0)


def test_window_of_clip_shorter_than_offset_starts_at_zero() -> None:
    y = np.ones(int(0.2 * SR), dtype=np.float32)
    w = audio.window(y, P)
    assert w.shape == (P.window_samples,)
    assert np.all(w[: y.size] == 1) and np.all(w[y.size:] == 0)


# ------------------------------------------------------------------------ features
@pytest.mark.parametrize("kind", ["mfcc_mean", "mfcc_stats", "mfcc_matrix", "logmel"])
def test_librosa_feature_shapes_and_purity(kind: str) -> None:
    y = voice(4.0)
    a = audio.featurize(y, P, kind)
    assert a.shape == audio.feature_shape(P, kind)
    assert a.dtype == np.float32 and np.all(np.isfinite(a))
    assert audio.FEATURE_KINDS[kind].ndim == a.ndim
    np.testing.assert_array_equal(a, audio.featurize(y.copy(), P, kind))  # same input -> same output


def test_matrix_frames_and_mean_agree() -> None:
    y = voice(4.0)
    m = audio.featurize(y, P, "mfcc_matrix")
    assert m.shape == (40, 1 + P.window_samples // P.hop_length) == (40, 130)
    np.testing.assert_allclose(audio.featurize(y, P, "mfcc_mean"), m.mean(axis=1), rtol=1e-5, atol=1e-4)
    stats = audio.featurize(y, P, "mfcc_stats")
    np.testing.assert_allclose(stats[40:80], m.std(axis=1), rtol=1e-4, atol=1e-3)


def test_logmel_is_in_decibels() -> None:
    y = tone(1000.0, amp=0.01)
    quiet = audio.featurize(y, P, "logmel")
    loud = audio.featurize(y * 10, P, "logmel")  # +20 dB in amplitude
    band = quiet.mean(axis=1).argmax()
    assert loud[band].mean() - quiet[band].mean() == pytest.approx(20.0, abs=0.01)
    silent = audio.featurize(np.zeros(4 * SR, dtype=np.float32), P, "logmel")
    np.testing.assert_allclose(silent, audio.LOGMEL_FLOOR_DB, atol=1e-3)


def test_mfcc_times_are_seconds_from_clip_start() -> None:
    times = audio.mfcc_times(130, P)
    assert times.shape == (130,)
    assert times[0] == pytest.approx(P.offset)
    assert np.diff(times) == pytest.approx(np.full(129, P.hop_length / SR))


def test_opensmile_functionals_run_offline() -> None:
    y = voice(2.5)
    for kind, size in (("egemaps", 88), ("compare", 6373)):
        f = audio.featurize(y, P, kind)
        assert f.shape == (size,) == audio.feature_shape(P, kind)
        assert np.all(np.isfinite(f)) and np.any(f != 0)


def test_functional_span_trims_silence() -> None:
    y = np.concatenate([np.zeros(SR, np.float32), voice(2.0), np.zeros(SR, np.float32)])
    span = audio.functional_span(y, P)
    assert 1.2 * SR < span.size < 2.2 * SR


@pytest.mark.parametrize("bad", [np.zeros(0), np.zeros((2, 100, 3)), np.array(["a", "b"])])
def test_bad_waveform_is_a_clear_error(bad: np.ndarray) -> None:
    with pytest.raises(audio.FeatureError):
        audio.featurize(bad, P, "mfcc_mean")


def test_unknown_kind_is_a_clear_error() -> None:
    with pytest.raises(audio.FeatureError, match="unknown audio feature kind"):
        audio.featurize(voice(1.0), P, "chroma")


# -------------------------------------------------------------------- augmentation
def test_noise_snr_is_in_range_and_seeded() -> None:
    y = tone(seconds=3.0)
    for seed in range(5):
        z = audio.augment(y, SR, "noise", np.random.default_rng(seed))
        snr = 10 * np.log10(np.mean(y.astype(np.float64) ** 2) / np.mean((z - y).astype(np.float64) ** 2))
        assert 14.8 < snr < 30.2
    a = audio.augment(y, SR, "noise", np.random.default_rng(1))
    b = audio.augment(y, SR, "noise", np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)


def test_time_stretch_changes_length() -> None:
    y = tone(seconds=2.0)
    slow = audio.augment(y, SR, "stretch_slow", np.random.default_rng(0))
    fast = audio.augment(y, SR, "stretch_fast", np.random.default_rng(0))
    assert slow.size == pytest.approx(2 * y.size, rel=0.02)
    assert fast.size == pytest.approx(y.size / 1.5, rel=0.02)
    assert audio.featurize(slow, P, "mfcc_matrix").shape == (40, 130)  # re-windowed


def test_pitch_up_is_two_semitones() -> None:
    y = tone(440.0, seconds=2.0)
    z = audio.augment(y, SR, "pitch_up", np.random.default_rng(0))
    assert z.size == y.size
    assert dominant_freq(z) == pytest.approx(440.0 * 2 ** (2 / 12), rel=0.01)


def test_unknown_augmentation_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown augmentation"):
        audio.augment(tone(), SR, "reverse", np.random.default_rng(0))


# ------------------------------------------------------------------------- silence
def test_is_silent() -> None:
    rng = np.random.default_rng(0)
    assert audio.is_silent(np.zeros(SR))
    assert audio.is_silent(np.zeros(0))
    assert audio.is_silent(1e-4 * rng.standard_normal(SR))  # about -80 dBFS
    assert not audio.is_silent(tone(amp=0.1))
    burst = np.zeros(5 * SR, dtype=np.float32)
    burst[SR: SR + SR // 5] = tone(seconds=0.2, amp=0.1)
    assert not audio.is_silent(burst)  # a short word in a long pause is not silence


# ------------------------------------------------------------------ real recordings
@pytest.mark.skipif(not os.environ.get("AVE_SHARED_DATA"), reason="AVE_SHARED_DATA not set")
def test_real_ravdess_clip() -> None:
    from pipeline.core import media

    wavs = sorted(Path(os.environ["AVE_SHARED_DATA"]).glob("ravdess-speech/Actor_*/*.wav"))
    if not wavs:
        pytest.skip("no RAVDESS speech under AVE_SHARED_DATA")
    y = media.load_audio(wavs[0], SR)
    assert not audio.is_silent(y)
    assert audio.featurize(y, P, "mfcc_matrix").shape == (40, 130)
    assert audio.featurize(y, P, "compare").shape == (6373,)


def test_speaker_normalise_uses_each_speakers_own_statistics() -> None:
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(5, 2, (6, 3)), rng.normal(-3, 0.5, (4, 3))])
    speakers = np.array(["a"] * 6 + ["b"] * 4)
    Z = audio.speaker_normalise(X, speakers)
    for s in "ab":
        np.testing.assert_allclose(Z[speakers == s].mean(axis=0), 0, atol=1e-12)
        np.testing.assert_allclose(Z[speakers == s].std(axis=0), 1, atol=1e-12)
    with pytest.raises(ValueError):
        audio.speaker_normalise(X, speakers[:3])
