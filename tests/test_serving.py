"""The serving path's two promises (issue 12): one container open per ``analyze`` call,
whatever the clip (sound only, pictures only, both, long), and a prediction that loads
nothing of the research side (experiments, training, splits, cross-fitting, results
store, export). Uses the tiny scikit-learn bundle of ``tests/test_inference.py``."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.serve import inference
from pipeline.core import media, video
from pipeline.core.preprocessing import Preprocessing
from test_inference import (COLOURS, PITCHES, frames_for, landmarks_csv,  # noqa: F401 (fixture)
                            tiny_bundle, tone, write_media)

#: Modules of the research path the prediction path must never import.
RESEARCH = ("pipeline.research.experiments", "pipeline.research.training", "pipeline.research.splits", "pipeline.research.fusion_runs",
            "pipeline.research.results", "pipeline.research.export", "pipeline.research.features", "pipeline.research.evaluation",
            "pipeline.research.ray_executor", "pipeline.research.face_training", "pipeline.research.crosscorpus", "pipeline.entry.demo")


@pytest.fixture(scope="module")
def serving_clips(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("serving")
    rng = np.random.default_rng(3)
    return {
        "audio": write_media(root / "a.wav", tone(PITCHES[4], 3.0, rng), None),
        "video": write_media(root / "v.mp4", None, frames_for(lambda t: COLOURS[3], 3.0)),
        "av": write_media(root / "av.mp4", tone(PITCHES[3], 3.0, rng), frames_for(lambda t: COLOURS[3], 3.0)),
        "long": write_media(root / "long.mp4", tone(PITCHES[2], 30.0, rng),
                            frames_for(lambda t: COLOURS[2] if t < 15 else COLOURS[5], 30.0)),
    }


@pytest.fixture
def opens(monkeypatch) -> list[object]:
    """Every ``av.open`` call from here on, recorded."""
    import av

    calls: list[object] = []
    real = av.open

    def counting(*args, **kwargs):
        calls.append(args[0] if args else kwargs.get("file"))
        return real(*args, **kwargs)

    monkeypatch.setattr(av, "open", counting)
    return calls


@pytest.mark.parametrize("kind", ["audio", "video", "av", "long"])
@pytest.mark.parametrize("as_bytes", [False, True])
def test_one_open_per_analyze(tiny_bundle, serving_clips, opens, tmp_path, kind, as_bytes):
    """The squares are faces to the landmark files, not to a detector."""
    src = serving_clips[kind].read_bytes() if as_bytes else serving_clips[kind]
    csv = None if kind == "audio" else str(landmarks_csv(tmp_path / "l.csv", 30.0 if kind == "long" else 3.0))
    result = inference.analyze(src, tiny_bundle, landmarks_path=csv)
    assert len(opens) == 1, f"{kind}: the file was opened {len(opens)} times"
    assert result.fused.ok and result.audio.ok == (kind != "video") and result.video.ok == (kind != "audio")
    if kind == "long":
        assert len(result.timeline) == 15 and all(w.audio.ok and w.video.ok for w in result.timeline)
        assert result.frames is not None and len(result.frames) == tiny_bundle.video.params.n_frames


def test_long_clip_with_landmarks_keeps_bounded_frames(tiny_bundle, serving_clips, tmp_path, opens):
    """Windows of a long clip are answered from one decode; the analysis keeps only a
    few display frames, not the clip's frames."""
    csv = landmarks_csv(tmp_path / "long.csv", 30.0)
    result = inference.analyze(serving_clips["long"], tiny_bundle, landmarks_path=str(csv))
    assert len(opens) == 1 and len(result.timeline) == 15
    assert result.timeline[0].video.winner[0] == "happy" and result.timeline[-1].video.winner[0] == "fearful"
    n = tiny_bundle.video.params.n_frames
    assert result.frames.shape[0] == n and result.crops.shape[0] == n


def test_window_sampler_converts_only_what_windows_need():
    """Fed 30 fps for 20 s, the sampler wants n frames a window, hands each window over
    as soon as the next begins, and never holds more than one window's frames."""
    params = Preprocessing(duration=2.0, offset=0.5, n_frames=6)
    spans = inference.windows(20.0, params)
    got: list[tuple[int, np.ndarray]] = []
    held: list[int] = []
    sampler = video.WindowSampler(6, spans, span=2.0, step=1 / 30,
                                  on_window=lambda k, t, f: got.append((k, t)))
    wanted = 0
    for i in range(600):
        t = i / 30
        if sampler.wants(t):
            wanted += 1
            sampler.add(t, np.zeros((4, 4, 3), np.uint8))
            held.append(len(sampler._rows))
    sampler.finish(spans)
    assert [k for k, _ in got] == list(range(10)) and wanted == 60 and max(held) <= 6
    assert np.allclose(got[3][1], np.linspace(6.0, 8.0 - 1 / 30, 6), atol=1 / 60)


