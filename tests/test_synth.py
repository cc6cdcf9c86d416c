"""The synthetic corpus: layout, formats, determinism, landmarks on the drawn face."""
from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.entry import cli
from pipeline.core import media
from pipeline.core.labels import EMOTIONS, RAVDESS_EMOTION_CODES
from pipeline.core.synth import corpus, profiles, voice

EMOS = ("neutral", "angry")  # 4 + 8 = 12 takes: enough to see every code path, fast


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "corpus"
    summary = corpus.generate(root, n_actors=1, seed=7, progress=False, emotions=EMOS, n_jobs=1)
    assert summary.n_generated == 12 and summary.files_written == 36
    return root


def _files(root: Path, pattern: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.glob(f"Actor_*/{pattern}"))}


# --------------------------------------------------------------------------- profiles
def test_profiles_cover_every_emotion_with_cited_sources():
    assert tuple(r.emotion for r in profiles.VOICE_TABLE) == EMOTIONS
    assert tuple(r.emotion for r in profiles.FACE_TABLE) == EMOTIONS
    for row in profiles.VOICE_TABLE + profiles.FACE_TABLE:
        assert all(key in profiles.SOURCES for key in row.source.split(",")), row
    neutral = profiles.voice_profile("neutral", "normal")
    assert all(neutral[c] == (1.0 if c in profiles.MULTIPLICATIVE else 0.0) for c in profiles.VOICE_CUES)
    normal, strong = profiles.voice_profile("angry", "normal"), profiles.voice_profile("angry", "strong")
    assert strong["loudness_db"] > normal["loudness_db"] > 0 and strong["rate"] > normal["rate"] > 1
    assert profiles.face_profile("happy", "strong")["lip_corner"] > profiles.face_profile("happy")["lip_corner"] > 0
    with pytest.raises(ValueError, match="no profile"):
        profiles.voice_profile("bored")
    assert "| angry |" in profiles.markdown_tables()


def test_emotion_cues_change_the_acoustics():
    actor = voice.random_actor(np.random.default_rng(3), female=True)
    sad = voice.synthesize("01", profiles.voice_profile("sad", "strong"), actor, np.random.default_rng(1))
    angry = voice.synthesize("01", profiles.voice_profile("angry", "strong"), actor, np.random.default_rng(1))

    def speech(u: voice.Utterance) -> np.ndarray:
        return u.samples[int(u.onset_s * u.sample_rate): int(u.offset_s * u.sample_rate)]

    def centroid(y: np.ndarray) -> float:
        spec = np.abs(np.fft.rfft(y))
        return float((spec * np.fft.rfftfreq(y.size, 1 / 48000)).sum() / spec.sum())

    rms = lambda y: float(np.sqrt(np.mean(y.astype(np.float64) ** 2)))  # noqa: E731
    assert rms(speech(angry)) > 2.5 * rms(speech(sad))  # ~12 dB louder
    assert centroid(speech(angry)) > centroid(speech(sad))  # flatter tilt, higher F0
    assert sad.offset_s - sad.onset_s > angry.offset_s - angry.onset_s  # slower
    assert 2.5 < angry.duration < 4.5 and 0.5 < angry.onset_s < 1.0  # RAVDESS-like timing


def test_take_grid_is_the_ravdess_speech_grid():
    grid = corpus.take_grid(2)
    assert len(grid) == 120
    names = {t.name("03") for t in grid}
    assert len(names) == 120
    for name in names:
        parts = name.split("-")
        assert len(parts) == 7 and all(len(p) == 2 and p.isdigit() for p in parts)
        assert parts[0] == "03" and parts[1] == "01" and parts[2] in RAVDESS_EMOTION_CODES
    assert not any(t.emotion == "neutral" and t.intensity == "02" for t in grid)
    assert len(corpus.take_grid(1, ["neutral", "sad"])) == 4 + 8
    with pytest.raises(ValueError, match="unknown emotions"):
        corpus.take_grid(1, ["bored"])
    with pytest.raises(ValueError, match="n_actors"):
        corpus.take_grid(0)


