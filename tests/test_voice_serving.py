"""Per-speaker normalisation, recording conditions and a voice bundle that uses them:
the answer says which normalisation it used, and a note keeps it from being "sure"."""
from __future__ import annotations

import functools
import io

import numpy as np
import pytest
import soundfile as sf

from pipeline.core import calibration, degrade
from pipeline.core.preprocessing import Preprocessing
from pipeline.serve import conditions

SR = 16000


@functools.lru_cache(maxsize=None)
def _take(seed: int, emotion: str = "happy") -> np.ndarray:
    """A synthetic take at 16 kHz (cached: callers must not change it)."""
    import librosa

    from pipeline.core.synth import profiles, voice

    actor = voice.random_actor(np.random.default_rng(seed), female=bool(seed % 2))
    utt = voice.synthesize("01", profiles.voice_profile(emotion, "strong"), actor, np.random.default_rng(seed))
    return librosa.resample(utt.samples, orig_sr=utt.sample_rate, target_sr=SR).astype(np.float32)


# --------------------------------------------------------------------------- calibration
def test_leave_one_out_standardise_uses_only_the_other_rows():
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=(12, 5))
    out = calibration.leave_one_out_standardise(X)
    for i in range(len(X)):
        rest = np.delete(X, i, axis=0)
        np.testing.assert_allclose(out[i], (X[i] - rest.mean(0)) / rest.std(0), rtol=1e-9)
    few = calibration.leave_one_out_standardise(X[:4])  # too few rows for a spread: the mean only
    np.testing.assert_allclose(few[0], X[0] - X[1:4].mean(0))
    assert np.all(calibration.leave_one_out_standardise(X[:1]) == 0)


def test_normalise_speakers_neutral_shifts_by_the_calm_takes_only():
    X = np.array([[1.0, 10.0], [3.0, 30.0], [5.0, 50.0], [100.0, 0.0], [102.0, 2.0]])
    speakers = np.array(["a", "a", "a", "b", "b"])
    calm = np.array([True, False, False, False, False])  # b gave no calm take
    out = calibration.normalise_speakers(X, speakers, "neutral", calm)
    np.testing.assert_allclose(out[:3], X[:3] - X[0])
    np.testing.assert_allclose(out[3:], X[3:])
    assert np.array_equal(calibration.normalise_speakers(X, speakers, "none"), X)
    with pytest.raises(ValueError):
        calibration.normalise_speakers(X, speakers, "loud")
    stats = calibration.SpeakerStats.from_features(X[:3], "session", with_std=True)
    np.testing.assert_allclose(stats.apply(X[:3]).mean(0), 0, atol=1e-12)
    with pytest.raises(ValueError, match="features"):
        stats.apply(np.zeros((1, 3)))


# --------------------------------------------------------------------------- conditions
def test_degradations_keep_length_and_meet_their_snr():
    rng = np.random.default_rng(0)
    y = _take(1)
    for name in degrade.CONDITIONS:
        out = degrade.apply(y, SR, name, rng, others=[_take(2), _take(3), _take(4)])
        assert out.shape == y.shape and out.dtype == np.float32 and np.isfinite(out).all(), name
    noisy = degrade.add_at_snr(y, rng.standard_normal(len(y)), 5.0)
    snr = 10 * np.log10(degrade._power(y) / np.mean((noisy - y) ** 2))
    assert abs(snr - 5.0) < 0.5
    phone = degrade.telephone(y, SR)
    spectrum = np.abs(np.fft.rfft(phone)) ** 2
    freqs = np.fft.rfftfreq(len(phone), 1 / SR)
    assert spectrum[freqs > 4200].sum() < 1e-3 * spectrum.sum()
    with pytest.raises(ValueError):
        degrade.apply(y, SR, "underwater", rng)


