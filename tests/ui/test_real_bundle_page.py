"""The Analyze page answers with the shipped real bundle and says so: the caption, the
sidebar and the answer all name it (AppTest, real models, a generated photo)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core import paths


def test_analyze_names_the_real_bundle_and_answers_with_it(app_env, monkeypatch, tmp_path: Path) -> None:
    import cv2

    from dashboard import state

    face = np.full((48, 48), 120, np.uint8)
    cv2.ellipse(face, (24, 26), (15, 19), 0, 0, 360, 190, -1)
    for x in (18, 30):
        cv2.circle(face, (x, 21), 2, 40, -1)
    cv2.ellipse(face, (24, 33), (7, 4), 0, 0, 180, 60, 2)
    corpus = tmp_path / "data" / "synthetic"  # only files inside a configured corpus are read
    corpus.mkdir(parents=True)
    cv2.imwrite(str(corpus / "photo.png"), face)
    # a drawn face: Haar sees it in the small-image face check (MTCNN wants a photographed one)
    monkeypatch.setenv("AVE_DETECTOR", "haar")
    rows = [{"clip_id": "images:happy/photo.png", "corpus": "images", "actor": "", "gender": "",
             "emotion": "happy", "intensity": "", "channel": "image", "statement": "", "repetition": "",
             "audio_path": "", "video_path": str(corpus / "photo.png"), "landmarks_path": ""}]
    monkeypatch.setattr(state, "manifest", lambda kind, root: pd.DataFrame(rows))
    at = app_env("analyze", bundle=paths.shipped_bundle(), data=tmp_path / "data")
    label = paths.BUNDLE_LABELS["real"]
    assert not at.exception, at.exception
    assert any(label in c.value for c in at.caption)
    assert at.selectbox(key="sb_bundle_choice").value == label
    at.radio(key="way").set_value("Corpus sample").run()
    assert not at.exception, at.exception
    answers = [e.value for e in (*at.success, *at.warning) if "**real (trained on real people" in e.value]
    assert len(answers) == 1, [e.value for e in (*at.success, *at.warning)]  # a plain answer or "Not sure"
    assert "this clip" in answers[0].lower()
    assert "This file has no sound" in " ".join(i.value for i in at.info)  # the audio branch's abstention
