"""AppTest tests of every dashboard page: empty states, error states and full renders."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd


def _text(at: Any) -> str:
    """Every markdown, caption, info, warning, error and success text on the page."""
    parts = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "title", "subheader"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def _charts(at: Any) -> list[str]:
    """Titles of the Plotly charts on the page."""
    import json

    titles = []
    for el in at.get("plotly_chart"):
        spec = json.loads(el.proto.spec)
        titles.append(spec.get("layout", {}).get("title", {}).get("text", ""))
    return titles


# --------------------------------------------------------------------------- results
def test_results_empty_store_explains_what_to_run(app_env) -> None:
    from pipeline.core import paths

    at = app_env("results")
    assert not at.exception
    # with no runs of the user's own, the page opens on the committed record
    assert at.selectbox(key="sb_runs").value == paths.RECORD_LABEL
    assert {"real_audio", "real_video"} <= set(at.selectbox(key="experiment").options)
    at.selectbox(key="sb_runs").select(paths.RUNS_LABEL).run()
    assert not at.exception
    assert "No results in this folder yet" in _text(at) and "make demo" in _text(at)
    assert str(paths.runs_dir()) not in _text(at)  # labels, never server paths


def test_results_full_store_renders_every_section(app_env, results_store: Path) -> None:
    at = app_env("results", runs=results_store)
    assert not at.exception, at.exception
    assert at.selectbox(key="experiment").value == "audio"
    table = at.dataframe[0].value
    assert {"variant", "protocol", "Accuracy %", "Accuracy ±"} <= set(table.columns)
    titles = _charts(at)
    assert any(t.startswith("Random split vs speaker") for t in titles)
    assert titles.count("Confusion matrix (counts)") >= 1
    assert "Confusion matrix (row-normalised)" in titles
    assert "Learning curves (accuracy)" in titles and "Calibration" in titles
    assert len(at.get("download_button")) == 1


def test_results_variant_without_history_says_so(app_env, results_store: Path) -> None:
    at = app_env("results", runs=results_store)
    at.selectbox(key="variant").set_value("svm").run()
    assert not at.exception
    assert "No learning curves" in _text(at)


def test_results_single_protocol_explains_the_missing_one(app_env, results_store: Path) -> None:
    import shutil

    for variant in ("cnn", "svm"):
        for fold in ("random-27", "random-31"):
            shutil.rmtree(results_store / "audio" / variant / fold)
    at = app_env("results", runs=results_store)
    assert not at.exception
    assert "ran only the speaker protocol" in _text(at)


def test_results_experiment_without_finished_folds(app_env, tmp_path: Path) -> None:
    from pipeline.research import results

    runs = tmp_path / "runs"
    results.write_spec(runs / "pending", {"name": "pending", "variants": []})
    at = app_env("results", runs=runs)
    assert not at.exception
    assert "no finished fold yet" in _text(at)


# --------------------------------------------------------------------------- data
def test_data_without_corpus_explains_make_demo(app_env) -> None:
    at = app_env("data")
    assert not at.exception
    assert "make demo" in _text(at)


def test_data_with_manifest_shows_counts_and_players(app_env, monkeypatch, tmp_path: Path) -> None:
    from dashboard import state

    (tmp_path / "data" / "synthetic").mkdir(parents=True)
    wav = tmp_path / "a.wav"
    _write_wav(wav)
    rows = [{"clip_id": f"synthetic:{i}", "corpus": "synthetic", "actor": f"0{i % 2 + 1}",
             "gender": "male" if i % 2 == 0 else "female", "emotion": ["happy", "sad"][i % 2],
             "intensity": "normal", "channel": "speech", "statement": "01", "repetition": "01",
             "audio_path": str(wav), "video_path": "", "landmarks_path": ""} for i in range(4)]
    monkeypatch.setattr(state, "manifest", lambda kind, root: pd.DataFrame(rows))
    at = app_env("data", data=tmp_path / "data")
    assert not at.exception, at.exception
    assert "synthetic" in _text(at)
    assert {"Clips per emotion", "Clips per actor", "Clips per gender", "Clips per channel"} <= set(_charts(at))
    assert len(at.get("audio")) == 2  # happy has two clips


def test_data_unreadable_corpus_is_an_error_not_a_crash(app_env, monkeypatch, tmp_path: Path) -> None:
    from dashboard import state

    (tmp_path / "data" / "synthetic").mkdir(parents=True)

    def broken(kind: str, root: str) -> pd.DataFrame:
        raise ValueError("manifest lacks columns: actor")

    monkeypatch.setattr(state, "manifest", broken)
    at = app_env("data", data=tmp_path / "data")
    assert not at.exception
    assert "cannot be indexed" in at.error[0].value


# --------------------------------------------------------------------------- about
def test_about_without_bundle_still_has_caveats_and_ethics(app_env) -> None:
    at = app_env("about")
    assert not at.exception
    text = _text(at)
    assert "make demo" in text and "Speaker leakage" in text and "Do **not** use it" in text


def test_about_model_cards_from_bundle_json(app_env, bundle_meta: Path) -> None:
    at = app_env("about", bundle=bundle_meta)
    assert not at.exception, at.exception
    text = _text(at)
    assert "audio_cnn" in text and "lrcn" in text and "fusion_mlp" in text
    tables = [d.value for d in at.dataframe]
    accuracies = sorted(float(t.loc[t["metric"] == "Accuracy", "mean %"].iloc[0]) for t in tables)
    assert accuracies == [61.0, 70.0]


def test_about_corrupt_bundle_json_is_explained(app_env, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "bundle.json").write_text("{not json")
    at = app_env("about", bundle=folder)
    assert not at.exception
    assert "not valid JSON" in at.error[0].value


# --------------------------------------------------------------------------- analyze
def test_analyze_without_bundle_says_run_make_demo(app_env) -> None:
    at = app_env("analyze")
    assert not at.exception
    assert "make demo" in at.info[0].value


def _corpus_analyze(app_env, monkeypatch, tmp_path: Path, bundle_meta: Path, analysis: Any) -> Any:
    """Analyze page on a one-clip corpus sample, with ``state.analyze_path`` answering
    ``analysis`` (or raising it, when it is an exception)."""
    from dashboard import state

    (tmp_path / "data" / "synthetic").mkdir(parents=True)
    (tmp_path / "clip.mp4").write_bytes(b"not decoded here: analyze is replaced")
    rows = [{"clip_id": "synthetic:01", "corpus": "synthetic", "actor": "01", "gender": "male",
             "emotion": "happy", "intensity": "normal", "channel": "speech", "statement": "01",
             "repetition": "01", "audio_path": "", "video_path": str(tmp_path / "clip.mp4"),
             "landmarks_path": ""}]
    monkeypatch.setattr(state, "manifest", lambda kind, root: pd.DataFrame(rows))
    seen: list[tuple] = []

    def fake_analyze(path, bundle_dir, landmarks="", detector="bundle"):
        seen.append((path, bundle_dir))
        if isinstance(analysis, Exception):
            raise analysis
        return analysis

    monkeypatch.setattr(state, "analyze_path", fake_analyze)
    at = app_env("analyze", bundle=bundle_meta, data=tmp_path / "data")
    at.radio(key="way").set_value("Corpus sample").run()
    assert seen and seen[0][0].endswith("clip.mp4")
    return at


def test_analyze_renders_every_step(app_env, monkeypatch, tmp_path: Path, bundle_meta: Path,
                                    analysis_factory) -> None:
    at = _corpus_analyze(app_env, monkeypatch, tmp_path, bundle_meta, analysis_factory())
    assert not at.exception, at.exception
    titles = _charts(at)
    assert {"Waveform", "MFCC heatmap", "Audio model", "Video model", "Fused answer"} <= set(titles)
    assert "Face crops (64 x 64)" in _text(at)
    assert len(at.get("image")) == 2  # the framed stills and the crops
    assert "comes across as **happy** with 60%" in at.success[0].value


def test_analyze_no_face_is_explained(app_env, monkeypatch, tmp_path: Path, bundle_meta: Path,
                                      analysis_factory) -> None:
    at = _corpus_analyze(app_env, monkeypatch, tmp_path, bundle_meta, analysis_factory(face=False))
    assert not at.exception
    assert "No face was found" in _text(at)
    assert "Video model" not in _charts(at)


def test_analyze_long_clip_has_a_timeline(app_env, monkeypatch, tmp_path: Path, bundle_meta: Path,
                                          analysis_factory) -> None:
    at = _corpus_analyze(app_env, monkeypatch, tmp_path, bundle_meta, analysis_factory(long=True))
    assert not at.exception, at.exception
    assert "Emotion over time (fused)" in _charts(at)
    at.slider(key="timeline_moment").set_value(6.0).run()
    assert not at.exception
    assert "At 6.0-9.0 s" in _text(at)
    assert at.get("video")[0].proto.start_time == 6


def test_a_timeline_without_any_answer_draws_no_empty_chart(app_env, monkeypatch, tmp_path: Path,
                                                            bundle_meta: Path, analysis_factory) -> None:
    import dataclasses

    from pipeline.serve.analysis import BranchResult

    long = analysis_factory(long=True)
    silent = BranchResult("no speech", {})
    long.timeline = [dataclasses.replace(w, audio=silent, video=silent, fused=silent) for w in long.timeline]
    at = _corpus_analyze(app_env, monkeypatch, tmp_path, bundle_meta, long)
    assert not at.exception, at.exception
    assert "Emotion over time (fused)" not in _charts(at)
    assert "No window of this clip was answered" in _text(at)


def test_analyze_bad_file_is_a_plain_error(app_env, monkeypatch, tmp_path: Path, bundle_meta: Path) -> None:
    from pipeline.core.media import MediaError

    err = MediaError("clip.mp4 is not a readable audio or video file (InvalidDataError)")
    at = _corpus_analyze(app_env, monkeypatch, tmp_path, bundle_meta, err)
    assert not at.exception
    assert "not a readable audio or video file" in at.error[0].value


def test_analyze_recorder_uses_no_ice_servers(app_env, bundle_meta: Path, no_webrtc: list) -> None:
    at = app_env("analyze", bundle=bundle_meta)
    at.radio(key="way").set_value("Record camera + microphone").run()
    assert not at.exception, at.exception
    call = no_webrtc[-1]
    assert call["rtc_configuration"] == {"iceServers": []}
    assert callable(call["in_recorder_factory"])


# --------------------------------------------------------------------------- live
def test_live_without_bundle(app_env) -> None:
    at = app_env("live")
    assert not at.exception
    assert "make demo" in at.info[0].value


def test_live_with_bundle_wires_webrtc_for_localhost(app_env, monkeypatch, bundle_meta: Path,
                                                     no_webrtc: list) -> None:
    from types import SimpleNamespace

    from dashboard import state
    from pipeline.core.preprocessing import Preprocessing

    params = Preprocessing()
    branch = SimpleNamespace(params=params)
    fake_bundle = SimpleNamespace(id="demo-abc123", classes=params.classes, audio=branch, video=branch,
                                  fusion=None)
    monkeypatch.setattr(state, "bundle", lambda path: fake_bundle)
    at = app_env("live", bundle=bundle_meta)
    assert not at.exception, at.exception
    call = no_webrtc[-1]
    assert call["rtc_configuration"] == {"iceServers": []}
    assert callable(call["video_frame_callback"]) and callable(call["audio_frame_callback"])
    assert "Press START" in _text(at)


def _write_wav(path: Path) -> None:
    import wave

    import numpy as np

    sr = 8000
    y = (0.2 * np.sin(2 * np.pi * 220 * np.arange(sr) / sr) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(y.tobytes())
