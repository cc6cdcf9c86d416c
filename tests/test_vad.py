"""Voice activity detection (Silero VAD's sequence model under ONNX Runtime): no speech in tones, noise and
chords; speech in a synthetic voice and, when the shared data is present, a real RAVDESS
clip; the segment logic on hand-made probabilities; input checks; no import-time load."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from pipeline.core import vad

SR = 48_000


def _t(seconds: float = 3.0, sr: int = SR) -> np.ndarray:
    return np.arange(int(seconds * sr)) / sr


def _tone(freq: float = 440.0, sr: int = SR) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * freq * _t(sr=sr))).astype(np.float32)


def _noise(seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(_t().size)).astype(np.float32)


def _chord(root: float = 261.63) -> np.ndarray:
    """A music-like signal: a major triad with harmonics, two notes struck, decaying."""
    t = _t()
    y = np.zeros_like(t)
    for onset in (0.0, 1.5):
        env = np.where(t >= onset, np.exp(-(t - onset) * 1.5), 0.0)
        for ratio in (1.0, 1.26, 1.5):
            for k, amp in enumerate((1.0, 0.5, 0.25), start=1):
                y += env * amp * np.sin(2 * np.pi * root * ratio * k * t)
    return (0.1 * y / np.abs(y).max()).astype(np.float32)


def _synthetic_voice(emotion: str = "neutral", seed: int = 3):
    from pipeline.core.synth import profiles, voice

    actor = voice.random_actor(np.random.default_rng(seed), female=bool(seed % 2))
    return voice.synthesize("01", profiles.voice_profile(emotion, "normal"), actor,
                            np.random.default_rng(seed))


@pytest.mark.parametrize("name, signal", [
    ("tone 440 Hz", lambda: _tone(440.0)),
    ("tone 150 Hz", lambda: _tone(150.0)),
    ("white noise", _noise),
    ("chord", _chord),
    ("silence", lambda: np.zeros(_t().size, dtype=np.float32)),
])
def test_no_speech_in_tones_noise_and_music(name, signal):
    y = signal()
    assert vad.speech_seconds(y, SR) < 0.3, name
    assert not vad.has_speech(y, SR)
    assert vad.speech_only(y, SR).size < 0.3 * SR


@pytest.mark.parametrize("emotion", ["neutral", "angry", "sad"])
def test_synthetic_voice_is_speech_where_it_speaks(emotion):
    utt = _synthetic_voice(emotion)
    segments = vad.speech_segments(utt.samples, utt.sample_rate)
    assert segments and vad.has_speech(utt.samples, utt.sample_rate)
    start, end = segments[0][0], segments[-1][1]
    # the detected speech brackets the sentence within ~0.3 s (padding 0.1 s)
    assert abs(start - utt.onset_s) < 0.3 and abs(end - utt.offset_s) < 0.3
    assert 0.8 * (utt.offset_s - utt.onset_s) < vad.speech_seconds(utt.samples, utt.sample_rate)


def test_real_ravdess_clip_is_speech(shared_data):
    import soundfile as sf

    path = shared_data / "ravdess-speech" / "Actor_09" / "03-01-05-02-01-01-09.flac"
    y, sr = sf.read(path, dtype="float32")
    y = y.mean(axis=1) if y.ndim > 1 else y
    segments = vad.speech_segments(y, sr)
    assert segments and vad.has_speech(y, sr)
    total = vad.speech_seconds(y, sr)
    assert 1.0 < total < y.size / sr  # RAVDESS clips: ~1 s of silence around ~2 s of speech
    speech = vad.speech_only(y, sr)
    assert speech.dtype == y.dtype and abs(speech.size / sr - total) < 0.01


def test_speech_only_concatenates_segments_at_the_input_rate():
    utt = _synthetic_voice()
    y, sr = utt.samples, utt.sample_rate
    segments = vad.speech_segments(y, sr)
    speech = vad.speech_only(y, sr)
    assert speech.ndim == 1 and speech.dtype == np.float32
    assert abs(speech.size - sum(round(e * sr) - round(s * sr) for s, e in segments)) <= len(segments)
    assert speech.size < y.size
    s0 = int(round(segments[0][0] * sr))
    assert np.array_equal(speech[:100], y[s0:s0 + 100])
    assert vad.speech_only(np.zeros(SR, dtype=np.int16), SR).dtype == np.float32  # empty, float


def test_results_are_deterministic_and_rate_independent():
    utt = _synthetic_voice("happy", seed=4)
    a = vad.speech_probabilities(utt.samples, utt.sample_rate)
    b = vad.speech_probabilities(utt.samples, utt.sample_rate)
    assert np.array_equal(a, b)  # the model's recurrent state is reset per call
    assert a.shape == (-(-round(utt.samples.size / 3) // vad.FRAME_SAMPLES),)
    assert a.min() >= 0.0 and a.max() <= 1.0
    from scipy.signal import resample_poly

    y16 = resample_poly(utt.samples, 1, 3).astype(np.float32)
    seg48 = vad.speech_segments(utt.samples, utt.sample_rate)
    seg16 = vad.speech_segments(y16, 16_000)
    assert len(seg48) == len(seg16)
    assert all(abs(p - q) < 0.07 for s, t in zip(seg48, seg16) for p, q in zip(s, t))


def _probs(*runs: tuple[float, float]) -> np.ndarray:
    """Per-frame probabilities from (probability, seconds) runs."""
    return np.concatenate([np.full(round(sec / vad.FRAME_S), p) for p, sec in runs])


def test_segments_from_probabilities_hysteresis_and_durations():
    f = vad.FRAME_S
    seg = vad.segments_from_probabilities
    probs = _probs((0.0, 32 * f), (0.9, 32 * f), (0.0, 32 * f))
    assert seg(probs, 96 * f, pad_s=0.0) == [(round(32 * f, 4), round(64 * f, 4))]
    assert seg(probs, 96 * f, pad_s=0.1) == [(round(32 * f - 0.1, 4), round(64 * f + 0.1, 4))]
    # too short to count
    assert seg(_probs((0.0, 1.0), (0.9, 0.1), (0.0, 1.0)), 2.1) == []
    # a short pause does not split; a long one does
    short = _probs((0.9, 1.0), (0.0, 0.16), (0.9, 1.0))
    assert len(seg(short, short.size * f, pad_s=0.0)) == 1
    long = _probs((0.9, 1.0), (0.0, 0.64), (0.9, 1.0))
    assert len(seg(long, long.size * f, pad_s=0.0)) == 2
    # hysteresis: between threshold - 0.15 and threshold keeps a segment open
    held = _probs((0.9, 0.5), (0.4, 1.0), (0.0, 1.0))
    assert seg(held, held.size * f, pad_s=0.0) == [(0.0, round(round(1.5 / f) * f, 4))]
    # speech running to the end is closed at the signal's duration; padding is clipped
    tail = _probs((0.0, 1.0), (0.9, 1.0))
    s, e = seg(tail, 2.0, pad_s=0.2)[0]
    assert e == 2.0 and s == pytest.approx(round(1.0 / f) * f - 0.2, abs=1e-3)
    # padding that makes two segments overlap merges them
    close = _probs((0.9, 0.5), (0.0, 0.35), (0.9, 0.5))
    assert len(seg(close, close.size * f, pad_s=0.2)) == 1
    assert seg(np.zeros(0), 0.0) == []


def test_input_checks():
    with pytest.raises(ValueError, match="mono"):
        vad.speech_segments(np.zeros((2, 1000)), SR)
    with pytest.raises(ValueError, match="NaN"):
        vad.speech_segments(np.full(1000, np.nan), SR)
    with pytest.raises(ValueError, match="sample rate"):
        vad.speech_segments(np.zeros(1000), 0)
    with pytest.raises(ValueError, match="threshold"):
        vad.speech_segments(np.zeros(1000), SR, threshold=1.5)
    assert vad.speech_segments(np.zeros(0), SR) == []
    assert vad.speech_probabilities(np.zeros(0), SR).shape == (0,)
    assert vad.speech_probabilities(np.zeros(100), 8_000).shape == (1,)  # padded last frame
    assert vad.speech_seconds(np.zeros(10, dtype=np.int16), 16_000) == 0.0


def test_import_pipeline_does_not_load_the_model():
    code = ("import sys, pipeline, pipeline.entry.cli; "
            "assert 'onnxruntime' not in sys.modules and 'pipeline.core.vad' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
    code = "import sys, pipeline.core.vad; assert 'onnxruntime' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_model_file_comes_from_the_wheel_without_its_code_or_torch():
    code = ("import sys, numpy as np; from pipeline.core import vad; "
            "p = vad.speech_probabilities(np.zeros(16000, np.float32), 16000); "
            "assert p.shape == (32,) and vad.model_path().name == 'silero_vad_16k_sequence.onnx'; "
            "assert 'silero_vad' not in sys.modules and 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_long_signals_are_scored_in_blocks_as_one_stream():
    """Blocks of BLOCK_FRAMES frames carry the recurrent state over: a signal longer
    than one block gets the probabilities it gets scored frame block by frame block,
    and a block boundary leaves no mark (the state is the same as without it)."""
    utt = _synthetic_voice("happy", seed=5)
    y = np.tile(utt.samples.astype(np.float32), 8)
    sr = utt.sample_rate
    whole = vad.speech_probabilities(y, sr)
    assert whole.size > vad.BLOCK_FRAMES
    small = vad.BLOCK_FRAMES
    try:
        vad.BLOCK_FRAMES = 7  # many boundaries
        chopped = vad.speech_probabilities(y, sr)
    finally:
        vad.BLOCK_FRAMES = small
    np.testing.assert_allclose(chopped, whole, atol=1e-5)


def test_the_speech_found_does_not_depend_on_the_recording_level():
    """Silero scores the waveform scaled to one peak (vad.VAD_PEAK): the same voice at
    -40 dB, as recorded and at full scale gets the same scores, so a quiet recording is
    not "no speech" for being quiet."""
    utt = _synthetic_voice("neutral")
    y, sr = utt.samples.astype(np.float32), utt.sample_rate
    base = vad.speech_probabilities(y, sr)
    for gain in (0.01, 1.0 / float(np.abs(y).max())):
        assert np.allclose(vad.speech_probabilities(y * np.float32(gain), sr), base, atol=1e-3), gain
    assert vad.has_speech(y * np.float32(0.01), sr)
    # and "too short" counts that speech too, though no frame of it is loud
    from pipeline.core import audio

    quiet = y * np.float32(0.0005)
    assert not audio.energy_segments(quiet, sr)
    heard = audio.voice_activity(quiet, sr, "vad")
    assert heard.method == "silero vad" and abs(heard.seconds() - audio.voice_activity(y, sr, "vad").seconds()) < 0.05
