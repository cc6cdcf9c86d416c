"""AppTest of the Analyze page on the inputs of issue 11: abstention reasons, the cut
note, the face count, cover art played as sound, "not sure", and the uploader's types."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from test_pages import _charts, _corpus_analyze, _text

from pipeline.serve.analysis import BranchResult


def test_uploader_takes_the_one_list_of_types(app_env, bundle_meta: Path) -> None:
    from pipeline.core import media

    at = app_env("analyze", bundle=bundle_meta)
    assert not at.exception, at.exception
    uploader = at.get("file_uploader")[0].proto
    # (Streamlit may add aliases of its own, e.g. mpeg4 beside mp4)
    assert {e.lstrip(".") for e in media.ACCEPTED_EXTENSIONS} <= {t.lstrip(".") for t in uploader.type}
    assert {"opus", "aac", "3gp", "amr", "mkv", "m4v", "oga", "jpg", "webp"} <= {t.lstrip(".") for t in uploader.type}


def test_too_short_is_explained_not_answered(app_env, monkeypatch, tmp_path: Path, bundle_meta: Path,
                                             analysis_factory) -> None:
    short = "too short: 0.3 s of speech, at least 1.0 s needed"
    analysis = dataclasses.replace(
        analysis_factory(face=False), audio=BranchResult(short, {}, "the rest of the analysis window is silence"),
        video=BranchResult("no video track"),
        fused=BranchResult(f"no usable modality (audio: {short}; video: no video track)"),
        frames=None, crops=None, boxes=[], frames_with_face=0)
    at = _corpus_analyze(app_env, monkeypatch, tmp_path, bundle_meta, analysis)
    assert not at.exception, at.exception
    text = _text(at)
    assert "Too short to judge: 0.3 s of speech, at least 1.0 s needed" in text
    assert "Neither the voice nor the face could be used" in at.error[0].value
    assert "nothing to combine" in text and "no usable modality" not in text  # plain words, said once each
    assert text.count("Too short to judge") == 1
    assert not at.success and "Audio model" not in _charts(at)


def test_a_cut_is_said_on_the_page_and_the_timeline(app_env, monkeypatch, tmp_path: Path, bundle_meta: Path,
                                                    analysis_factory) -> None:
    note = "only the first 300 s of 720.0 s were analysed (the length limit, AVE_MAX_SECONDS, is 300 s)"
    analysis = dataclasses.replace(analysis_factory(long=True), duration=720.0, analysed_seconds=300.0,
                                   notes=[note])
    at = _corpus_analyze(app_env, monkeypatch, tmp_path, bundle_meta, analysis)
    assert not at.exception, at.exception
    text = _text(at)
    assert "Only the first 300 s of 720.0 s were analysed" in text
    assert "The timeline stops at 300 s: only the first 300 s of this 720 s file were analysed" in text
    assert "Emotion over time (fused)" in _charts(at)


def test_faces_seen_are_counted_on_the_page(app_env, monkeypatch, tmp_path: Path, bundle_meta: Path,
                                            analysis_factory) -> None:
    note = "2 faces seen; following the larger one"
    base = analysis_factory()
    analysis = dataclasses.replace(base, faces_seen=2, notes=[note],
                                   video=dataclasses.replace(base.video, detail=f"face in 30 of 30 frames; {note}"))
    at = _corpus_analyze(app_env, monkeypatch, tmp_path, bundle_meta, analysis)
    assert not at.exception, at.exception
    assert any("2 faces seen; following the larger one" in w.value for w in at.warning)


def test_cover_art_plays_as_sound_only(app_env, monkeypatch, tmp_path: Path, bundle_meta: Path,
                                       analysis_factory) -> None:
    note = ("the picture in this file (cover art or a single still frame) is not a face on camera: "
            "only the sound was analysed")
    analysis = dataclasses.replace(analysis_factory(face=False), video=BranchResult("no video track"),
                                   frames=None, crops=None, boxes=[], frames_with_face=0, notes=[note])
    at = _corpus_analyze(app_env, monkeypatch, tmp_path, bundle_meta, analysis)  # the sample is "clip.mp4"
    assert not at.exception, at.exception
    assert len(at.get("audio")) == 1 and len(at.get("video")) == 0
    assert "The picture in this file (cover art or a single still frame) is not a face on camera" in _text(at)
    assert "nothing for the video model to watch" in _text(at)


def test_not_sure_below_the_calibrated_level(app_env, monkeypatch, tmp_path: Path, bundle_meta: Path,
                                             analysis_factory) -> None:
    base = analysis_factory()
    cal = {"ece": 0.2, "accuracy": 0.55, "protocol": "speaker"}
    fused: Any = dataclasses.replace(base.fused, calibration=cal)  # happy 60% - 20 points < 50%
    audio = dataclasses.replace(base.audio, calibration=cal)
    at = _corpus_analyze(app_env, monkeypatch, tmp_path, bundle_meta,
                         dataclasses.replace(base, fused=fused, audio=audio))
    assert not at.exception, at.exception
    assert not at.success
    assert any(w.value.startswith("**Not sure.** This clip leans towards **happy** (60%)") for w in at.warning)
    assert "confidence was off by 20 points on average" in _text(at)


def test_old_recordings_are_pruned_and_others_kept(tmp_path: Path) -> None:
    import os

    from dashboard.recorder import prune_recordings

    now = 1_800_000_000.0
    old, fresh = tmp_path / "ave-recording-old.mp4", tmp_path / "ave-recording-new.mp4"
    other = tmp_path / "holiday.mp4"  # not ours: never touched, however old
    for path, age in ((old, 7200.0), (fresh, 60.0), (other, 7200.0)):
        path.write_bytes(b"x")
        os.utime(path, (now - age, now - age))
    assert prune_recordings(tmp_path, max_age_s=3600.0, now=now) == 1
    assert not old.exists() and fresh.exists() and other.exists()