# --------------------------------------------------------------------------- files
def test_layout_names_and_marker(synth_root):
    folder = synth_root / "Actor_01"
    wavs = sorted(folder.glob("03-*.wav"))
    mp4s = sorted(folder.glob("01-*.mp4"))
    csvs = sorted(folder.glob("01-*.csv"))
    assert len(wavs) == len(mp4s) == len(csvs) == 12
    assert [p.stem for p in mp4s] == [p.stem for p in csvs]
    assert [p.stem[3:] for p in wavs] == [p.stem[3:] for p in mp4s]
    assert {RAVDESS_EMOTION_CODES[p.stem.split("-")[2]] for p in wavs} == set(EMOS)
    assert not list(synth_root.rglob(".tmp-*"))
    marker = json.loads((synth_root / corpus.MARKER).read_text())
    assert marker["seed"] == 7 and marker["n_actors"] == 1
    assert "not real people" in marker["synthetic"]


def test_wav_is_48k_mono_16bit(synth_root):
    path = next((synth_root / "Actor_01").glob("03-01-05-02-*.wav"))
    with wave.open(str(path)) as handle:
        assert (handle.getframerate(), handle.getnchannels(), handle.getsampwidth()) == (48000, 1, 2)
        seconds = handle.getnframes() / 48000
    assert 2.5 < seconds < 4.5
    y = media.load_audio(path, 48000)
    lead = y[: int(0.4 * 48000)]
    assert np.sqrt(np.mean(lead ** 2)) < 0.05 * np.sqrt(np.mean(y ** 2))  # silence before speech


def test_mp4_has_video_and_the_same_audio(synth_root):
    mp4 = next((synth_root / "Actor_01").glob("01-01-05-02-*.mp4"))
    wav = mp4.with_name("03" + mp4.name[2:]).with_suffix(".wav")
    info = media.probe(mp4)
    assert info.has_video and info.has_audio and info.video_fps == pytest.approx(30.0)
    frames = list(media.iter_frames(mp4))
    assert frames[0][1].shape == (corpus.FRAME_SIZE, corpus.FRAME_SIZE, 3)
    csv = pd.read_csv(mp4.with_suffix(".csv"), skipinitialspace=True)
    assert len(frames) == len(csv)
    a, b = media.load_audio(mp4, 16000), media.load_audio(wav, 16000)
    assert abs(a.size - b.size) < 0.1 * 16000
    rms = lambda y: float(np.sqrt(np.mean(y ** 2)))  # noqa: E731
    assert rms(a) == pytest.approx(rms(b), rel=0.15)


def test_csv_has_openface_columns(synth_root):
    path = next((synth_root / "Actor_01").glob("01-*.csv"))
    header = path.read_text().splitlines()[0]
    assert header.startswith("frame, timestamp, confidence, success, x_0, x_1")
    frame = pd.read_csv(path, skipinitialspace=True)
    expected = ["frame", "timestamp", "confidence", "success"]
    expected += [f"x_{i}" for i in range(68)] + [f"y_{i}" for i in range(68)]
    assert list(frame.columns) == expected
    assert frame["frame"].iloc[0] == 1 and (np.diff(frame["frame"]) == 1).all()
    assert frame["timestamp"].iloc[1] == pytest.approx(1 / 30, abs=1e-3)
    assert (frame["success"] == 1).all() and frame["confidence"].between(0.9, 1.0).all()
    xy = frame[expected[4:]].to_numpy()
    assert ((xy > 0) & (xy < corpus.FRAME_SIZE)).all()