def _window_frames(k: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(k)
    return np.linspace(2.0 * k, 2.0 * k + 1.9, 6), rng.integers(0, 255, (6, 24, 32, 3), dtype=np.uint8)


def test_faces_found_in_a_worker_thread_are_the_same_and_in_order():
    """WindowFaces with ``background=True`` gives every window the same sample as in the
    caller's thread, whatever order the batches finish in, and holds at most
    BATCHES_WAITING batches for the worker."""
    params = Preprocessing(duration=2.0, offset=0.5, n_frames=6, crop_size=16)
    kept = {}
    for background in (False, True):
        faces = video.WindowFaces(params, batch=2, display=2, background=background, full_frame=True)
        for k in range(9):
            faces(k, *_window_frames(k))
            assert len(faces._running) <= video.BATCHES_WAITING
        faces.flush()
        assert sorted(faces.samples) == list(range(9)) and faces._pool is None
        kept[background] = faces.samples
    for k in range(9):
        a, b = kept[False][k], kept[True][k]
        assert np.array_equal(a.crops, b.crops) and np.array_equal(a.frames, b.frames)
        assert np.array_equal(a.times, b.times) and a.status == b.status


def test_a_worker_error_reaches_the_caller(monkeypatch):
    params = Preprocessing(duration=2.0, offset=0.5, n_frames=6, crop_size=16)

    def broken(*args, **kwargs):
        raise RuntimeError("face finder failed")

    monkeypatch.setattr(video, "face_samples", broken)
    faces = video.WindowFaces(params, batch=1, background=True, full_frame=True)
    faces(0, *_window_frames(0))
    with pytest.raises(RuntimeError, match="face finder failed"):
        faces.flush()
    assert faces._pool is None


def test_unknown_length_decides_single_or_windows_at_the_end():
    params = Preprocessing(duration=2.0, offset=0.5, n_frames=4)
    for seconds, expect in ((2.5, [0]), (9.0, [0, 1, 2, 3, 4])):  # 9 s: 8-9 s is a window too
        got: list[int] = []
        sampler = video.WindowSampler(4, None, span=2.0, single_until=params.offset + 3.0, step=1 / 30,
                                      on_window=lambda k, t, f: got.append(k))
        for i in range(int(seconds * 30)):
            if sampler.wants(i / 30):
                sampler.add(i / 30, np.zeros((4, 4, 3), np.uint8))
        sampler.finish(inference.windows(seconds, params))
        assert got == expect


def test_decode_is_one_media_object(serving_clips):
    """Sound at the rate asked for, the facts, and only the frames the sink wants."""
    kept: list[float] = []

    class Every10th:
        needed = None

        def wants(self, t: float) -> bool:
            return round(t * 10) % 10 == 0

        def add(self, t: float, rgb: np.ndarray) -> None:
            kept.append(t)
            assert rgb.shape == (120, 160, 3)

    clip = media.decode(serving_clips["av"], sample_rate=8000, frames=Every10th())
    assert clip.info.has_audio and clip.info.has_video and clip.waveform.dtype == np.float32
    assert abs(clip.waveform.size / 8000 - 3.0) < 0.1 and clip.n_frames == 30 and kept == [0.0, 1.0, 2.0]
    assert abs(clip.duration - 3.0) < 0.1 and not clip.still


def test_serving_imports_nothing_of_the_research_side(tiny_bundle, serving_clips, tmp_path):
    script = f"""
import json, sys
import pipeline.serve.inference
after_import = sorted(m for m in sys.modules if m.startswith("pipeline"))
from pipeline.serve.bundle import load_bundle
from pipeline.core.faces import HaarDetector
bundle = load_bundle({str(tiny_bundle.path)!r})
result = pipeline.serve.inference.analyze({str(serving_clips['av'])!r}, bundle, detector=HaarDetector())
assert result.fused.ok
print(json.dumps({{"import": after_import, "analyze": sorted(m for m in sys.modules if m.startswith("pipeline"))}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                         cwd=str(Path(__file__).resolve().parent.parent))
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    for when in ("import", "analyze"):
        leaked = sorted(set(loaded[when]) & set(RESEARCH))
        assert not leaked, f"{when}: the prediction path loaded {leaked}"
    assert "pipeline.serve.fusion" in loaded["analyze"] and "pipeline.serve.bundle" in loaded["analyze"]


@pytest.mark.parametrize("kind, one_thread", [("av", True), ("video", False)])
def test_the_decoder_takes_one_thread_beside_the_audio_branch(tiny_bundle, serving_clips, tmp_path, monkeypatch,
                                                             kind, one_thread):
    """With sound, the audio branch's thread and the face worker share the cores with the
    decoder, which then decodes in one thread; without sound FFmpeg picks (a thread per
    core and one more)."""
    import os

    streams = []
    real = media._video_stream

    def recording(container):
        stream = real(container)
        streams.append(stream)
        return stream

    monkeypatch.setattr(media, "_video_stream", recording)
    csv = str(landmarks_csv(tmp_path / "l.csv", 3.0))
    result = inference.analyze(serving_clips[kind], tiny_bundle, landmarks_path=csv)
    assert result.video.ok and streams
    count = streams[-1].codec_context.thread_count
    assert count == 1 if one_thread else (count != 1 or os.cpu_count() == 1), count
