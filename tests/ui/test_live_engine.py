"""The Live page's buffers and prediction step, without a browser."""
from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest

from dashboard import live_engine
from pipeline.serve.analysis import BranchResult
from pipeline.core.preprocessing import Preprocessing

CLASSES = Preprocessing().classes


def test_holder_keeps_only_the_latest_buffers() -> None:
    holder = live_engine.LiveHolder(n_crops=3, sample_rate=100, audio_seconds=1.0)
    for i in range(5):
        holder.push_frame((0, 0, 1, 1), np.full((64, 64, 3), i, np.uint8), now=i * 0.1)
    holder.push_audio(np.ones(80))
    holder.push_audio(np.zeros(50))
    crops, audio = holder.snapshot()
    assert crops.shape == (3, 64, 64, 3) and [c[0, 0, 0] for c in crops] == [2, 3, 4]
    assert audio.shape == (100,) and audio[:50].sum() == 50 and audio[50:].sum() == 0
    assert holder.fps(now=0.45) == pytest.approx(10.0)
    assert holder.fps(now=100.0) == 0.0


def test_holder_is_safe_across_threads() -> None:
    holder = live_engine.LiveHolder(n_crops=30, sample_rate=1000, audio_seconds=2.0)

    def feed() -> None:
        for _ in range(200):
            holder.push_audio(np.ones(10, np.float32))
            holder.push_frame(None, np.zeros((64, 64, 3), np.uint8))

    threads = [threading.Thread(target=feed) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    crops, audio = holder.snapshot()
    assert len(crops) == 30 and audio.size == 2000


def test_annotate_draws_box_and_leaves_input_alone() -> None:
    frame = np.zeros((120, 160, 3), np.uint8)
    out = live_engine.annotate(frame, (20, 30, 80, 100), "happy 70%", fps=12.0)
    assert frame.sum() == 0
    assert tuple(out[30, 50]) == (0, 220, 0) and out[60, 50].sum() == 0


def test_face_crop_none_without_a_face() -> None:
    from pipeline.core.faces import HaarDetector

    box, crop = live_engine.face_crop(np.full((240, 320, 3), 128, np.uint8), HaarDetector())
    assert box is None and crop is None


def test_face_crop_uses_pipeline_geometry() -> None:
    from pipeline.core.faces import Box

    detector = SimpleNamespace(detect=lambda rgb: [Box(100, 60, 160, 140)])
    box, crop = live_engine.face_crop(np.zeros((240, 320, 3), np.uint8), detector, crop_size=64, margin=0.1)
    x0, y0, x1, y1 = box
    assert x1 - x0 == y1 - y0 == 96  # square: 80 px + 10% on each side
    assert crop.shape == (64, 64, 3)


def _bundle(proba: np.ndarray) -> SimpleNamespace:
    params = Preprocessing()
    seen: dict[str, np.ndarray] = {}

    def predict_proba(x: np.ndarray, mode: str = "none") -> np.ndarray:
        seen["x"] = x
        return np.repeat(proba[None], len(x), axis=0)

    branch = SimpleNamespace(params=params, input_kind="mfcc_mean", full_frame=False,
                             predict_proba=predict_proba)
    return SimpleNamespace(classes=params.classes, audio=branch, video=branch, fusion=None, seen=seen)


def test_predict_video_waits_for_enough_faces_then_feeds_the_last_n() -> None:
    bundle = _bundle(np.eye(6)[2])
    assert live_engine.predict_video(bundle, np.zeros((5, 64, 64, 3), np.uint8)).status == "no face"
    crops = np.arange(40, dtype=np.uint8)[:, None, None, None] * np.ones((1, 64, 64, 3), np.uint8)
    result = live_engine.predict_video(bundle, crops)
    assert result.ok and result.winner == ("happy", 1.0)
    assert bundle.seen["x"].shape == (1, 30, 64, 64, 3) and bundle.seen["x"][0, 0, 0, 0, 0] == 10


def test_predict_audio_abstains_on_short_or_silent_sound() -> None:
    bundle = _bundle(np.eye(6)[0])
    assert live_engine.predict_audio(bundle, np.zeros(100, np.float32)).status == "waiting for sound"
    assert live_engine.predict_audio(bundle, np.zeros(22050 * 3, np.float32)).status == "silent audio"


def test_fuse_falls_back_to_the_branch_that_answered() -> None:
    bundle = _bundle(np.eye(6)[0])
    audio = BranchResult("ok", dict(zip(CLASSES, np.eye(6)[4])))
    video = BranchResult("no face")
    fused = live_engine.fuse(bundle, audio, video)
    assert fused.ok and fused.winner[0] == "angry" and "audio only" in fused.detail
    both = live_engine.fuse(bundle, audio, BranchResult("ok", dict(zip(CLASSES, np.eye(6)[3]))))
    assert both.probabilities["angry"] == pytest.approx(0.5) and both.probabilities["sad"] == pytest.approx(0.5)
    assert not live_engine.fuse(bundle, video, video).ok


def test_live_answers_are_sure_by_the_same_rule_as_a_clips() -> None:
    """A live answer carries the held-out calibration of the model behind it, as a clip's
    answer does (pipeline.serve.inference.calibrate), so "sure" is discounted by the same
    ECE: 70% with an ECE of 30% is "not sure" on both pages."""
    proba = np.full(6, 0.06)
    proba[2] = 0.7
    bundle = _bundle(proba)
    bundle.audio.metrics = bundle.video.metrics = {"ece_mean": 0.3, "accuracy_mean": 0.6, "protocol": "speaker"}
    crops = np.zeros((40, 64, 64, 3), np.uint8)
    video = live_engine.predict_video(bundle, crops)
    assert video.ok and video.winner[0] == "happy" and video.calibration["ece"] == pytest.approx(0.3)
    assert video.confidence == "not sure"
    fused = live_engine.fuse(bundle, BranchResult("no voice"), video)
    assert fused.ok and fused.calibration["ece"] == pytest.approx(0.3) and fused.confidence == "not sure"
    rate = bundle.audio.params.sample_rate  # a voice-like sound: harmonics on a gliding pitch, syllables
    t = np.arange(3 * rate) / rate
    f0 = 150 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    y = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.55 + 0.45 * np.sin(2 * np.pi * 3 * t))
    audio = live_engine.predict_audio(bundle, (0.2 * y).astype(np.float32))
    assert audio.ok, (audio.status, audio.detail)
    assert audio.calibration["ece"] == pytest.approx(0.3) and audio.confidence == "not sure"


