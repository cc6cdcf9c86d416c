"""The audio branch of a VAD-gated bundle (``voice_activity: vad``, as ``bundles/real``)
abstains with "no speech" on a tone, noise or a chord, and answers on a voice: through
``inference.analyze`` and ``predict --json``."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline.core import audio
from pipeline.research import export as export_mod
from pipeline.serve import bundle as bundle_mod
from pipeline.core.preprocessing import Preprocessing

SR = 16000
PARAMS = Preprocessing(sample_rate=SR, labels="seven", voice_activity="vad")


def _t(seconds: float = 3.0) -> np.ndarray:
    return np.arange(int(seconds * SR)) / SR


def _voice(emotion: str = "happy", seed: int = 3) -> np.ndarray:
    from pipeline.core.synth import profiles, voice

    actor = voice.random_actor(np.random.default_rng(seed), female=bool(seed % 2))
    utt = voice.synthesize("01", profiles.voice_profile(emotion, "normal"), actor, np.random.default_rng(seed))
    import librosa

    y = librosa.resample(np.asarray(utt.samples, dtype=np.float32), orig_sr=utt.sample_rate, target_sr=SR)
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


SIGNALS = {
    # a loud pure tone at a voice's pitch: Silero VAD takes it for speech, the pitch check does not
    "tone 180 Hz": lambda: (0.9 * np.sin(2 * np.pi * 180.0 * _t())).astype(np.float32),
    "tone 440 Hz": lambda: (0.3 * np.sin(2 * np.pi * 440.0 * _t())).astype(np.float32),
    "white noise": lambda: (0.1 * np.random.default_rng(0).standard_normal(_t().size)).astype(np.float32),
    "chord": lambda: sum(0.1 * np.sin(2 * np.pi * f * _t()) for f in (261.6, 329.6, 392.0)).astype(np.float32),
}


@pytest.fixture(scope="module")
def gated_bundle(tmp_path_factory) -> Path:
    """A VAD-gated bundle whose audio model (logistic regression on MFCC means) was fitted
    on synthetic voices of two emotions."""
    import models

    X = np.stack([audio.featurize(_voice(e, s), PARAMS, "mfcc_mean") for e in ("happy", "sad") for s in (3, 4, 5)])
    y = np.repeat([1, 2], 3)  # seven's happy, sad
    model = models.build("logreg", (X.shape[1],), 7).fit(X, y)
    branch = bundle_mod.BranchModel(branch="audio", model_name="logreg", framework="sklearn",
                                    input_kind="mfcc_mean", params=PARAMS, model=model)
    return export_mod.write_bundle(tmp_path_factory.mktemp("b") / "gated", name="gated", audio=branch, video=None)


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_no_speech_abstains(gated_bundle: Path, tmp_path: Path, name: str, capsys):
    from pipeline.entry.cli import main
    from pipeline.serve.inference import analyze

    path = tmp_path / f"{name.replace(' ', '_')}.wav"
    sf.write(path, SIGNALS[name](), SR)
    result = analyze(path, bundle_mod.load_bundle(gated_bundle))
    assert result.audio.status == "no speech" and not result.fused.ok, (name, result.audio)
    assert main(["predict", str(path), "--bundle", str(gated_bundle), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["audio"]["status"] == "no speech"


def test_a_voice_is_answered(gated_bundle: Path, tmp_path: Path, capsys):
    from pipeline.entry.cli import main

    path = tmp_path / "voice.wav"
    sf.write(path, np.concatenate([_voice("happy", 7), np.zeros(SR // 2, np.float32)]), SR)
    assert main(["predict", str(path), "--bundle", str(gated_bundle), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["audio"]["status"] == "ok" and set(out["audio"]["probabilities"]) >= {"happy", "sad"}


def test_pitch_spread_separates_a_held_tone_from_a_voice():
    assert audio.pitch_spread(SIGNALS["tone 180 Hz"](), SR) < audio.STEADY_PITCH_SEMITONES
    assert audio.pitch_spread(_voice(), SR) > 5 * audio.STEADY_PITCH_SEMITONES


def test_quiet_real_speech_is_heard(shared_data: Path):
    """Actor 09 peaks near -50 dBFS, below the level check's -45 dBFS: the VAD gate hears him."""
    from pipeline.core.media import load_audio

    clip = sorted((shared_data / "ravdess-speech" / "Actor_09").glob("03-01-*"))[0]
    y = load_audio(clip, SR)
    assert audio.no_speech_reason(y, SR) == ""