def test_conditions_notice_noise_and_several_voices():
    rng = np.random.default_rng(3)
    y = np.concatenate([np.zeros(SR // 2, np.float32), _take(5), np.zeros(SR // 2, np.float32)])
    clean = conditions.assess(y, SR)
    assert clean.notes == [] and clean.snr_db > conditions.MIN_SNR_DB
    # digital silence between the words: the floor is 16-bit quantisation, not -240 dB
    assert clean.snr_db <= clean.speech_level_db - conditions.NOISE_FLOOR_DB + 1e-9
    assert conditions.assess(y * np.float32(1e-4), SR).notes[0].startswith("very quiet recording (below -65 dBFS)")
    noisy = conditions.assess(degrade.add_at_snr(y, rng.standard_normal(len(y)), 3.0), SR)
    assert any(n.startswith("noisy") for n in noisy.notes)
    crowd = np.sum([np.roll(_take(s), 3000 * s)[: len(y)] if len(_take(s)) >= len(y)
                    else np.resize(_take(s), len(y)) for s in range(6, 12)], axis=0)
    babble = conditions.assess(degrade.add_at_snr(y, crowd, 3.0), SR)
    assert babble.notes and babble.notes[0].startswith("noisy"), babble


def test_feature_reference_flags_what_lies_far_from_the_training_rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 20)) @ rng.normal(size=(20, 40))
    ref = conditions.FeatureReference.fit(X, k=8)
    inside = ref.distance(X)
    assert np.mean(inside <= ref.limit) >= 0.98
    far = X.mean(0) + 8 * X.std(0)
    assert ref.distance(far)[0] > ref.limit
    c = conditions.assess(_take(1), SR, far, ref)
    assert conditions.UNUSUAL in c.notes and c.distance > c.distance_limit


# --------------------------------------------------------------------------- a voice bundle
@pytest.fixture(scope="module")
def voice_bundle(tmp_path_factory):
    """MFCC statistics + logistic regression (none, session, neutral) on three synthetic
    speakers, with a feature reference: the shape of the real voice bundle, small."""
    import models
    from pipeline.core import audio
    from pipeline.research.export import write_bundle
    from pipeline.serve.bundle import BranchModel, load_bundle

    params = Preprocessing(sample_rate=SR, labels="four", voice_activity="vad")
    rows, ys, speakers = [], [], []
    for s in range(3):
        for k, emotion in enumerate(params.classes):
            for rep in range(2):
                rows.append(audio.featurize(_take(10 * s + rep + 100 * k, emotion), params, "mfcc_stats"))
                ys.append(k)
                speakers.append(s)
    X, y, speakers = np.stack(rows), np.array(ys), np.array(speakers)
    fit = lambda A: models.build("logreg", (A.shape[1],), 4, C=1.0).fit(A, y)  # noqa: E731
    calm = y == 0
    branch = BranchModel(branch="audio", model_name="logreg", framework="sklearn", input_kind="mfcc_stats",
                         params=params, model=fit(X),
                         calibrated={"session": fit(calibration.normalise_speakers(X, speakers, "session")),
                                     "neutral": fit(calibration.normalise_speakers(X, speakers, "neutral", calm))},
                         temperature={"none": 1.5, "session": 1.0, "neutral": 1.0},
                         reference=conditions.FeatureReference.fit(X, k=6))
    path = write_bundle(tmp_path_factory.mktemp("b") / "voice", name="voice", audio=branch, video=None)
    return load_bundle(path)


def _wav(y: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, y, SR, format="WAV")
    return buffer.getvalue()


def test_bundle_round_trips_calibrated_models(voice_bundle):
    branch = voice_bundle.audio
    assert branch.modes() == ("none", "neutral", "session") and branch.reference is not None
    assert branch.temperature["none"] == 1.5
    x = np.random.default_rng(0).normal(size=(2, 160)).astype(np.float32)
    for mode in branch.modes():
        p = branch.predict_proba(x, mode)
        assert p.shape == (2, 4) and np.allclose(p.sum(1), 1)
    with pytest.raises(ValueError, match="no 'loud' calibration"):
        branch.predict_proba(x, "loud")


def test_answers_say_which_normalisation_they_used(voice_bundle):
    from pipeline.core.calibration import DESCRIPTIONS
    from pipeline.serve.inference import analyze
    from pipeline.serve.speaker import voice_stats

    one = analyze(_wav(_take(7, "sad")), voice_bundle)
    assert one.audio.ok and one.audio.normalisation == DESCRIPTIONS["none"]
    assert "conditions" in one.audio.to_json() and "normalisation" in one.audio.to_json()
    long = np.concatenate([_take(20 + i, e) for i, e in enumerate(["sad", "happy", "angry", "neutral", "sad"])])
    session = analyze(_wav(long), voice_bundle)
    assert len(session.timeline) >= 4 and session.audio.normalisation == DESCRIPTIONS["session"]
    stats = voice_stats(_wav(np.concatenate([_take(30, "neutral"), _take(31, "neutral")])), voice_bundle)
    assert stats.source == "neutral" and stats.std is None and stats.seconds >= 2.0
    calibrated = analyze(_wav(_take(7, "sad")), voice_bundle, calibration=stats)
    assert calibrated.audio.normalisation == DESCRIPTIONS["neutral"]
    with pytest.raises(ValueError, match="no voice"):
        voice_stats(_wav(np.zeros(SR * 3, np.float32)), voice_bundle)


def test_a_note_means_never_sure(voice_bundle):
    from pipeline.serve.inference import analyze

    rng = np.random.default_rng(0)
    y = _take(7, "angry")
    noisy = analyze(_wav(degrade.add_at_snr(y, rng.standard_normal(len(y)), 8.0)), voice_bundle)
    assert noisy.audio.ok and noisy.audio.notes and noisy.audio.confidence == "not sure"
    assert noisy.fused.confidence == "not sure" and noisy.fused.notes


def test_evaluate_with_each_calibration(voice_bundle, tmp_path):
    """`evaluate --calibration`: none, session (each clip by the speaker's other clips) and
    neutral (two calm takes per speaker calibrate and are then not scored), reported."""
    from pipeline.research.crosscorpus import EvaluateError, evaluate_bundle

    root = tmp_path / "tess"
    root.mkdir()
    words = ["back", "bar", "base", "bath"]
    for s, speaker in enumerate(["OAF", "YAF"]):
        for emotion, token in (("neutral", "neutral"), ("happy", "happy"), ("sad", "sad"), ("angry", "angry")):
            for i, word in enumerate(words):
                sf.write(root / f"{speaker}_{word}_{token}.wav", _take(200 + 10 * s + i, emotion), SR)
    runs = {}
    for mode in ("none", "session", "neutral"):
        result = evaluate_bundle(voice_bundle.path, "tess", root, out=tmp_path / "runs", cache_dir=tmp_path / "cache",
                                 progress=False, calibration=mode)
        assert result.calibration == mode and result.to_json()["calibration"] == mode
        runs[mode] = result
    assert runs["none"].n == runs["session"].n == 32
    assert runs["neutral"].n == 28 and runs["neutral"].skipped["calibration takes"] == 4
    assert runs["session"].run_dir.parent.name.endswith("-session")
    # a speaker who cannot be calibrated is left out and counted, not scored as calibrated
    for f in root.glob("YAF_*"):
        if not f.name.startswith("YAF_back_neutral"):
            f.unlink()
    lone = evaluate_bundle(voice_bundle.path, "tess", root, out=tmp_path / "runs", cache_dir=tmp_path / "cache",
                           progress=False, calibration="session")
    assert lone.n == 16 and lone.skipped["calibration: the speaker's only clip (session needs their other clips)"] == 1
    for f in root.glob("YAF_*"):
        f.unlink()
    for i, word in enumerate(words):
        sf.write(root / f"YAF_{word}_happy.wav", _take(300 + i, "happy"), SR)
    calm = evaluate_bundle(voice_bundle.path, "tess", root, out=tmp_path / "runs", cache_dir=tmp_path / "cache",
                           progress=False, calibration="neutral")
    assert calm.n == 14 and calm.skipped["calibration: no calm takes of this speaker"] == 4  # OAF: 16 less 2 calm takes
    with pytest.raises(EvaluateError, match="calibration"):
        evaluate_bundle(voice_bundle.path, "tess", root, out=tmp_path / "runs", calibration="loud", progress=False)
