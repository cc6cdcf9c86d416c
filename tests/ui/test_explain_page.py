"""The "why this answer" section (issue 22): the Analyze page shows the valence/arousal
plane, the cue bars with a sentence each, heatmaps over the face crops, the per-frame
strip and a handout download for a real-bundle answer (AppTest, real models, a real
RAVDESS voice and face); the handout holds the same content offline; the Compare page
and the Live page's words about the models."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.core import paths

REPO = Path(__file__).resolve().parents[2]


def _clip(tmp_path: Path, seconds: int) -> Path:
    sys.path.insert(0, str(REPO / "bench"))
    import bench_analyze

    return bench_analyze.make_clip(seconds, tmp_path / f"clip{seconds}.mp4")


def _uploaded(app_env, monkeypatch: pytest.MonkeyPatch, clip: Path):
    """The Analyze page with the real bundle, ``clip`` uploaded and analysed."""
    monkeypatch.setenv("AVE_DETECTOR", "haar")
    at = app_env("analyze", bundle=paths.shipped_bundle())
    at.file_uploader(key="upload").set_value((clip.name, clip.read_bytes(), "video/mp4")).run(timeout=300)
    return at


def test_analyze_explains_a_real_answer(app_env, monkeypatch, tmp_path: Path, shared_data: Path) -> None:
    at = _uploaded(app_env, monkeypatch, _clip(tmp_path, 4))
    assert not at.exception, at.exception
    assert any("Why this answer" in h.value for h in at.subheader)
    captions = " ".join(c.value for c in at.caption)
    assert "derived from the category probabilities" in captions and "Warriner" in captions
    markdown = " ".join(m.value for m in at.markdown)
    assert "What in the voice" in markdown and "Where in the face" in markdown
    assert "Pitch level and range" in markdown and "The learned encoder features" in markdown
    assert "The voice sounds" in markdown and "The face looks" in markdown
    assert "Red: where the face model looked" in captions
    assert len(at.get("image")) + len(at.get("imgs")) >= 1, sorted({type(e).__name__ + ":" + str(getattr(e, "type", "")) for e in at.main})
    assert len(at.get("download_button")) == 1
    assert len(at.get("plotly_chart")) >= 6  # waveform, mfcc, 3 answers, plane, cues, contours, strip


def test_a_long_clip_gets_its_path_and_windows(app_env, monkeypatch, tmp_path: Path, shared_data: Path) -> None:
    at = _uploaded(app_env, monkeypatch, _clip(tmp_path, 13))
    assert not at.exception, at.exception
    assert "path, window by window" in " ".join(c.value for c in at.caption)
    window = at.selectbox(key="why_window")
    assert len(window.options) >= 4
    label = window.options[2]
    window.set_value(2).run(timeout=120)
    assert not at.exception, at.exception
    assert any(m.value.startswith(f"**{label}**") for m in at.markdown), label


def test_the_handout_holds_the_same_content_offline(analysis_factory) -> None:
    from dashboard import handout
    from pipeline.core import circumplex
    from pipeline.serve.explain import Explanation, FaceExplanation

    analysis = analysis_factory(long=True)
    ex = Explanation({"audio": circumplex.place(analysis.audio.probabilities), "video": None,
                      "fused": circumplex.place(analysis.fused.probabilities)},
                     circumplex.path([w.fused.probabilities for w in analysis.timeline]),
                     voice_note="this voice model is not linear over named features")
    classes = tuple(analysis.video.probabilities)
    ex.face = FaceExplanation("happy", classes, np.tile(np.linspace(0.1, 0.2, len(classes)), (3, 1)),
                              np.array([0.0, 0.5, 1.0]), method="Grad-CAM")
    page = handout.build(analysis, ex, [np.full((48, 48, 3), 200, np.uint8)] * 3)
    assert page.startswith("<!doctype html>") and "data:image/png;base64," in page
    assert "The voice sounds" in page and "Warriner" in page and "not linear" in page
    assert "http://" not in page.split("<script", 1)[0]  # nothing fetched before the inlined library
    assert page.count("<script") >= 2 and "<script src=" not in page and "<link" not in page  # all inline
    assert "Over time" in page


def test_compare_page_asks_for_two_clips(app_env) -> None:
    at = app_env("compare", bundle=paths.shipped_bundle())
    assert not at.exception, at.exception
    assert at.title[0].value == "Compare two clips"
    assert "real (trained on real people" in " ".join(c.value for c in at.caption)


def test_live_page_tells_the_truth_about_the_bundle(app_env) -> None:
    at = app_env("live", bundle=paths.shipped_bundle())
    assert not at.exception, at.exception
    caption = " ".join(c.value for c in at.caption)
    assert "RAVDESS" in caption and "trained on **synthetic**" not in caption


def test_answer_sentences_fit_the_branch() -> None:
    from dashboard.explain_charts import answer_sentence

    assert answer_sentence("audio", "sad", 0.4).startswith("The voice sounds **sad**")
    assert answer_sentence("video", "happy", 0.9).startswith("The face looks **happy**")
    assert answer_sentence("fused", "angry", 0.5).startswith("The fused answer comes across as **angry**")


def test_without_loadable_models_the_page_says_so(app_env, monkeypatch, bundle_meta: Path, analysis_factory) -> None:
    """A bundle.json without its model files: the answer still shows, the explanation says
    why it cannot be computed (it needs the models), and nothing crashes."""
    from dashboard import state

    monkeypatch.setattr(state, "analyze", lambda data, bundle_dir, detector="bundle", **kw: analysis_factory())
    at = app_env("analyze", bundle=bundle_meta)
    at.file_uploader(key="upload").set_value(("clip.wav", b"RIFF....WAVE", "audio/wav")).run()
    assert not at.exception, at.exception
    assert any("Why this answer" in h.value for h in at.subheader)
    numbers = [int(h.value.split(".")[0]) for h in at.subheader if h.value[:1].isdigit()]
    assert numbers == list(range(1, len(numbers) + 1)), numbers  # no "Over time" for one window: 1-4
    assert any("No explanation" in i.value for i in at.info)
