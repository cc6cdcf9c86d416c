"""Labels, preprocessing parameters, manifest I/O and media decoding."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from pipeline.core import labels, media
from pipeline.core.corpora import manifest
from pipeline.core.preprocessing import Preprocessing


def test_label_sets_are_subsets_in_fixed_order():
    assert labels.label_set("six") == ("neutral", "calm", "happy", "sad", "angry", "fearful")
    for name, emotions in labels.LABEL_SETS.items():
        assert set(emotions) <= set(labels.EMOTIONS), name
        assert len(set(emotions)) == len(emotions)
    assert labels.ravdess_emotion_code("fearful") == "06"
    with pytest.raises(ValueError, match="unknown label set"):
        labels.label_set("seventeen")
    assert labels.label_set("seven") == ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")


def test_preprocessing_roundtrip_and_validation():
    params = Preprocessing(labels="eight", duration=2.5)
    again = Preprocessing.from_dict({**params.to_dict(), "future_key": 1})
    assert again == params
    assert params.window_samples == int(2.5 * 22050)
    assert params.classes[-1] == "surprised"
    assert params.digest("n_mfcc") == Preprocessing(labels="six").digest("n_mfcc")
    assert params.digest() != Preprocessing().digest()
    with pytest.raises(ValueError):
        Preprocessing(labels="nope")
    with pytest.raises(ValueError):
        Preprocessing(duration=0)


def _row(i: int, **kw) -> dict:
    row = {c: "" for c in manifest.COLUMNS}
    row.update(clip_id=f"x:{i}", corpus="x", actor="01", gender="male", emotion="sad")
    row.update(kw)
    return row


def test_manifest_save_load_roundtrip(tmp_path):
    frame = pd.DataFrame([_row(1, audio_path="/a.wav"), _row(2, video_path="/b.mp4")])
    path = manifest.save(frame, tmp_path / "m" / "manifest.csv")
    back = manifest.load(path)
    assert list(back.columns[: len(manifest.COLUMNS)]) == list(manifest.COLUMNS)
    assert back["audio_path"].tolist() == ["/a.wav", ""]
    assert manifest.has_modality(back, "video").tolist() == [False, True]
    assert not list(tmp_path.joinpath("m").glob("*.tmp"))


def test_manifest_rejects_duplicates_and_missing_columns():
    with pytest.raises(ValueError, match="duplicate"):
        manifest.validate(pd.DataFrame([_row(1), _row(1)]))
    with pytest.raises(ValueError, match="lacks columns"):
        manifest.validate(pd.DataFrame([{"clip_id": "a"}]))


def test_scan_summary_counts_skips():
    summary = manifest.ScanSummary()
    for i in range(5):
        summary.skip("bad name", f"junk{i}.txt")
    assert summary.n_skipped == 5 and len(summary.examples["bad name"]) == 3


def _wav_bytes(y: np.ndarray, sr: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_load_audio_resamples_and_downmixes(tmp_path):
    sr = 44100
    t = np.arange(sr) / sr
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([tone, tone], axis=1)
    path = tmp_path / "tone.wav"
    sf.write(path, stereo, sr, subtype="PCM_16")
    y = media.load_audio(path, 16000)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - 16000) < 200
    spectrum = np.abs(np.fft.rfft(y[:16000]))
    assert abs(np.argmax(spectrum) * 16000 / len(y[:16000]) - 440) < 5
    assert 0.4 < np.abs(y).max() < 0.6
    assert media.load_audio(_wav_bytes(tone, sr), 22050).size > 20000


@pytest.mark.parametrize("payload, reason", [
    (b"", "empty"),
    (b"this is not audio at all" * 20, "not a readable"),
])
def test_load_audio_clear_errors(payload, reason):
    with pytest.raises(media.MediaError, match=reason):
        media.load_audio(payload, 22050)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(media.MediaError, match="no such file"):
        media.load_audio(tmp_path / "nope.wav", 22050)
    with pytest.raises(media.MediaError, match="folder"):
        media.probe(tmp_path)


def test_video_roundtrip_frames_and_audio(tmp_path):
    import av

    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(25):
            img = np.full((48, 64, 3), i * 10, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    info = media.probe(path)
    assert info.has_video and not info.has_audio and info.width == 64
    frames = list(media.iter_frames(path))
    assert len(frames) == 25
    times = [t for t, _ in frames]
    assert times == sorted(times) and abs(times[1] - times[0] - 0.04) < 1e-3
    assert frames[0][1].shape == (48, 64, 3)
    small = next(media.iter_frames(path, max_side=32))[1]
    assert max(small.shape[:2]) == 32
    with pytest.raises(media.MediaError, match="no audio track"):
        media.load_audio(path, 22050)
