"""Fixtures for the dashboard tests: a tiny results store written in the documented
format, a bundle.json for model cards, a rendered-ready Analysis, and a no-op stand-in
for ``webrtc_streamer`` (a real one needs a browser)."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")
CLASSES = ["neutral", "calm", "happy", "sad", "angry", "fearful"]


def _fold(rng: np.random.Generator, protocol: str, fold: str, variant: str, skill: float) -> dict[str, Any]:
    """One fold's metrics, predictions and history, consistent with each other."""
    n = 24
    true = np.repeat(np.arange(6), n // 6)
    probs = rng.dirichlet(np.ones(6), size=n)
    hit = rng.random(n) < skill
    probs[hit, true[hit]] += 2.0
    probs /= probs.sum(axis=1, keepdims=True)
    pred = probs.argmax(axis=1)
    confusion = np.zeros((6, 6), dtype=int)
    np.add.at(confusion, (true, pred), 1)
    acc = float((pred == true).mean())
    recall = np.diag(confusion) / confusion.sum(axis=1)
    report = {c: {"precision": float(confusion[i, i] / max(confusion[:, i].sum(), 1)),
                  "recall": float(recall[i]), "f1": float(recall[i]), "support": int(confusion[i].sum())}
              for i, c in enumerate(CLASSES)}
    metrics = {"accuracy": acc, "macro_f1": acc, "uar": float(recall.mean()), "ece": 0.1,
               "n_train": 96, "n_test": n, "classes": CLASSES, "confusion": confusion.tolist(),
               "report": report, "fold": fold, "variant": variant, "protocol": protocol,
               "test_actors": ["01", "02"], "seconds": 1.0, "group": "model", "branch": "audio",
               "model": "audio_cnn", "experiment": "audio"}
    preds = pd.DataFrame({"clip_id": [f"synthetic:{i}" for i in range(n)], "actor": "01", "fold": fold,
                          "true": [CLASSES[i] for i in true], "pred": [CLASSES[i] for i in pred],
                          **{f"p_{c}": probs[:, i] for i, c in enumerate(CLASSES)}})
    epochs = np.arange(5)
    history = pd.DataFrame({"epoch": epochs, "loss": 2 - 0.3 * epochs, "accuracy": 0.2 + 0.1 * epochs,
                            "val_loss": 2 - 0.2 * epochs, "val_accuracy": 0.2 + 0.08 * epochs})
    return {"metrics": metrics, "predictions": preds, "history": history}


def write_results_store(runs: Path) -> Path:
    """runs/audio with two variants, each under both protocols, two folds each, written
    through pipeline.research.results (the documented format)."""
    from pipeline.research import results

    exp = runs / "audio"
    results.write_spec(exp, {"name": "audio", "variants": [{"name": "cnn"}, {"name": "svm"}]})
    rng = np.random.default_rng(0)
    for variant, skill in (("cnn", 0.8), ("svm", 0.5)):
        for fold, protocol in (("speaker-0", "speaker"), ("speaker-1", "speaker"),
                               ("random-27", "random"), ("random-31", "random")):
            boost = 0.15 if protocol == "random" else 0.0
            data = _fold(rng, protocol, fold, variant, skill + boost)
            results.write_fold(exp / variant / fold, config={"variant": variant},
                               metrics=data["metrics"], predictions=data["predictions"],
                               history=data["history"] if variant == "cnn" else None)
    results.write_summary(exp)
    return runs


@pytest.fixture
def results_store(tmp_path: Path) -> Path:
    return write_results_store(tmp_path / "runs")


@pytest.fixture(scope="session")
def results_writer() -> Callable[[Path], Path]:
    """:func:`write_results_store`, for tests that need a store somewhere else."""
    return write_results_store


@pytest.fixture
def bundle_meta(tmp_path: Path) -> Path:
    """A bundle folder holding only bundle.json (enough for model cards, not for models)."""
    folder = tmp_path / "bundle"
    folder.mkdir()
    meta = {"format": 1, "id": "demo-abc123", "name": "demo", "created": "2026-01-01T00:00:00Z",
            "classes": CLASSES, "labels": "six",
            "models": {"audio": {"model": "audio_cnn", "framework": "keras", "input_kind": "mfcc_mean",
                                 "file": "audio/model.keras", "protocol": "speaker", "corpus": "synthetic",
                                 "metrics": {"accuracy_mean": 0.61, "accuracy_std": 0.05, "uar_mean": 0.6}},
                       "video": {"model": "lrcn", "framework": "keras", "input_kind": "frames",
                                 "file": "video/model.keras", "protocol": "speaker",
                                 "metrics": {"accuracy": {"mean": 0.7, "std": 0.04}}},
                       "fusion": {"model": "fusion_mlp", "file": "fusion/model.joblib"}}}
    (folder / "bundle.json").write_text(json.dumps(meta))
    return folder


def make_analysis(*, face: bool = True, long: bool = False) -> Any:
    """A complete Analysis record shaped like inference.analyze's (for rendering tests)."""
    from pipeline.serve.analysis import Analysis, BranchResult, TimelineWindow

    sr = 16000
    t = np.arange(4 * sr) / sr
    wave = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    probs = dict(zip(CLASSES, [0.05, 0.05, 0.6, 0.1, 0.15, 0.05]))
    frames = np.full((30, 90, 120, 3), 80, dtype=np.uint8)
    video = BranchResult("ok", dict(zip(CLASSES, [0.1, 0.1, 0.5, 0.1, 0.1, 0.1])), "face in 30 of 30 frames") \
        if face else BranchResult("no face found in any frame", {}, "face in 0 of 30 frames")
    timeline = []
    if long:
        timeline = [TimelineWindow(s, s + 3.0, BranchResult("ok", probs), video, BranchResult("ok", probs))
                    for s in (0.0, 3.0, 6.0)]
    return Analysis(
        source="uploaded bytes", duration=9.0 if long else 4.0, sample_rate=sr,
        audio=BranchResult("ok", probs), video=video,
        fused=BranchResult("ok", probs, "fusion"), waveform=wave,
        mfcc=np.tile(np.linspace(-5, 5, 130), (40, 1)), mfcc_times=0.5 + np.arange(130) * 512 / 22050,
        frames=frames, frame_times=np.linspace(0, 3.9, 30),
        boxes=[(30, 20, 80, 70) if face else None] * 30,
        crops=np.full((30 if face else 0, 64, 64, 3), 120, dtype=np.uint8),
        frames_with_face=30 if face else 0, timeline=timeline,
        timings={"probe": 0.01, "total": 0.8},
        bundle={"id": "demo-abc123", "name": "demo", "audio": {"model": "audio_cnn", "protocol": "speaker"}})


@pytest.fixture
def analysis_factory() -> Callable[..., Any]:
    """:func:`make_analysis`: an Analysis record to render (face=..., long=...)."""
    return make_analysis


@pytest.fixture(autouse=True)
def fresh_server_state() -> Any:
    """Each test starts as a new session of a new server: its analyses run in a worker
    process started under that test's environment (``dashboard.state.worker``, one per
    server), and nothing of AppTest's one session (analyses, the recording file) is
    left from an earlier test."""
    yield
    from streamlit.runtime import caching

    from dashboard import state

    state.worker.clear()  # on_release ends the child
    caching.clear_session_resource_cache("test session id")  # AppTest's fixed session id
    caching.clear_session_data_cache("test session id")


@pytest.fixture
def no_webrtc(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replace ``webrtc_streamer`` by a no-op that records its calls and reports 'not
    playing' (pages import it from streamlit_webrtc at run time, so this is what they get)."""
    import streamlit_webrtc

    calls: list[dict[str, Any]] = []

    def fake(key: str, **kwargs: Any) -> Any:
        calls.append({"key": key, **kwargs})
        return SimpleNamespace(state=SimpleNamespace(playing=False), video_processor=None)

    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", fake)
    return calls


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_webrtc: list) -> Callable[..., Any]:
    """Build an AppTest of the dashboard on one page with folders from env variables.

    Defaults point everywhere empty (no runs, no bundle, no corpus): the empty states.
    """
    from streamlit.testing.v1 import AppTest

    def build(page: str, *, runs: Path | None = None, bundle: Path | None = None,
              data: Path | None = None) -> AppTest:
        monkeypatch.setenv("AVE_RUNS", str(runs or tmp_path / "no-runs"))
        monkeypatch.setenv("AVE_BUNDLE", str(bundle or tmp_path / "no-bundle"))
        monkeypatch.setenv("AVE_DATA", str(data or tmp_path / "no-data"))
        at = AppTest.from_file(APP, default_timeout=60)
        at.run()
        if page != "analyze":
            at.switch_page(f"app_pages/{page}.py")
            at.run()
        return at

    return build