def _skin_mask(rgb: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Pixels of the cheek's colour (the cheek: between jaw point 3 and nose point 31)."""
    cx, cy = int(round((xs[3] + xs[31]) / 2)), int(round((ys[3] + ys[31]) / 2))
    ref = np.median(rgb[cy - 1: cy + 2, cx - 1: cx + 2].reshape(-1, 3), axis=0)
    return np.abs(rgb.astype(int) - ref).max(axis=2) < 24


def test_landmarks_lie_on_the_drawn_face(synth_root):
    mp4 = next((synth_root / "Actor_01").glob("01-01-05-02-*.mp4"))
    marks = pd.read_csv(mp4.with_suffix(".csv"), skipinitialspace=True)
    frames = [rgb for _, rgb in media.iter_frames(mp4)]
    size = corpus.FRAME_SIZE
    for index in (0, len(frames) // 2, len(frames) - 1):
        rgb = frames[index]
        xs = marks[[f"x_{i}" for i in range(68)]].to_numpy()[index]
        ys = marks[[f"y_{i}" for i in range(68)]].to_numpy()[index]
        skin = _skin_mask(rgb, xs, ys)
        w, h = xs.max() - xs.min(), ys.max() - ys.min()
        x0, x1 = int(max(0, xs.min() - 0.15 * w)), int(min(size, xs.max() + 0.15 * w))
        y0, y1 = int(max(0, ys.min() - 0.15 * h)), int(min(size, ys.max() + 0.15 * h))
        inside = skin[y0:y1, x0:x1].sum()
        assert (x1 - x0) * (y1 - y0) < 0.5 * size * size  # a face box, not the whole frame
        assert inside > 0.8 * skin.sum()  # the face's skin lies within the landmark box
        assert inside > 0.4 * (x1 - x0) * (y1 - y0)  # and the crop is mostly face
        shifted = np.roll(skin, size // 2, axis=1)[y0:y1, x0:x1].sum()  # control: a box beside it
        assert shifted < 0.3 * inside


# --------------------------------------------------------------------------- determinism
def _neutral(files: dict[str, bytes]) -> dict[str, bytes]:
    return {name: data for name, data in files.items() if name.split("-")[2] == "01"}


def test_same_seed_same_bytes_other_seed_differs(synth_root, tmp_path):
    again = tmp_path / "again"
    corpus.generate(again, n_actors=1, seed=7, progress=False, emotions=("neutral",), n_jobs=1)
    first, second = _neutral(_files(synth_root, "*")), _files(again, "*")
    assert set(second) == set(first) and len(second) == 12
    for name, data in second.items():
        if not name.endswith(".mp4"):  # wav and csv byte-identical (mp4: same content)
            assert data == first[name], name
    other = tmp_path / "other"
    corpus.generate(other, n_actors=1, seed=8, progress=False, emotions=("neutral",), n_jobs=1, audio_only=True)
    changed = _files(other, "*")
    assert len(changed) == 4 and all(data != first[name] for name, data in changed.items())


def test_worker_processes_give_the_same_bytes(synth_root, tmp_path):
    pooled = tmp_path / "pooled"
    corpus.generate(pooled, n_actors=1, seed=7, progress=False, emotions=("neutral",), n_jobs=2, audio_only=True)
    first = _neutral(_files(synth_root, "03-*.wav"))
    assert _files(pooled, "*") == first and len(first) == 4


def test_rerun_resumes_without_rewriting(synth_root):
    before = {p: p.stat().st_mtime_ns for p in synth_root.rglob("*.wav")}
    summary = corpus.generate(synth_root, n_actors=1, seed=7, progress=False, emotions=EMOS, n_jobs=1)
    assert summary.n_skipped == 12 and summary.n_generated == 0
    assert {p: p.stat().st_mtime_ns for p in synth_root.rglob("*.wav")} == before
    assert "12 takes" in summary.describe()


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    assert cli.main(["synth", "--out", str(tmp_path / "x"), "--actors", "0", "-q"]) == cli.EXIT_BAD_INPUT
    assert "n_actors" in capsys.readouterr().err


def test_ravdess_adapter_indexes_it(synth_root):
    ravdess = pytest.importorskip("pipeline.core.corpora.ravdess")
    frame, summary = ravdess.scan(synth_root)
    assert len(frame) == 12 and summary.n_skipped == 0
    row = frame.iloc[0]
    assert row["audio_path"] and row["video_path"] and row["landmarks_path"]
    assert set(frame["emotion"]) == set(EMOS) and set(frame["gender"]) == {"male"}


def test_docs_show_the_profile_tables_of_the_code():
    doc = Path(__file__).resolve().parent.parent / "docs" / "synthetic.md"
    text = doc.read_text(encoding="utf-8")
    missing = [line for line in profiles.markdown_tables().splitlines() if line and line not in text]
    assert not missing, f"docs/synthetic.md is out of date with profiles.py: {missing[:2]}"
