"""Inputs people really bring (issue 11): no confident answer from padding, covers,
offsets or cut files.

Each kind of failure has a test whose input the test writes itself (PyAV, soundfile,
numpy) and checks through :func:`pipeline.serve.inference.analyze` and through
``python -m pipeline predict --json`` (exit code 0 while one branch answers, 2 when
nothing usable remains). The bundle is the tiny scikit-learn one of
``tests/test_inference.py`` (tones of six pitches, crops of six colours).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.serve import analysis as analysis_mod, inference
from pipeline.core import audio, faces, media
from pipeline.core.preprocessing import Preprocessing
from test_inference import (COLOURS, PITCHES, SR, frames_for, landmarks_csv,  # noqa: F401 (fixture)
                            tiny_bundle, tone, write_media)

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- input builders
def write_wav(path: Path, y: np.ndarray, sr: int = SR) -> Path:
    """16-bit PCM WAV; ``y`` (n,) mono or (n, channels)."""
    import soundfile as sf

    sf.write(str(path), np.clip(np.asarray(y, np.float32), -1, 1), sr, subtype="PCM_16")
    return path


def speech(seconds: float | None = None, seed: int = 2) -> np.ndarray:
    """A synthetic spoken sentence at SR (the synthetic corpus's source-filter voice),
    or its first ``seconds`` of speech (from the voice's onset)."""
    import librosa

    from pipeline.core.synth import voice

    actor = voice.random_actor(np.random.default_rng(1), female=True)
    cues = dict(f0_st=0.0, f0_range=1.0, rate=1.0, loudness_db=0.0, tilt_db=0.0, jitter=1.0,
                shimmer=1.0, breath=0.0)
    u = voice.synthesize("01", cues, actor, np.random.default_rng(seed))
    y = librosa.resample(u.samples, orig_sr=u.sample_rate, target_sr=SR).astype(np.float32)
    if seconds is None:
        return y
    start = int(u.onset_s * SR)
    return y[start:start + int(seconds * SR)]


def face_image(seed: int, size: int) -> np.ndarray:
    """A drawn face of the synthetic corpus, (size, size, 3) uint8 RGB (Haar finds it)."""
    from pipeline.core.synth import face

    actor = face.random_actor(np.random.default_rng(seed), female=seed % 2 == 0)
    parts = face.geometry(actor, {c: float(v) for c, v in zip(face.CUES, actor.rest)}, gap=0.02)
    return face.draw(actor, face.pose(parts, actor, size), size)


def _encode_audio(out, stream, y: np.ndarray, rate: int) -> None:
    """Encode mono float ``y`` into ``stream`` whatever sample format its encoder wants."""
    import av

    fmt = stream.codec_context.format.name
    step = stream.codec_context.frame_size or 1024
    y = np.pad(np.asarray(y, np.float32), (0, (-len(y)) % step))
    for i in range(0, len(y), step):
        chunk = y[i:i + step][None, :]
        if fmt.startswith("s16"):
            chunk = (np.clip(chunk, -1, 1) * 32767).astype(np.int16)
        elif fmt.startswith("s32"):
            chunk = (np.clip(chunk, -1, 1) * (2**31 - 1)).astype(np.int32)
        frame = av.AudioFrame.from_ndarray(chunk, format=fmt, layout="mono")
        frame.rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def write_with_cover(path: Path, y: np.ndarray) -> Path:
    """An .mp3 / .m4a / .flac of ``y`` with an embedded cover picture of a face (a JPEG
    stream with disposition ``attached_pic``, as taggers write it)."""
    import av
    from av.stream import Disposition

    codec = {".mp3": "libmp3lame", ".m4a": "aac", ".flac": "flac"}[path.suffix]
    with av.open(str(path), "w", format={".m4a": "mp4"}.get(path.suffix)) as out:
        sound = out.add_stream(codec, rate=SR)
        sound.layout = "mono"
        cover = out.add_stream("mjpeg", rate=1)
        cover.width = cover.height = 160
        cover.pix_fmt = "yuvj420p"
        cover.disposition = Disposition.attached_pic
        picture = av.VideoFrame.from_ndarray(face_image(2, 160), format="rgb24").reformat(format="yuvj420p")
        for packet in list(cover.encode(picture)) + list(cover.encode()):
            out.mux(packet)
        _encode_audio(out, sound, y, SR)
    return path


def write_still_mp4(path: Path, y: np.ndarray) -> Path:
    """An mp4 whose video track is a single frame (a face) beside ``y``: a poster."""
    import av

    with av.open(str(path), "w") as out:
        v = out.add_stream("h264", rate=10)
        v.width, v.height, v.pix_fmt = 160, 160, "yuv420p"
        sound = out.add_stream("aac", rate=SR)
        sound.layout = "mono"
        for packet in list(v.encode(av.VideoFrame.from_ndarray(face_image(2, 160), format="rgb24"))) + list(v.encode()):
            out.mux(packet)
        _encode_audio(out, sound, y, SR)
    return path


def write_two_faces(path: Path, seconds: float = 3.0) -> Path:
    """A silent 320 x 180 video: a large face on the left (off-centre) and a smaller
    one on the right."""
    import av

    frame = np.full((180, 320, 3), 200, np.uint8)
    frame[10:170, 0:160] = face_image(2, 160)
    frame[35:145, 195:305] = face_image(4, 110)
    with av.open(str(path), "w") as out:
        v = out.add_stream("h264", rate=10)
        v.width, v.height, v.pix_fmt = 320, 180, "yuv420p"
        for _ in range(int(seconds * 10)):
            for packet in v.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in v.encode():
            out.mux(packet)
    return path


#: extension -> (PyAV muxer, encoder, sample rate): one sound file of each type the
#: decoder reads and the uploader used to refuse.
EXTENSION_WRITERS = {
    ".opus": ("ogg", "libopus", 48000), ".oga": ("ogg", "libopus", 48000), ".aac": ("adts", "aac", 16000),
    ".3gp": ("3gp", "aac", 16000), ".amr": ("amr", "libopencore_amrnb", 8000),
    ".mkv": ("matroska", "aac", 16000), ".m4v": ("mp4", "aac", 16000),
}


def write_extension(path: Path, y: np.ndarray) -> Path:
    import av
    import librosa

    muxer, codec, rate = EXTENSION_WRITERS[path.suffix]
    if codec not in av.codecs_available:
        pytest.skip(f"this PyAV build has no {codec} encoder")
    y = librosa.resample(np.asarray(y, np.float32), orig_sr=SR, target_sr=rate) if rate != SR else y
    with av.open(str(path), "w", format=muxer) as out:
        sound = out.add_stream(codec, rate=rate)
        sound.layout = "mono"
        _encode_audio(out, sound, y, rate)
    return path


class BlobDetector:
    """A face finder for the coloured squares of the test videos: each connected
    non-grey region is a face (keeps the two-faces test independent of Haar)."""

    name = "blobs"

    def detect(self, rgb: np.ndarray) -> list[faces.Box]:
        import cv2

        mask = (np.abs(rgb.astype(int) - 90).max(axis=2) > 40).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        return [faces.Box(float(x), float(y), float(x + w), float(y + h), 1.0)
                for x, y, w, h, area in stats[1:] if area > 50]


def predict_json(clip: Path, bundle_dir: Path, *extra: str, env: dict[str, str] | None = None,
                 capsys=None) -> tuple[int, dict | None, str]:
    """``predict --json`` in this process (``capsys``) or, with ``env``, a subprocess:
    (exit code, the JSON object or None, stderr)."""
    args = ["predict", str(clip), "--bundle", str(bundle_dir), "--json", *extra]
    if env is not None:
        done = subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True,
                              cwd=REPO, env={**os.environ, **env}, timeout=300)
        rc, out, err = done.returncode, done.stdout, done.stderr
    else:
        from pipeline.entry.cli import main

        rc = main(args)
        captured = capsys.readouterr()
        out, err = captured.out, captured.err
    return rc, (json.loads(out) if out.strip() else None), err


@pytest.fixture(scope="module")
def calibrated_bundle(tiny_bundle, tmp_path_factory) -> Path:
    """The tiny bundle with held-out calibration recorded as an exported run would:
    audio ECE 0.12, video ECE 0.20, fuser ECE 0.15."""
    folder = tmp_path_factory.mktemp("calibrated") / "tiny"
    shutil.copytree(tiny_bundle.path, folder)
    meta = json.loads((folder / "bundle.json").read_text())
    for branch, ece, acc in (("audio", 0.12, 0.61), ("video", 0.20, 0.44), ("fusion", 0.15, 0.63)):
        meta["models"][branch]["metrics"] = {"accuracy_mean": acc, "ece_mean": ece, "protocol": "speaker",
                                             "n_folds": 4}
    (folder / "bundle.json").write_text(json.dumps(meta))
    return folder


# --------------------------------------------------------------------------- 1. too short
@pytest.mark.parametrize("kind, seconds", [("tone", 0.02), ("speech", 0.3)])
def test_too_short_to_judge_abstains(tiny_bundle, tmp_path, capsys, kind, seconds):
    y = tone(PITCHES[4], seconds) if kind == "tone" else speech(seconds)
    clip = write_wav(tmp_path / f"{kind}.wav", y)
    result = inference.analyze(clip, tiny_bundle)
    assert result.audio.status.startswith("too short: ")
    assert result.audio.status.endswith("s of speech, at least 1.0 s needed")
    said = float(result.audio.status.split()[2])
    assert said == pytest.approx(seconds, abs=0.03)
    assert not result.fused.ok and "too short" in result.fused.status
    rc, payload, err = predict_json(clip, tiny_bundle.path, capsys=capsys)
    assert rc == 2 and payload["audio"]["status"].startswith("too short")
    assert err.startswith("error: nothing usable") and "too short" in err


def test_too_short_sound_beside_a_face_keeps_exit_0(tiny_bundle, tmp_path, capsys):
    """0.3 s of voice in a 3 s video with a face: audio abstains, video answers."""
    y = np.concatenate([tone(PITCHES[3], 0.3), np.zeros(int(2.7 * SR), np.float32)])
    clip = write_media(tmp_path / "av.mp4", y, frames_for(lambda t: COLOURS[3], 3.0))
    csv = landmarks_csv(tmp_path / "av.csv", 3.0)
    result = inference.analyze(clip, tiny_bundle, landmarks_path=str(csv))
    assert result.audio.status == "too short: 0.3 s of speech, at least 1.0 s needed"
    assert result.video.ok and result.fused.ok and "video only" in result.fused.detail
    rc, payload, _ = predict_json(clip, tiny_bundle.path, "--landmarks", str(csv), capsys=capsys)
    assert rc == 0 and payload["audio"]["status"].startswith("too short") and payload["video"]["status"] == "ok"


def test_too_short_timeline_window(tiny_bundle, tmp_path, capsys):
    """A 20 s clip: 6.3 s of voice, a lone 0.3 s sound at 10 s, voice again from 14 s.
    The windows follow the voice (a pause never cuts it; issue 19), so only the window
    around the lone sound holds too little voice: it abstains, the others answer, the
    clip-level answer averages those."""
    y = np.zeros(20 * SR, np.float32)
    y[:int(6.3 * SR)] = tone(PITCHES[2], 6.3)
    y[10 * SR:int(10.3 * SR)] = tone(PITCHES[2], 0.3)
    y[14 * SR:] = tone(PITCHES[2], 6.0)
    clip = write_wav(tmp_path / "gap.wav", y)
    result = inference.analyze(clip, tiny_bundle)
    assert len(result.timeline) == 8  # 6.3 s in 4 pieces, the lone sound, 6 s in 3
    lone = [i for i, w in enumerate(result.timeline) if w.start < 10.0 and w.end > 10.3]
    assert lone == [4] and result.timeline[4].end - result.timeline[4].start == pytest.approx(2.0)
    assert result.timeline[4].audio.status == "too short: 0.3 s of speech, at least 1.0 s needed"
    assert all(w.audio.ok for i, w in enumerate(result.timeline) if i != 4)
    assert result.audio.ok and result.audio.detail == "mean of 7 of 8 windows"
    rc, payload, _ = predict_json(clip, tiny_bundle.path, capsys=capsys)
    assert rc == 0 and payload["timeline"][4]["audio"]["status"].startswith("too short")


def test_too_short_face_video_for_a_clip_model(tiny_bundle, tmp_path, capsys):
    """0.4 s of footage: the sequence model would see a few frames repeated."""
    clip = write_media(tmp_path / "blink.mp4", tone(PITCHES[3], 0.4), frames_for(lambda t: COLOURS[3], 0.4))
    csv = landmarks_csv(tmp_path / "blink.csv", 0.4)
    result = inference.analyze(clip, tiny_bundle, landmarks_path=str(csv))
    assert result.video.status == "too short: 0.4 s of face video, at least 1.0 s needed"
    assert result.audio.status.startswith("too short: 0.4 s of speech")
    rc, payload, _ = predict_json(clip, tiny_bundle.path, "--landmarks", str(csv), capsys=capsys)
    assert rc == 2 and payload["video"]["status"].startswith("too short")


def test_speech_seconds_counts_voice_not_padding():
    sr = 16000
    assert audio.speech_seconds(np.zeros(sr * 2), sr) == 0.0
    y = np.zeros(sr * 2, np.float32)
    y[:sr // 2] = tone(PITCHES[0], 0.5)
    assert audio.speech_seconds(y, sr) == pytest.approx(0.5, abs=0.02)
    # faint room noise after a loud second is not the person
    noise = (1e-3 * np.random.default_rng(0).standard_normal(sr)).astype(np.float32)
    act = audio.voice_activity(np.concatenate([tone(PITCHES[0], 1.0), noise]), sr)
    assert act.method == "energy" and act.seconds(1.0, 2.0) == 0.0 and act.seconds() == pytest.approx(1.0, abs=0.02)
    params = Preprocessing(sample_rate=sr, offset=0.5, duration=2.0)
    assert audio.window_span(np.zeros(sr * 4), params) == (0.5, 2.5)
    assert audio.window_span(np.zeros(sr // 4), params) == (0.0, 0.25)  # shorter than the offset
    assert audio.min_speech_seconds(Preprocessing(duration=3.0)) == 1.0
    assert audio.min_speech_seconds(Preprocessing(duration=1.0)) == 0.5


def test_too_short_speech_in_loud_noise_counts_the_speech(tiny_bundle, tmp_path, capsys, monkeypatch):
    """0.4 s of words inside 3 s of loud noise: the level alone would count 3 s; with the
    voice-activity setting on Silero VAD (``AVE_VOICE_ACTIVITY=vad``) the words only
    count, so the window holds too little of the person."""
    monkeypatch.setenv("AVE_VOICE_ACTIVITY", "vad")
    rng = np.random.default_rng(0)
    y = (0.05 * rng.standard_normal(3 * SR)).astype(np.float32)
    y[SR:SR + int(0.4 * SR)] += speech(0.4)
    act = audio.voice_activity(y, SR)
    assert act.method == "silero vad" and 0.2 < act.seconds() < 1.0
    clip = write_wav(tmp_path / "street.wav", y)
    result = inference.analyze(clip, tiny_bundle)
    assert result.audio.status.startswith("too short: ") and "s of speech, at least 1.0 s needed" in result.audio.status
    rc, payload, _ = predict_json(clip, tiny_bundle.path, capsys=capsys)
    assert rc == 2 and payload["audio"]["status"].startswith("too short")
    # a whole sentence over the same noise is enough
    sentence = (0.05 * rng.standard_normal(3 * SR)).astype(np.float32)
    words = speech()[int(0.4 * SR):int(3.4 * SR)]
    sentence[:words.size] += words
    assert audio.voice_activity(sentence, SR).seconds(0.5, 2.5) >= 1.0


# --------------------------------------------------------------------------- 2. cover art
@pytest.mark.parametrize("suffix", [".mp3", ".m4a", ".flac"])
def test_cover_art_is_not_video(tiny_bundle, tmp_path, capsys, suffix):
    from pipeline.core.faces import HaarDetector

    clip = write_with_cover(tmp_path / f"song{suffix}", tone(PITCHES[4], 3.0))
    info = media.probe(clip)
    assert info.has_audio and not info.has_video and info.still_picture
    with pytest.raises(media.MediaError, match="no video track"):
        next(media.iter_frames(clip))
    result = inference.analyze(clip, tiny_bundle, detector=HaarDetector())
    assert result.video.status == inference.NO_VIDEO and result.frames_with_face == 0
    assert result.audio.winner[0] == "angry"
    assert result.fused.winner[0] == "angry" and "audio only" in result.fused.detail
    assert result.fused.probabilities == pytest.approx(result.audio.probabilities)  # the cover changes nothing
    assert any("cover art" in note for note in result.notes)
    rc, payload, _ = predict_json(clip, tiny_bundle.path, "--detector", "haar", capsys=capsys)
    assert rc == 0 and payload["video"]["status"] == "no video track"
    assert payload["video"]["frames_with_face"] == 0 and any("cover art" in n for n in payload["notes"])


def test_single_still_frame_is_not_a_moving_face(tiny_bundle, tmp_path, capsys):
    from pipeline.core import video
    from pipeline.core.faces import HaarDetector

    clip = write_still_mp4(tmp_path / "poster.mp4", tone(PITCHES[4], 3.0))
    assert not media.probe(clip).has_video and media.probe(clip).still_picture
    sample = video.clip_frames(clip, Preprocessing(n_frames=6, crop_size=16), detector=HaarDetector())
    assert sample.status == video.NO_VIDEO and "still" in sample.detail
    result = inference.analyze(clip, tiny_bundle, detector=HaarDetector())
    assert result.video.status == inference.NO_VIDEO and result.fused.winner[0] == "angry"
    rc, payload, _ = predict_json(clip, tiny_bundle.path, "--detector", "haar", capsys=capsys)
    assert rc == 0 and payload["video"]["status"] == "no video track"


# --------------------------------------------------------------------------- 3. DC offset
def test_dc_offset_without_speech_is_silent(tiny_bundle, tmp_path, capsys):
    rng = np.random.default_rng(0)
    clip = write_wav(tmp_path / "offset.wav", 0.3 + 0.002 * rng.standard_normal(3 * SR))
    y = media.load_audio(clip, SR)
    assert abs(float(y.mean())) < 1e-4 and audio.is_silent(y)
    result = inference.analyze(clip, tiny_bundle)
    assert result.audio.status == inference.SILENT and not result.fused.ok
    rc, payload, _ = predict_json(clip, tiny_bundle.path, capsys=capsys)
    assert rc == 2 and payload["audio"]["status"] == "silent audio"


@pytest.mark.parametrize("shift", ["offset", "drift"])
def test_speech_on_an_offset_answers_as_without(tiny_bundle, tmp_path, capsys, shift):
    y = 0.5 * tone(PITCHES[4], 3.0)
    t = np.arange(y.size) / SR
    moved = (y + (0.4 if shift == "offset" else 0.3 * np.sin(2 * np.pi * 0.5 * t))).astype(np.float32)
    clean = inference.analyze(write_wav(tmp_path / "clean.wav", y), tiny_bundle)
    result = inference.analyze(write_wav(tmp_path / f"{shift}.wav", moved), tiny_bundle)
    assert result.audio.winner[0] == clean.audio.winner[0] == "angry"
    for c in clean.audio.probabilities:
        assert result.audio.probabilities[c] == pytest.approx(clean.audio.probabilities[c], abs=0.02)
    rc, payload, _ = predict_json(tmp_path / f"{shift}.wav", tiny_bundle.path, capsys=capsys)
    assert rc == 0 and max(payload["audio"]["probabilities"], key=payload["audio"]["probabilities"].get) == "angry"


def test_remove_drift_keeps_the_voice():
    sr = 16000
    t = np.arange(sr) / sr
    voice = 0.2 * np.sin(2 * np.pi * 120 * t)
    cleaned = audio.remove_drift(voice + 0.5 + 0.2 * np.sin(2 * np.pi * 1.0 * t), sr)
    assert np.abs(cleaned - voice)[sr // 10:-sr // 10].max() < 0.01
    assert np.allclose(audio.remove_drift(np.full(500, 0.3), sr), 0.0, atol=1e-6)


def test_speech_features_survive_an_offset():
    """The synthetic voice on a 0.4 DC offset gives the features of the voice alone."""
    params = Preprocessing(sample_rate=SR, offset=0.0, duration=2.0)
    y = speech()
    a = audio.featurize(audio.remove_drift(y, SR), params, "mfcc_stats")
    b = audio.featurize(audio.remove_drift(y + 0.4, SR), params, "mfcc_stats")
    assert np.allclose(a, b, atol=1e-2 * np.abs(a).max())


# --------------------------------------------------------------------------- 4. downmix
def test_phase_inverted_stereo_answers_as_the_best_channel(tiny_bundle, tmp_path, capsys):
    y = 0.5 * tone(PITCHES[4], 3.0)
    stereo = write_wav(tmp_path / "inverted.wav", np.stack([y, -y], axis=1))
    alone = inference.analyze(write_wav(tmp_path / "left.wav", y), tiny_bundle)
    result = inference.analyze(stereo, tiny_bundle)
    assert result.audio.ok and result.audio.winner[0] == alone.audio.winner[0] == "angry"
    for c in alone.audio.probabilities:
        assert result.audio.probabilities[c] == pytest.approx(alone.audio.probabilities[c], abs=1e-3)
    assert any("cancel" in note for note in result.notes)
    rc, payload, _ = predict_json(stereo, tiny_bundle.path, capsys=capsys)
    assert rc == 0 and payload["audio"]["status"] == "ok" and any("cancel" in n for n in payload["notes"])


def test_downmix_averages_unless_channels_cancel():
    rng = np.random.default_rng(0)
    left, right = rng.standard_normal(1000), rng.standard_normal(1000)
    mono, note = media.downmix(np.stack([left, right]))
    assert np.allclose(mono, (left + right) / 2) and note == ""
    mono, note = media.downmix(np.stack([left, -0.98 * left + 0.01 * right]))
    assert np.array_equal(mono, left) and "channel 1" in note
    mono, note = media.downmix(np.stack([0.8 * left, -left + 0.05 * right]))  # channel 2 is louder
    assert "channel 2" in note


# --------------------------------------------------------------------------- 5. the cut
def test_a_cut_is_said(tiny_bundle, tmp_path, monkeypatch, capsys):
    """A 12 s file (8 kHz) with the cap set to 8 s (the setting, as AVE_MAX_SECONDS)."""
    clip = write_wav(tmp_path / "long.wav", np.tile(tone(PITCHES[2], 2.0), 6)[::2], sr=SR // 2)
    monkeypatch.setattr(inference, "MAX_SECONDS", 8.0)
    result = inference.analyze(clip, tiny_bundle)
    assert result.duration == pytest.approx(12.0, abs=0.05) and result.analysed_seconds == 8.0
    assert result.notes[0].startswith("only the first 8 s of 12.0 s were analysed")
    assert result.timeline and result.timeline[-1].end <= 8.0
    text = inference.describe(result)
    assert "the first 8.0 s were analysed" in text and "note: only the first 8 s" in text
    assert "timeline (first 8.0 s of 12.0 s)" in text
    rc, payload, _ = predict_json(clip, tiny_bundle.path, capsys=capsys)
    assert rc == 0 and payload["analysed_seconds"] == 8.0 and payload["duration"] == pytest.approx(12.0, abs=0.05)
    assert payload["notes"][0].startswith("only the first 8 s")


def test_the_cap_is_a_setting(tiny_bundle, tmp_path):
    assert inference.DEFAULT_MAX_SECONDS == 300.0
    assert inference.max_seconds_setting({}) == 300.0
    assert inference.max_seconds_setting({"AVE_MAX_SECONDS": "45"}) == 45.0
    assert inference.max_seconds_setting({"AVE_MAX_SECONDS": "nonsense"}) == 300.0
    clip = write_wav(tmp_path / "long.wav", tone(PITCHES[2], 10.0)[::2], sr=SR // 2)
    rc, payload, err = predict_json(clip, tiny_bundle.path, env={"AVE_MAX_SECONDS": "6"})
    assert rc == 0, err
    assert payload["analysed_seconds"] == 6.0 and payload["duration"] == pytest.approx(10.0, abs=0.05)
    assert "only the first 6 s of 10.0 s" in payload["notes"][0]


# --------------------------------------------------------------------------- 6. faces
def test_two_faces_are_counted_and_the_larger_followed(tiny_bundle, tmp_path, capsys):
    from pipeline.core.faces import HaarDetector

    clip = write_two_faces(tmp_path / "two.mp4")
    result = inference.analyze(clip, tiny_bundle, detector=HaarDetector())
    assert result.faces_seen == 2
    assert "2 faces seen; following the larger one" in result.notes
    assert "2 faces seen; following the larger one" in result.video.detail
    followed = [b for b in result.boxes if b is not None]
    assert followed and all((b[0] + b[2]) / 2 < 160 for b in followed)  # the big face, on the left
    rc, payload, _ = predict_json(clip, tiny_bundle.path, "--detector", "haar", capsys=capsys)
    assert rc == 0 and payload["video"]["faces_seen"] == 2
    assert "2 faces seen; following the larger one" in payload["notes"]


def test_two_faces_with_any_finder(tiny_bundle, tmp_path):
    """The same rule through another finder: two coloured squares, the larger followed."""
    def two(t: float) -> np.ndarray:
        frame = np.full((120, 160, 3), 90, np.uint8)
        frame[10:90, 2:82] = COLOURS[3]       # large, off-centre
        frame[45:85, 100:140] = COLOURS[0]   # small
        return frame

    clip = write_media(tmp_path / "squares.mp4", None, [two(i / 10) for i in range(30)])
    result = inference.analyze(clip, tiny_bundle, detector=BlobDetector())
    assert result.faces_seen == 2 and "2 faces seen; following the larger one" in result.notes
    assert all(b is None or b[0] < 60 for b in result.boxes)


def test_track_faces_counts_people_not_glitches():
    class Fixed:
        name = "fixed"

        def __init__(self, per_frame):
            self.per_frame, self.i = per_frame, 0

        def detect(self, rgb):
            out = self.per_frame[min(self.i, len(self.per_frame) - 1)]
            self.i += 1
            return out

    frames = np.zeros((9, 90, 160, 3), np.uint8)
    big, small = faces.Box(10, 10, 60, 60), faces.Box(110, 40, 130, 60)
    track = faces.track_faces(frames, Fixed([[big, small]] * 9), every=1)
    assert track.faces_seen == 2 and track.note == "2 faces seen; following the larger one"
    spurious = faces.track_faces(frames, Fixed([[big]] * 6 + [[big, small]] + [[big]] * 2), every=1)
    assert spurious.faces_seen == 1 and spurious.note == ""
    alike = faces.track_faces(frames, Fixed([[faces.Box(0, 0, 40, 40), faces.Box(60, 25, 100, 65)]] * 9), every=1)
    assert alike.note == "2 faces seen; following the more central one (they are about the same size)"


# --------------------------------------------------------------------------- 7. formats
@pytest.mark.parametrize("suffix", sorted(EXTENSION_WRITERS))
def test_every_decodable_voice_format_is_accepted(tiny_bundle, tmp_path, suffix):
    assert suffix in media.ACCEPTED_EXTENSIONS and suffix.lstrip(".") in media.accepted_types()
    clip = write_extension(tmp_path / f"voice{suffix}", tone(PITCHES[4], 3.0))
    result = inference.analyze(clip, tiny_bundle)
    assert result.audio.ok and result.audio.winner[0] == "angry"


def test_one_list_of_extensions_everywhere(tiny_bundle, tmp_path, capsys):
    from pipeline.entry.cli import build_parser

    assert set(media.IMAGE_EXTENSIONS) <= set(media.ACCEPTED_EXTENSIONS)
    assert len(set(media.ACCEPTED_EXTENSIONS)) == len(media.ACCEPTED_EXTENSIONS)
    predict = next(a for a in build_parser()._subparsers._group_actions[0].choices.items() if a[0] == "predict")[1]
    help_text = " ".join(predict.format_help().split())
    docs = (REPO / "docs" / "dashboard.md").read_text()
    for ext in media.ACCEPTED_EXTENSIONS:
        assert ext.lstrip(".") in help_text, ext
        assert f"`{ext}`" in docs, ext
    clip = write_extension(tmp_path / "note.opus", tone(PITCHES[4], 3.0))
    rc, payload, _ = predict_json(clip, tiny_bundle.path, capsys=capsys)
    assert rc == 0 and payload["audio"]["status"] == "ok"


# --------------------------------------------------------------------------- 8. not sure
def test_confidence_word_is_calibrated():
    word = analysis_mod.confidence_word
    assert analysis_mod.SURE_AT == 0.5
    assert word(0.70, 0.12) == "sure" and word(0.55, 0.12) == "not sure"
    assert word(0.55, None) == "sure" and word(0.45, None) == "not sure"
    assert analysis_mod.calibration_of({"ece_mean": 0.1, "accuracy_mean": 0.6, "protocol": "speaker"}) == \
        {"ece": 0.1, "accuracy": 0.6, "protocol": "speaker"}
    assert analysis_mod.calibration_of({"ece": 0.2, "accuracy": {"mean": 0.5, "std": 0.1}}) == \
        {"ece": 0.2, "accuracy": 0.5}
    assert analysis_mod.calibration_of(None) == {}


def test_answers_carry_their_calibration(calibrated_bundle, tmp_path, capsys):
    from pipeline.serve.bundle import load_bundle

    bundle = load_bundle(calibrated_bundle)
    clear = inference.analyze(write_wav(tmp_path / "clear.wav", tone(PITCHES[4], 3.0)), bundle)
    assert clear.audio.calibration == {"ece": 0.12, "accuracy": 0.61, "protocol": "speaker", "n_folds": 4}
    assert clear.audio.confidence == "sure" and clear.fused.calibration["ece"] == 0.12  # audio only
    # noise, far from anything the model learned: a weak answer, below what is stated plainly
    noise = (0.1 * np.random.default_rng(0).standard_normal(3 * SR)).astype(np.float32)
    between = write_wav(tmp_path / "noise.wav", noise)
    result = inference.analyze(between, bundle)
    assert result.audio.ok and result.audio.winner[1] - 0.12 < 0.5
    assert result.audio.confidence == "not sure" and result.fused.confidence == "not sure"
    assert "NOT SURE" in inference.describe(result)
    rc, payload, _ = predict_json(between, calibrated_bundle, capsys=capsys)
    assert rc == 0 and payload["audio"]["confidence"] == "not sure"
    assert payload["audio"]["calibration"]["ece"] == 0.12 and payload["fused"]["confidence"] == "not sure"
    # both branches answering: the fuser's own calibration
    av = write_media(tmp_path / "av.mp4", tone(PITCHES[3], 3.0), frames_for(lambda t: COLOURS[3], 3.0))
    both = inference.analyze(av, bundle, landmarks_path=str(landmarks_csv(tmp_path / "av.csv", 3.0)))
    assert both.video.calibration["ece"] == 0.20 and both.fused.calibration["ece"] == 0.15


# --------------------------------------------------------------------------- odd files (a newcomer's attack)
def test_a_one_sample_wav_is_too_short_not_trackless(tiny_bundle, tmp_path, capsys):
    clip = write_wav(tmp_path / "one.wav", np.full(1, 0.1, np.float32), sr=48000)
    rc, payload, err = predict_json(clip, tiny_bundle.path, capsys=capsys)
    assert rc == 2 and payload["audio"]["status"].startswith("too short: 0.0")


def test_non_finite_samples_are_a_one_line_error_naming_the_file(tiny_bundle, tmp_path, capsys):
    import soundfile as sf

    y = speech(1.5).astype(np.float32)
    y[100:200] = np.nan
    y[300] = np.inf
    clip = tmp_path / "broken.wav"
    sf.write(clip, y, SR, subtype="FLOAT")
    rc, _, err = predict_json(clip, tiny_bundle.path, capsys=capsys)
    assert rc == 2 and err.count("\n") == 1
    assert "broken.wav" in err and "holds NaN or infinite sample values" in err


def test_samples_far_beyond_full_scale_answer_as_the_voice(tiny_bundle, tmp_path, capsys):
    """A float WAV of speech x 1e30 (finite, far past full scale) answers as the same
    speech does, with a note, instead of from MFCCs of inf and NaN."""
    import soundfile as sf

    y = speech(2.0).astype(np.float32)
    y /= np.abs(y).max()  # at full scale: what the loud file is read as (a level-dependent test model)
    plain, loud = tmp_path / "plain.wav", tmp_path / "loud.wav"
    sf.write(plain, y, SR, subtype="FLOAT")
    sf.write(loud, y * np.float32(1e30), SR, subtype="FLOAT")
    a, b = inference.analyze(plain, tiny_bundle), inference.analyze(loud, tiny_bundle)
    assert b.audio.ok and np.isfinite(b.mfcc).all()
    assert np.allclose(list(a.audio.probabilities.values()), list(b.audio.probabilities.values()), atol=1e-3)
    assert any("far beyond full scale" in n for n in b.notes) and not any("beyond" in n for n in a.notes)


def test_an_unreadable_picture_is_refused_not_answered(tiny_bundle):
    """A picture that cannot be decoded is bad input (a one-line error), as an unreadable
    clip is, not an answer with the status "not a readable video file"."""
    import cv2

    ok, jpg = cv2.imencode(".jpg", face_image(3, 160))
    with pytest.raises(media.MediaError, match="not a readable image"):
        inference.analyze(jpg.tobytes()[:300], tiny_bundle)


def test_a_photo_renamed_mp4_is_a_photo():
    import cv2

    from pipeline.core.media import is_image

    ok, png = cv2.imencode(".png", face_image(0, 48))
    assert ok and is_image(png.tobytes()) and not is_image(b"RIFF....WAVEfmt ")
    assert is_image(b"not-a-real-photo", name="x.jpg")  # the extension still counts (then "not readable")


def test_predict_refuses_missing_paths_and_bad_landmarks_up_front(tiny_bundle, tmp_path, capsys):
    from pipeline.entry.cli import main

    clip = write_wav(tmp_path / "voice.wav", speech(2.0))
    empty_folder = tmp_path / "empty"
    empty_folder.mkdir()
    (empty_folder / "notes.txt").write_text("not a clip")
    for args, said in ((["predict", str(tmp_path / "nope.wav")], "no such file"),
                       (["predict", str(empty_folder)], "holds no clip or photo"),
                       (["predict", str(clip), "--landmarks", str(tmp_path / "none.csv")], "landmark file not found"),
                       (["predict", str(clip), "--landmarks", str(clip)], "")):
        assert main([*args, "--bundle", str(tiny_bundle.path)]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error: ") and said in err and err.count("\n") == 1, err


def test_predict_answers_several_clips_with_the_models_loaded_once(tiny_bundle, tmp_path, capsys, monkeypatch):
    """A folder of clips, or several names, is answered in one process: the bundle loads
    once, --json prints one object per line (JSON Lines), a file that cannot be analysed
    is reported on stderr while the others are answered, and the exit code says so."""
    import json

    from pipeline.entry.cli import main
    from pipeline.serve import bundle as bundle_mod

    loads = []
    real_load = bundle_mod.load_bundle
    monkeypatch.setattr(bundle_mod, "load_bundle", lambda *a, **kw: loads.append(a) or real_load(*a, **kw))
    folder = tmp_path / "takes"
    folder.mkdir()
    write_wav(folder / "b.wav", speech(2.0, seed=3))
    write_wav(folder / "a.wav", speech(2.0, seed=2))
    (folder / "notes.txt").write_text("not a clip: left out")
    (folder / "c.mp3").write_bytes(b"")  # an empty file: refused before the models load
    assert main(["predict", str(folder), "--json", "--bundle", str(tiny_bundle.path)]) == 2
    out, err = capsys.readouterr()
    answers = [json.loads(line) for line in out.splitlines()]
    assert [Path(a["source"]).name for a in answers] == ["a.wav", "b.wav"]  # sorted, one line each
    assert all(a["audio"]["status"] for a in answers)
    assert err.count("\n") == 1 and err.startswith("error: ") and "c.mp3" in err and "empty" in err, err
    assert len(loads) == 1
    # every file good: exit 0; text answers one after another, each headed by its path;
    # a file named twice is answered once
    a, b = str(folder / "a.wav"), str(folder / "b.wav")
    assert main(["predict", a, b, a, "--bundle", str(tiny_bundle.path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"== {a} ==\n") and out.count(f"\n\n== {b} ==\n") == 1 and out.count("a.wav: ") == 1
    assert not err
    # nothing usable: said once, no model loaded; a refused file named by its path as given
    loads.clear()
    assert main(["predict", str(folder / "c.mp3"), str(tmp_path / "nope.wav"), "--bundle", str(tiny_bundle.path)]) == 2
    err = capsys.readouterr().err
    assert f"error: {folder / 'c.mp3'} is empty" in err, err
    assert "nothing to analyse: all 2 refused" in err and err.count("\n") == 3 and not loads
    # an empty name (an unset variable) or a folder with no clip is refused on its own line;
    # the other names are still answered
    empty_folder = tmp_path / "nothing"
    empty_folder.mkdir()
    (empty_folder / "take.wav").mkdir()  # a folder named like a clip is not one
    assert main(["predict", "", str(empty_folder), a, "--json", "--bundle", str(tiny_bundle.path)]) == 2
    out, err = capsys.readouterr()
    assert [Path(json.loads(line)["source"]).name for line in out.splitlines()] == ["a.wav"]
    assert "an empty name was given" in err and "nothing holds no clip or photo" in err and err.count("\n") == 2
    # a folder of one clip still prints JSON Lines: the format does not depend on the count
    one = tmp_path / "one"
    one.mkdir()
    write_wav(one / "take10.wav", speech(2.0))
    write_wav(one / "take2.wav", speech(2.0))
    assert main(["predict", str(one), "--json", "--bundle", str(tiny_bundle.path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [Path(json.loads(line)["source"]).name for line in lines] == ["take2.wav", "take10.wav"]  # natural order
    (one / "take10.wav").unlink()
    assert main(["predict", str(one), "--json", "--bundle", str(tiny_bundle.path)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    # a landmark file belongs to one clip
    assert main(["predict", str(folder), "--landmarks", str(tmp_path / "x.csv"), "--bundle", str(tiny_bundle.path)]) == 2
    assert "--landmarks belongs to one clip" in capsys.readouterr().err


def test_a_name_with_a_newline_stays_one_line(tiny_bundle, tmp_path, capsys):
    """A file name holding a newline or tab is shown escaped: the text answer's first
    line names the whole file and an error stays one line."""
    from pipeline.entry.cli import main

    clip = write_wav(tmp_path / "two\nlines\t.wav", speech(2.0))
    assert main(["predict", str(clip), "--bundle", str(tiny_bundle.path)]) in (0, 1)
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("two\\nlines\\t.wav: 2.0 s"), first
    assert main(["predict", str(tmp_path / "gone\n.wav"), "--bundle", str(tiny_bundle.path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "gone\\n.wav: no such file" in err, err
    assert media.printable("plain é.wav") == "plain é.wav"


def test_pipes_devices_and_unreadable_files_are_refused_in_words(tiny_bundle, tmp_path, capsys, monkeypatch):
    """A named pipe or a device is never opened (reading one blocks or never ends) and a
    file the user may not read is said to be so: one line, exit 2, no traceback."""
    from pipeline.entry.cli import main

    pipe = tmp_path / "pipe.wav"
    os.mkfifo(pipe)
    for path in (pipe, Path(os.devnull)):
        assert main(["predict", str(path), "--bundle", str(tiny_bundle.path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "not a regular file" in err and err.count("\n") == 1, err
    import cv2

    locked = write_wav(tmp_path / "locked.wav", speech(1.0))
    picture = tmp_path / "locked.png"
    picture.write_bytes(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    real_access = os.access  # (root may read anything: the denial is the one the OS gives others)
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: (Path(p).name not in ("locked.wav", "locked.png")
                                                             and real_access(p, mode, **kw)))
    for path in (locked, picture):
        assert main(["predict", str(path), "--bundle", str(tiny_bundle.path)]) == 2
        err = capsys.readouterr().err
        assert err == f"error: {path} cannot be read: permission denied\n", err
    # a picture whose read fails anyway (a folder on the way, a race): said, not raised
    monkeypatch.setattr(os, "access", real_access)
    monkeypatch.setattr(Path, "read_bytes", lambda self: (_ for _ in ()).throw(PermissionError(13, "Permission denied")))
    with pytest.raises(media.MediaError, match="cannot be read \\(Permission denied\\)"):
        media.load_image(picture)


def test_a_picture_too_large_is_refused_before_decoding(tmp_path, monkeypatch):
    """The pixel count a picture's header states is checked before it is decoded (a
    small PNG can claim 16,000 x 16,000 pixels); pictures within the limit decode."""
    import cv2

    ok, png = cv2.imencode(".png", np.full((40, 30, 3), 128, np.uint8))
    monkeypatch.setattr(media, "MAX_PIXELS", 40 * 30)
    assert media.load_image(png.tobytes()).shape == (40, 30, 3)
    monkeypatch.setattr(media, "MAX_PIXELS", 40 * 30 - 1)
    with pytest.raises(media.MediaError, match=r"too large \(30 x 40 pixels"):
        media.load_image(png.tobytes())


def test_a_png_cut_short_is_refused_in_one_line(tmp_path, capfd):
    """A PNG cut short (or with a chunk failing its CRC) is refused by Pillow's check
    before OpenCV's libpng sees it, which would print its own line to stderr."""
    import cv2

    ok, png = cv2.imencode(".png", face_image(1, 96))
    data = png.tobytes()
    mid = len(data) // 2  # inside the image data (IDAT)
    assert media.load_image(data).shape == (96, 96, 3)
    for broken in (data[: len(data) // 2], data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1:]):
        with pytest.raises(media.MediaError, match="incomplete or damaged"):
            media.load_image(broken)
    assert "libpng" not in capfd.readouterr().err


def test_pictures_that_end_before_the_sound_are_said(tiny_bundle, tmp_path, capsys):
    """A clip whose pictures stop after 1 s while its sound goes on for 4 s: the answer
    says only that first second can show a face (a clip with both to the end says
    nothing of the kind)."""
    short = write_media(tmp_path / "short.mp4", tone(PITCHES[2], 4.0), frames_for(lambda t: COLOURS[2], 1.0))
    result = inference.analyze(short, tiny_bundle, landmarks_path=str(landmarks_csv(tmp_path / "s.csv", 1.0)))
    assert any(n.startswith("the pictures end at 1.0 s, the sound at 4.") and n.endswith("only the first 1.0 s "
               "can show a face") for n in result.notes), result.notes
    whole = write_media(tmp_path / "whole.mp4", tone(PITCHES[2], 4.0), frames_for(lambda t: COLOURS[2], 4.0))
    result = inference.analyze(whole, tiny_bundle, landmarks_path=str(landmarks_csv(tmp_path / "w.csv", 4.0)))
    assert not any("pictures end" in n for n in result.notes), result.notes


def test_a_cut_short_file_says_so(tmp_path):
    """The first half of a faststart m4a still opens (its index comes first) and decodes
    to half its stated length: the note says the file is damaged or cut short."""
    import av

    from pipeline.core import media

    path = tmp_path / "whole.m4a"
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("aac", rate=16000)
        _encode_audio(out, stream, speech(4.0), 16000)
    data = path.read_bytes()
    (tmp_path / "half.m4a").write_bytes(data[: len(data) // 2])
    full = media.decode(path, sample_rate=16000)
    half = media.decode(tmp_path / "half.m4a", sample_rate=16000)
    assert full.waveform is not None and not any("cut short" in n for n in full.notes), full.notes
    assert any("damaged or cut short" in n for n in half.notes), (half.notes, half.audio_error)
    # the answer covers what was decoded, not the length the file claims
    assert 0.0 < half.decoded_seconds < full.decoded_seconds - 0.5 and full.decoded_seconds > full.duration - 0.5
    assert inference._analysed_seconds(half, half.duration) == half.decoded_seconds
    assert inference._analysed_seconds(full, full.duration) == min(full.duration, inference.MAX_SECONDS)


def test_a_clipped_recording_is_noted(tmp_path):
    from pipeline.core import media

    y = speech(2.0)
    clean = write_wav(tmp_path / "clean.wav", 0.5 * y / np.abs(y).max())
    hot = write_wav(tmp_path / "hot.wav", np.clip(40.0 * y, -1.0, 1.0))
    assert not any("clipped" in n for n in media.decode(clean, sample_rate=16000).notes)
    notes = media.decode(hot, sample_rate=16000).notes
    assert any(n.startswith("the sound is clipped (") for n in notes), notes
    # a float WAV may hold samples far beyond full scale without any being flattened
    import soundfile as sf

    sf.write(tmp_path / "loud_float.wav", (1000.0 * y).astype(np.float32), SR, subtype="FLOAT")
    assert not any("clipped" in n for n in media.decode(tmp_path / "loud_float.wav", sample_rate=16000).notes)
    sf.write(tmp_path / "hot_float.wav", np.clip(40.0 * y, -1.0, 1.0).astype(np.float32), SR, subtype="FLOAT")
    assert any("clipped" in n for n in media.decode(tmp_path / "hot_float.wav", sample_rate=16000).notes)


def _wav_with_trailer(path: Path, y: np.ndarray | bytes, declared: int | None, trailer: bytes) -> Path:
    """16-bit mono WAV at SR whose 'data' chunk states ``declared`` bytes (None: the
    truth), followed by the RIFF chunks ``trailer``; ``y`` samples, or the PCM bytes."""
    import struct

    pcm = y if isinstance(y, bytes) else (np.clip(y, -1, 1) * 32767).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, SR, SR * 2, 2, 16)
    size = len(pcm) if declared is None else declared
    body = (b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", size) + pcm + trailer)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def _chunk(kind: bytes, body: bytes) -> bytes:
    import struct

    return kind + struct.pack("<I", len(body)) + body + (b"\0" if len(body) % 2 else b"")


@pytest.mark.parametrize("declared", [0, 0xFFFFFFFF, 10**9])
def test_a_wav_header_without_the_sounds_length_does_not_read_metadata_as_sound(tmp_path, declared):
    """Recorders and streaming writers leave the 'data' length at 0 or 0xFFFFFFFF; FFmpeg
    then reads to the end of the file, and metadata written after the sound (LIST,
    padding) became 0.6 s of full-scale noise. The sound ends where the metadata begins."""
    y = 0.3 * np.sin(2 * np.pi * 220 * np.arange(2 * SR) / SR).astype(np.float32)
    trailer = _chunk(b"LIST", b"INFOISFT" + (14).to_bytes(4, "little") + b"Lavf58.76.100\0") \
        + _chunk(b"JUNK", bytes(range(256)) * 78 + b"\x01")
    clip = _wav_with_trailer(tmp_path / "streamed.wav", y, declared, trailer)
    assert media.wav_sound_seconds(clip) == pytest.approx(2.0)
    decoded = media.decode(clip, sample_rate=SR)
    assert decoded.waveform.size == 2 * SR and decoded.info.duration == pytest.approx(2.0)
    assert np.abs(decoded.waveform[-SR // 4:]).max() < 0.35 and not decoded.notes  # no noise, no "clipped"
    assert media.load_audio(clip, SR).size == 2 * SR
    assert media.load_audio(clip.read_bytes(), SR).size == 2 * SR  # an upload: the same


def test_a_wav_whose_header_is_right_or_that_holds_no_metadata_is_read_as_before(tmp_path):
    y = 0.3 * np.sin(2 * np.pi * 220 * np.arange(SR) / SR).astype(np.float32)
    trailer = _chunk(b"LIST", b"INFOISFT" + (4).to_bytes(4, "little") + b"abc\0")
    told = _wav_with_trailer(tmp_path / "told.wav", y, None, trailer)  # FFmpeg stops at the stated length
    assert media.wav_sound_seconds(told) is None and media.load_audio(told, SR).size == SR
    bare = _wav_with_trailer(tmp_path / "bare.wav", y, 0xFFFFFFFF, b"")  # a recording stopped early
    assert media.wav_sound_seconds(bare) is None and media.load_audio(bare, SR).size == SR
    # sound that happens to hold the bytes "LIST" is still sound: no chunks from there end the file
    pcm = (0.3 * np.sin(2 * np.pi * 220 * np.arange(SR) / SR) * 32767).astype("<i2").tobytes()
    odd = _wav_with_trailer(tmp_path / "odd.wav", pcm[:-800] + b"LIST" + (5000).to_bytes(4, "little") + pcm[-792:], 0, b"")
    assert media.wav_sound_seconds(odd) is None and media.load_audio(odd, SR).size == SR
    assert media.wav_sound_seconds(tmp_path / "missing.wav") is None
    assert media.wav_sound_seconds(b"RIFF\x00\x00\x00\x00WAVE") is None


def test_damaged_pictures_and_containers_are_refused_in_our_words_only(tmp_path, capfd):
    """A damaged BMP made OpenCV print its own error line before ours; an MP4 damaged
    inside was called "cut short" with its garbage bytes shown as a box name."""
    with pytest.raises(media.MediaError, match="not a readable image"):
        media.load_image(b"BM garbage" * 4)
    assert "[ERROR" not in capfd.readouterr().err
    rng = np.random.default_rng(0)
    head = (24).to_bytes(4, "big") + b"ftypisom" + bytes(12)
    damaged = head + (108).to_bytes(4, "big") + b"mdat" + bytes(100) + rng.integers(128, 256, 4000, dtype=np.uint8).tobytes()
    assert media.cut_short_reason(damaged) == ""  # not a box structure: the decoder judges it
    with pytest.raises(media.MediaError) as err:
        media.check_input(damaged)
    assert str(err.value).isascii(), err.value


def test_an_interrupted_predict_does_not_promise_a_resume(tiny_bundle, tmp_path, capsys, monkeypatch):
    from pipeline.entry.cli import main

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(inference, "analyze", interrupted)
    clip = write_wav(tmp_path / "voice.wav", speech(2.0))
    assert main(["predict", str(clip), "--bundle", str(tiny_bundle.path)]) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_a_name_too_long_for_the_file_system_is_refused_in_words(tiny_bundle, tmp_path, capsys):
    from pipeline.entry.cli import main

    long_name = str(tmp_path / ("x" * 300 + ".wav"))
    for args in ([long_name], [long_name, str(tmp_path / "nope.wav")]):
        assert main(["predict", *args, "--bundle", str(tiny_bundle.path)]) == 2
        err = capsys.readouterr().err
        assert "cannot be read (File name too long)" in err and "Errno" not in err, err
