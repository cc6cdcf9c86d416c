"""The Whisper encoder run in numpy from the registry packages' CTranslate2 files: the
same output as CTranslate2's own encoder, the pinned SHA-256 enforced, and the
``whisper_*`` features: shapes, one block equal to the every-block row, level-invariant."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pipeline.core import audio, speech_encoder
from pipeline.core.preprocessing import Preprocessing

PARAMS = Preprocessing(sample_rate=16000, labels="seven", level_db=-26.0, encoder_layers=(3,))


def _voice(seconds: float = 2.5, seed: int = 0) -> np.ndarray:
    """A synthetic voice (the synthetic corpus's source-filter voice) at 16 kHz,
    repeated or cut to ``seconds``."""
    import librosa

    from pipeline.core.synth import profiles, voice

    actor = voice.random_actor(np.random.default_rng(seed), female=bool(seed % 2))
    utt = voice.synthesize("01", profiles.voice_profile("happy", "strong"), actor, np.random.default_rng(seed))
    y = librosa.resample(utt.samples, orig_sr=utt.sample_rate, target_sr=16000)
    return np.resize(y, int(seconds * 16000)).astype(np.float32)


def test_numpy_encoder_matches_ctranslate2(tmp_path):
    """CTranslate2 returns only the top of the encoder (after its final layer norm): the
    numpy encoder's top block, normalised the same way, must give the same numbers."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    folder = speech_encoder.materialize("whisper_base", tmp_path / "ct2")
    mel = speech_encoder.log_mel(_voice(4.0))
    model = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32", intra_threads=1)
    theirs = np.array(model.encode(ctranslate2.StorageView.from_array(mel[None]), to_cpu=True))[0]
    ours = speech_encoder.WhisperEncoder.load("whisper_base").hidden_states(mel, final_norm=True)[-1]
    assert ours.shape == theirs.shape == (mel.shape[1] // 2, 512)
    assert np.abs(ours - theirs).max() < 5e-3 * np.abs(theirs).max()


def test_gelu_is_the_erf_form():
    """The block-wise A&S GELU equals ``0.5 x (1 + erf(x / sqrt 2))`` in double precision
    within float32's resolution, on every shape the encoder feeds it (blocks not
    multiples of the array size, negative tails, zero)."""
    from scipy.special import erf

    for shape in [(3,), (200, 2048), (speech_encoder._GELU_BLOCK + 7,)]:
        x = np.random.default_rng(0).normal(0, 4, shape).astype(np.float32)
        x.reshape(-1)[:3] = (0.0, -30.0, 30.0)
        exact = 0.5 * x.astype(np.float64) * (1.0 + erf(x.astype(np.float64) / np.sqrt(2.0)))
        ours = speech_encoder._gelu(x)
        assert ours.shape == x.shape and ours.dtype == np.float32
        assert np.abs(ours - exact).max() <= 1e-6 * max(1.0, float(np.abs(x).max()))


def test_weights_must_be_the_pinned_ones(monkeypatch):
    real = speech_encoder.ENCODERS["whisper_base"]
    fake = dataclasses.replace(real, name="tampered", sha256="0" * 64)
    monkeypatch.setitem(speech_encoder.ENCODERS, "tampered", fake)
    with pytest.raises(speech_encoder.EncoderError, match="not the pinned"):
        speech_encoder.load_weights("tampered")
    missing = dataclasses.replace(real, name="missing", parts=(("no_such_package_xyz", "model.bin"),))
    monkeypatch.setitem(speech_encoder.ENCODERS, "missing", missing)
    with pytest.raises(speech_encoder.EncoderError, match="nothing is downloaded"):
        speech_encoder.load_weights("missing")


def test_log_mel_and_states_shapes():
    y = _voice(1.0)
    mel = speech_encoder.log_mel(y)
    assert mel.shape == (80, 100) and mel.dtype == np.float32
    assert speech_encoder.log_mel(y, n_frames=3000).shape == (80, 3000)
    states = speech_encoder.encoder("whisper_base").hidden_states(mel, upto=2)
    assert states.shape == (3, 50, 512)
    with pytest.raises(ValueError):
        speech_encoder.encoder("whisper_base").hidden_states(np.zeros((40, 10)))


def test_features_one_block_equals_its_row_and_ignore_loudness():
    y = _voice()
    one = audio.featurize(y, PARAMS, "whisper_base")
    every = audio.featurize(y, PARAMS, "whisper_base_layers")
    assert one.shape == (1024,) and every.shape == (7, 1024)
    assert audio.feature_shape(PARAMS, "whisper_base") == (1024,)
    assert audio.feature_shape(PARAMS, "whisper_base_layers") == (7, 1024)
    np.testing.assert_allclose(one, every[3], rtol=1e-5, atol=1e-5)
    # a layer average: the pooled rows of those blocks, averaged block by block
    average = audio.featurize(y, dataclasses.replace(PARAMS, encoder_layers=[3, 1, 2]), "whisper_base")
    np.testing.assert_allclose(average, every[1:4].mean(axis=0), rtol=1e-5, atol=1e-5)
    assert speech_encoder.embedding_names((1, 2, 3))[0] == "whisper_base.blocks1+2+3.mean[0]"
    assert speech_encoder.embedding_names((3,))[-1] == "whisper_base.block3.std[511]"
    for bad in ([], [1, 1], [-1], 3, [True]):
        with pytest.raises(ValueError, match="encoder_layers"):
            dataclasses.replace(PARAMS, encoder_layers=bad)
    # speech-level normalisation: 20 dB quieter, or peak-normalised, gives the same features
    for gain in (0.1, 1.0 / np.abs(y).max()):
        np.testing.assert_allclose(audio.featurize(y * np.float32(gain), PARAMS, "whisper_base"), one,
                                   rtol=1e-3, atol=1e-3)
    combined = audio.featurize(y, PARAMS, "whisper_base+egemaps")
    assert combined.shape == (1024 + 88,) and audio.feature_shape(PARAMS, "whisper_base+egemaps") == (1112,)
    with pytest.raises(audio.FeatureError, match="16000"):
        audio.featurize(y, dataclasses.replace(PARAMS, sample_rate=22050), "whisper_base")
    with pytest.raises(audio.FeatureError):
        audio.split_kind("whisper_base+mfcc_matrix")


def test_tiny_encoder_loads_and_embeds():
    y = _voice(1.5)
    e = audio.featurize(y, dataclasses.replace(PARAMS, encoder_layers=(2,)), "whisper_tiny")
    assert e.shape == (768,) and np.isfinite(e).all()