def test_label_of() -> None:
    assert live_engine.label_of(BranchResult("ok", {"sad": 0.8, "happy": 0.2})) == "sad 80%"
    assert live_engine.label_of(BranchResult("no face")) == ""


def test_silent_like_keeps_the_frame_shape() -> None:
    import av

    loud = av.AudioFrame.from_ndarray(np.full((1, 1920), 3000, np.int16), format="s16", layout="stereo")
    loud.sample_rate, loud.pts = 48000, 960
    quiet = live_engine.silent_like(loud)
    assert quiet.samples == loud.samples and quiet.sample_rate == 48000 and quiet.pts == 960
    assert quiet.layout.name == "stereo" and not quiet.to_ndarray().any()


def test_the_serving_process_keeps_numpy_blas_at_one_thread(tmp_path) -> None:
    """Loading the bundle makes the dashboard a serving process: from then on the Live
    page's voice answers run with numpy's BLAS at one thread (as analyze does), beside
    the WebRTC decoder and TensorFlow. Run in a fresh interpreter started with two BLAS
    threads, so the check can fail on any machine and leaves this process as it was."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    script = (
        "import json, threadpoolctl\n"
        "from dashboard import state\n"
        "def blas():\n"
        "    return sorted({i['num_threads'] for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas'})\n"
        "before = blas()\n"
        f"state._bundle({str(root / 'bundles' / 'real')!r}, 0.0)\n"
        "print(json.dumps({'before': before, 'after': blas()}))\n")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-c", script], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"before": [2], "after": [1]}, seen
