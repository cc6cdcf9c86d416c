"""The shipped ``bundles/real``: it loads offline from the repository, names the seven
emotions, answers a photo from the face and a voice from the sound, abstains on a tone,
carries its model card, and fits the size budget."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline.core import paths
from pipeline.serve.bundle import load_bundle

REAL = paths.shipped_bundle()
SEVEN = ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")


@pytest.fixture(scope="module")
def real():
    if not (REAL / "bundle.json").is_file():
        pytest.fail(f"the repository must ship {REAL} (docs/real_models.md says how to rebuild it)")
    return load_bundle(REAL)


def test_shipped_bundle_is_complete_small_and_documented(real):
    size = sum(f.stat().st_size for f in REAL.rglob("*") if f.is_file())
    assert size < 25 * 2**20
    assert real.classes == SEVEN and real.name == "real"
    assert real.audio.params.voice_activity == "vad" and real.video.input_kind == "faces"
    card = (REAL / "MODEL_CARD.md").read_text(encoding="utf-8")
    for words in ("CC BY-NC-SA 4.0", "FER2013", "Do not use it for", "Confusion matrix"):
        assert words in card
    meta = json.loads((REAL / "bundle.json").read_text())
    assert meta["models"]["fusion"]["name"] == "rule_reliability"
    assert "/work/" not in json.dumps(meta)  # no machine's folders


def test_default_bundle_is_the_real_one(monkeypatch):
    monkeypatch.delenv("AVE_BUNDLE", raising=False)
    monkeypatch.setenv("AVE_BUNDLES", "/nonexistent-bundles")
    assert paths.default_bundle() == REAL


def test_photo_answers_from_the_face(real, tmp_path: Path):
    import cv2

    from pipeline.serve.inference import analyze

    face = np.full((48, 48), 120, np.uint8)
    cv2.ellipse(face, (24, 26), (15, 19), 0, 0, 360, 190, -1)
    for x in (18, 30):
        cv2.circle(face, (x, 21), 2, 40, -1)
    cv2.ellipse(face, (24, 33), (7, 4), 0, 0, 180, 60, 2)
    path = tmp_path / "face.png"
    cv2.imwrite(str(path), face)
    from pipeline.core.faces import HaarDetector

    # a drawn face: Haar sees it in the small-image check (MTCNN wants a photographed one)
    result = analyze(path, real, detector=HaarDetector())
    assert result.audio.status == "no audio track" and result.video.ok
    assert tuple(result.video.probabilities) == SEVEN
    assert result.fused.ok and result.fused.detail.startswith("video only")
    assert result.bundle["name"] == "real"


def test_fer_crop_passes_the_bundles_own_face_check(real):
    """A real 48 x 48 FER2013 crop (shared data) gets through the bundle's own MTCNN
    small-image check and is answered."""
    import os

    from pipeline.serve.inference import analyze

    root = Path(os.environ.get("AVE_SHARED_DATA", "")) / "fer2013" / "train" / "happy"
    crops = sorted(root.glob("*.jpg"))[:5] if os.environ.get("AVE_SHARED_DATA") else []
    if not crops:
        pytest.skip("no FER2013 crops under AVE_SHARED_DATA")
    answered = [analyze(c, real).video.ok for c in crops]
    assert sum(answered) >= 3, answered


def _voice(emotion: str, seed: int) -> np.ndarray:
    from pipeline.core.synth import profiles, voice

    actor = voice.random_actor(np.random.default_rng(seed), female=bool(seed % 2))
    utt = voice.synthesize("01", profiles.voice_profile(emotion, "strong"), actor, np.random.default_rng(seed))
    return utt.samples, utt.sample_rate


def test_voice_answers_and_tone_abstains(real, tmp_path: Path):
    from pipeline.serve.inference import analyze

    y, sr = _voice("angry", 5)
    sf.write(tmp_path / "voice.wav", y, sr)
    said = analyze(tmp_path / "voice.wav", real)
    assert said.audio.ok and tuple(said.audio.probabilities) == SEVEN
    assert said.video.status == "no video track" and said.fused.ok
    t = np.arange(3 * sr) / sr
    sf.write(tmp_path / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr)
    tone = analyze(tmp_path / "tone.wav", real)
    assert tone.audio.status == "no speech" and not tone.fused.ok


def test_real_speech_is_answered(real, shared_data: Path):
    from pipeline.serve.inference import analyze

    clip = sorted((shared_data / "ravdess-speech" / "Actor_12").glob("03-01-05-02-*"))[0]  # angry, strong
    result = analyze(clip, real)
    assert result.audio.ok and result.audio.winner is not None


def test_shipped_voice_travels_and_says_how(real):
    """The voice of issue 18: Whisper base block 3 + eGeMAPS of level-normalised 16 kHz speech,
    one model per normalisation, held-out temperatures, a feature reference and column names;
    the card names both protocols and every licence; the encoder weights are not copied."""
    branch = real.audio
    assert branch.input_kind == "whisper_base+egemaps" and branch.params.encoder_layers == (1, 2, 3)
    assert branch.params.sample_rate == 16000 and branch.params.level_db == -26.0
    assert branch.modes() == ("none", "neutral", "session") and branch.reference is not None
    assert set(branch.temperature) == {"none", "neutral", "session"}
    assert len(branch.info["feature_names"]) == 1024 + 88
    assert set(branch.metrics["corpus"]) == {"tess", "ravdess"}
    assert not any(f.stat().st_size > 5 * 2**20 for f in REAL.rglob("*") if f.is_file())
    card = (REAL / "MODEL_CARD.md").read_text(encoding="utf-8")
    for words in ("CC BY-NC-ND 4.0", "Whisper (MIT)", "Leave-one-corpus-out", "Recall per emotion", "temperature"):
        assert words in card
