"""The one prediction path: analyze() on wav and mp4 clips, abstentions, the fusion
fallback, long-clip timelines and the ``predict`` CLI's exit codes.

The bundle here is tiny but real: an audio model trained on the MFCC of tones of six
pitches (one per emotion) and a video model trained on face crops of six colours, both
scikit-learn, so the tests run in seconds without TensorFlow.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from pipeline.core import audio
from pipeline.research import export as export_mod
from pipeline.serve import bundle as bundle_mod, inference
from pipeline.serve.fusion import LateFusion
from pipeline.core.preprocessing import Preprocessing

SR = 16000
FPS = 10
PITCHES = (140.0, 190.0, 250.0, 330.0, 430.0, 560.0)  # one tone per class
COLOURS = ((220, 40, 40), (40, 200, 40), (40, 40, 220), (220, 220, 40), (220, 40, 220), (40, 220, 220))
FRAME = (160, 120)  # width, height of the test videos
FACE = (50, 30, 110, 90)  # x0, y0, x1, y1: where the "face" (a coloured square) is drawn


def tone(pitch: float, seconds: float, rng: np.random.Generator | None = None) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    y = 0.3 * np.sin(2 * np.pi * pitch * t) + 0.1 * np.sin(2 * np.pi * 2 * pitch * t)
    if rng is not None:
        y = y + 0.01 * rng.standard_normal(y.size)
    return y.astype(np.float32)


def frames_for(colour_of, seconds: float) -> list[np.ndarray]:
    """Grey frames with a coloured square where the face is; colour_of(t) -> RGB."""
    out = []
    for i in range(int(seconds * FPS)):
        frame = np.full((FRAME[1], FRAME[0], 3), 90, np.uint8)
        x0, y0, x1, y1 = FACE
        frame[y0:y1, x0:x1] = colour_of(i / FPS)
        out.append(frame)
    return out


def write_media(path: Path, y: np.ndarray | None, frames: list[np.ndarray] | None) -> Path:
    """Write a wav (audio only) or an mp4 (h264 + aac) with PyAV."""
    import av

    with av.open(str(path), "w") as out:
        v_stream = a_stream = None
        if frames is not None:
            v_stream = out.add_stream("h264", rate=FPS)
            v_stream.width, v_stream.height, v_stream.pix_fmt = FRAME[0], FRAME[1], "yuv420p"
        if y is not None:
            a_stream = out.add_stream("pcm_s16le" if frames is None else "aac", rate=SR)
            a_stream.layout = "mono"
        if v_stream is not None:
            for f in frames:
                for packet in v_stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                    out.mux(packet)
            for packet in v_stream.encode():
                out.mux(packet)
        if a_stream is not None:
            pcm = (np.clip(y, -1, 1) * 32767).astype(np.int16)
            fmt = "s16" if frames is None else "fltp"
            step = 1024
            for i in range(0, len(pcm), step):
                chunk = pcm[i:i + step] if fmt == "s16" else (pcm[i:i + step] / 32767.0).astype(np.float32)
                frame = av.AudioFrame.from_ndarray(chunk[None, :], format=fmt, layout="mono")
                frame.rate = SR
                for packet in a_stream.encode(frame):
                    out.mux(packet)
            for packet in a_stream.encode():
                out.mux(packet)
    return path


def landmarks_csv(path: Path, seconds: float) -> Path:
    """An OpenFace-layout CSV whose 68 points outline the coloured square."""
    x0, y0, x1, y1 = FACE
    xs = np.linspace(x0, x1, 68)
    ys = np.linspace(y0, y1, 68)
    header = ["frame", "timestamp", "confidence", "success"] + [f"x_{i}" for i in range(68)] + [f"y_{i}" for i in range(68)]
    rows = [", ".join(header)]
    for i in range(int(seconds * FPS)):
        rows.append(", ".join([str(i + 1), f"{i / FPS:.3f}", "0.98", "1"]
                              + [f"{v:.1f}" for v in xs] + [f"{v:.1f}" for v in ys]))
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory) -> bundle_mod.Bundle:
    """Audio: logistic regression on mfcc_mean of tones; video: on 16x16 crops of colours."""
    from sklearn.linear_model import LogisticRegression

    params = Preprocessing(sample_rate=SR, offset=0.5, duration=2.0, n_frames=6, crop_size=16, labels="six")
    rng = np.random.default_rng(0)
    xa, ya, xv, yv = [], [], [], []
    for label, (pitch, colour) in enumerate(zip(PITCHES, COLOURS)):
        for k in range(4):
            xa.append(audio.featurize(tone(pitch * (1 + 0.02 * k), 3.0, rng), params, "mfcc_mean"))
            ya.append(label)
            # what a crop of the test videos looks like: the square plus grey margin
            crops = np.full((6, 16, 16, 3), 90.0)
            crops[:, 2:14, 2:14] = colour
            crops = np.clip(crops + rng.normal(0, 10, crops.shape), 0, 255)
            xv.append(crops.astype(np.uint8).reshape(-1).astype(np.float32))  # as training.model_input feeds it
            yv.append(label)
    audio_model = LogisticRegression(max_iter=2000).fit(np.array(xa), ya)
    video_model = LogisticRegression(max_iter=2000).fit(np.array(xv), yv)
    pa = audio_model.predict_proba(np.array(xa))
    pv = video_model.predict_proba(np.array(xv))
    fuser = LateFusion("rule_weighted", classes=params.classes).fit(pa, pv, np.array(ya))
    out = tmp_path_factory.mktemp("bundles") / "tiny"
    export_mod.write_bundle(
        out, name="tiny",
        audio=bundle_mod.BranchModel("audio", "logreg", "sklearn", "mfcc_mean", params, audio_model,
                                     metrics={"accuracy_mean": 1.0}),
        video=bundle_mod.BranchModel("video", "logreg", "sklearn", "frames", params, video_model),
        fusion=fuser, extra={"detector": "haar"})
    return bundle_mod.load_bundle(out)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(1)
    out = {
        "wav_angry": write_media(root / "angry.wav", tone(PITCHES[4], 3.0, rng), None),
        "silent": write_media(root / "silent.wav", np.zeros(SR * 2, np.float32), None),
        "av_sad": write_media(root / "sad.mp4", tone(PITCHES[3], 3.0, rng), frames_for(lambda t: COLOURS[3], 3.0)),
        "faceless": write_media(root / "faceless.mp4", tone(PITCHES[2], 3.0, rng),
                                [np.full((FRAME[1], FRAME[0], 3), 30, np.uint8)] * int(3.0 * FPS)),
    }
    # 20 s: first half "happy" (tone and colour), second half "fearful"
    y = np.concatenate([tone(PITCHES[2], 10.0, rng), tone(PITCHES[5], 10.0, rng)])
    out["long"] = write_media(root / "long.mp4", y, frames_for(lambda t: COLOURS[2] if t < 10 else COLOURS[5], 20.0))
    out["long_csv"] = landmarks_csv(root / "long.csv", 20.0)
    out["av_csv"] = landmarks_csv(root / "sad.csv", 3.0)
    corrupt = root / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    out["corrupt"] = corrupt
    return out


def test_windows_single_and_sliding():
    params = Preprocessing(offset=0.5, duration=3.0)
    assert inference.windows(3.7, params) == [(0.5, 3.5)]
    spans = inference.windows(20.0, params)
    assert spans[0] == (0.0, 3.0) and spans[-1][1] == 20.0 and len(spans) == 7
    assert all(b - a >= 1.5 for a, b in spans)


def test_audio_only_wav(tiny_bundle, clips):
    result = inference.analyze(clips["wav_angry"], tiny_bundle)
    assert result.audio.ok and result.audio.winner[0] == "angry"
    assert result.video.status == inference.NO_VIDEO
    assert result.fused.ok and result.fused.winner[0] == "angry"
    assert "audio only" in result.fused.detail
    assert result.mfcc.shape[0] == 40 and result.timeline == []
    assert set(result.timings) >= {"decode_audio", "features_audio", "predict_audio", "total"}


def test_audio_and_video_with_landmarks_fuse(tiny_bundle, clips):
    result = inference.analyze(clips["av_sad"], tiny_bundle, landmarks_path=str(clips["av_csv"]))
    assert result.audio.winner[0] == "sad" and result.video.winner[0] == "sad"
    assert result.fused.detail == "fusion" and result.fused.winner[0] == "sad"
    assert result.frames_with_face == 6 and result.crops.shape == (6, 16, 16, 3)
    payload = result.to_json()
    assert payload["video"]["frames_with_face"] == 6
    assert abs(sum(payload["fused"]["probabilities"].values()) - 1) < 1e-6


def test_no_face_falls_back_to_audio(tiny_bundle, clips):
    from pipeline.core.faces import HaarDetector

    result = inference.analyze(clips["faceless"], tiny_bundle, detector=HaarDetector())
    assert not result.video.ok and "face" in result.video.status
    assert result.frames_with_face == 0
    assert result.audio.winner[0] == "happy"
    assert result.fused.ok and result.fused.winner[0] == "happy"
    assert "audio only" in result.fused.detail and "face" in result.fused.detail


def test_long_clip_gives_a_timeline(tiny_bundle, clips):
    result = inference.analyze(clips["long"], tiny_bundle, landmarks_path=str(clips["long_csv"]))
    assert len(result.timeline) == 10  # 20 s in windows of 2 s
    first, last = result.timeline[0], result.timeline[-1]
    assert first.fused.winner[0] == "happy" and last.fused.winner[0] == "fearful"
    assert first.audio.winner[0] == "happy" and last.video.winner[0] == "fearful"
    assert result.fused.ok and set(result.fused.probabilities) == set(tiny_bundle.classes)
    payload = json.loads(json.dumps(result.to_json()))
    # the windows follow the voice (serve/windows.py): 20.06 s of it in ten equal pieces
    assert len(payload["timeline"]) == 10 and payload["timeline"][3]["start"] == pytest.approx(6.0, abs=0.05)


def test_silent_audio_abstains(tiny_bundle, clips):
    result = inference.analyze(clips["silent"], tiny_bundle)
    assert result.audio.status == inference.SILENT
    assert not result.fused.ok and "silent audio" in result.fused.status


def test_corrupt_file_raises_media_error(tiny_bundle, clips):
    from pipeline.core.media import MediaError

    with pytest.raises(MediaError):
        inference.analyze(clips["corrupt"], tiny_bundle)


def test_describe_is_plain_words(tiny_bundle, clips):
    text = inference.describe(inference.analyze(clips["wav_angry"], tiny_bundle))
    assert "angry" in text and "abstains: no video track" in text


@pytest.mark.parametrize("clip, code", [("wav_angry", 0), ("silent", 2), ("corrupt", 2)])
def test_predict_cli(tiny_bundle, clips, capsys, clip, code):
    from pipeline.entry.cli import main

    rc = main(["predict", str(clips[clip]), "--bundle", str(tiny_bundle.path), "--json"])
    captured = capsys.readouterr()
    assert rc == code
    if code == 0:
        payload = json.loads(captured.out)
        assert set(payload) >= {"audio", "video", "fused", "timeline", "timings"}
        assert payload["audio"]["status"] == "ok" and "frames_with_face" in payload["video"]
    else:
        assert captured.err.startswith("error:") and captured.err.count("\n") == 1


def test_predict_cli_missing_bundle(tmp_path, clips, capsys):
    from pipeline.entry.cli import main

    assert main(["predict", str(clips["wav_angry"]), "--bundle", str(tmp_path / "none")]) == 2
    assert "no bundle" in capsys.readouterr().err


def test_real_ravdess_wav(shared_data, tiny_bundle):
    """A real RAVDESS file goes through the same path (the tiny bundle's answer is
    meaningless; only that it is a probability distribution is checked)."""
    wav = next(iter(sorted(shared_data.rglob("*.wav"))))
    result = inference.analyze(wav, tiny_bundle)
    assert result.audio.ok and abs(sum(result.audio.probabilities.values()) - 1) < 1e-6
    assert os.path.basename(result.source) == wav.name
