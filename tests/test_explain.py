"""Explanations (issue 22): valence/arousal from the published ratings, voice cue groups
whose contributions add up to the model's logit difference, Grad-CAM heatmaps that follow
the face, and the whole explanation of a real-bundle answer."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.core import circumplex, cues
from pipeline.core.paths import shipped_bundle
from pipeline.serve import explain as explain_mod
from pipeline.serve.analysis import OK, BranchResult


# --------------------------------------------------------------------------- circumplex
def test_a_sure_answer_sits_on_its_word_with_no_spread() -> None:
    p = circumplex.place({"happy": 1.0, "sad": 0.0})
    assert p is not None
    assert (p.valence, p.arousal) == pytest.approx(((8.47 - 5) / 4, (6.05 - 5) / 4))
    assert p.valence_sd == pytest.approx(0.0) and p.arousal_sd == pytest.approx(0.0)


def test_a_torn_answer_is_the_weighted_mean_with_its_spread() -> None:
    p = circumplex.place({"happy": 0.5, "sad": 0.5})
    h, s = circumplex.coordinates("happy"), circumplex.coordinates("sad")
    assert p.valence == pytest.approx((h[0] + s[0]) / 2)
    assert p.valence_sd == pytest.approx(abs(h[0] - s[0]) / 2)
    assert p.arousal == pytest.approx((h[1] + s[1]) / 2)


def test_abstentions_and_unrated_classes() -> None:
    assert circumplex.place({}) is None
    p = circumplex.place({"angry": 0.6, "boredom": 0.4})  # boredom is not rated here
    assert p.mass == pytest.approx(0.6) and p.valence == pytest.approx(circumplex.coordinates("angry")[0])
    assert circumplex.path([{"sad": 1.0}, None])[1] is None
    with pytest.raises(KeyError):
        circumplex.coordinates("boredom")


def test_the_quadrants_match_the_circumplex() -> None:
    v, a = circumplex.coordinates("angry")
    assert v < 0 < a  # unpleasant, aroused
    v, a = circumplex.coordinates("calm")
    assert v > 0 > a  # pleasant, calm
    v, a = circumplex.coordinates("sad")
    assert v < 0 and a < 0


# --------------------------------------------------------------------------- cue groups
def test_every_shipped_voice_feature_has_a_documented_group() -> None:
    meta = json.loads((shipped_bundle() / "bundle.json").read_text())
    names = meta["models"]["audio"]["feature_names"]
    cmap = cues.CueMap.from_names(names)
    sizes = {g: len(v) for g, v in cmap.index.items()}
    assert "other" not in sizes
    assert sizes["encoder"] == 1024 and sizes["pitch"] == 10 and sizes["tempo"] == 6
    assert sum(sizes.values()) == len(names)
    assert cues.group_of("egemaps.HNRdBACF_sma3nz_amean") == "voice_quality"
    assert cues.group_of("egemaps.loudnessPeaksPerSec") == "tempo"
    assert cues.group_of("egemaps.loudness_sma3_amean") == "loudness"
    assert cues.group_of("egemaps.F2frequency_sma3nz_amean") == "spectral"


def test_sentences_say_the_direction_and_the_side() -> None:
    s = cues.describe("pitch", 1.2, 0.8, "angry", "sad", 0.4, "the training voices' average")
    assert "higher" in s and "more varied" in s and "toward angry" in s
    s = cues.describe("pitch", -1.0, 0.0, "angry", "sad", -0.2, "the training voices' average")
    assert "lower" in s and "toward sad" in s
    assert "cannot say in words" in cues.describe("encoder", None, None, "a", "b", 0.1, "x")


# --------------------------------------------------------------------------- contributions
class _Branch:
    """The parts of a bundle branch the explanation reads."""

    def __init__(self, model, classes, temperature=None, calibrated=None):
        from types import SimpleNamespace

        self.model, self.calibrated = model, calibrated or {}
        self.params = SimpleNamespace(classes=tuple(classes))
        self.temperature = temperature or {}

    def loaded(self):
        return self.model


def _fitted(n_classes: int = 4, d: int = 12, seed: int = 0):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    X = rng.normal(3.0, 2.0, (200, d))
    y = np.argmax(X[:, :n_classes] + rng.normal(0, 0.5, (200, n_classes)), axis=1)
    return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))]).fit(X, y), rng


def test_contributions_sum_to_the_models_logit_difference() -> None:
    model, rng = _fitted()
    classes = ("neutral", "happy", "sad", "angry")
    names = ["egemaps.F0semitoneFrom27.5Hz_sma3nz_amean", "egemaps.loudness_sma3_amean",
             "egemaps.loudnessPeaksPerSec", "egemaps.jitterLocal_sma3nz_amean"] + \
            [f"whisper_base.block3.mean[{i}]" for i in range(8)]
    branch = _Branch(model, classes, {"none": 2.0})
    x = rng.normal(3.0, 2.0, 12)
    logits = model.decision_function(x[None])[0]
    order = np.argsort(-logits)
    win, run = classes[order[0]], classes[order[1]]
    result = BranchResult(OK, {c: 0.25 for c in classes}, model_input=x, model_mode="none")
    ex = explain_mod.voice_contributions(branch, [result], win, run, names)
    assert ex is not None
    total = sum(g.value for g in ex.groups) + ex.intercept
    assert total == pytest.approx(logits[order[0]] - logits[order[1]], abs=1e-9)
    assert ex.logit_difference == pytest.approx(total)
    assert {g.group for g in ex.groups} == {"pitch", "loudness", "tempo", "voice_quality", "encoder"}
    assert ex.temperature == 2.0 and all(g.sentence for g in ex.groups)


def test_folded_linear_steps_keep_the_sum_exact() -> None:
    """Standardise -> project out the speakers' subspace -> standardise again -> logistic
    regression (the real voice's pipeline) is still one linear map of the first step's z."""
    import models

    rng = np.random.default_rng(3)
    X = rng.normal(3.0, 2.0, (240, 12)) + np.repeat(rng.normal(0, 4, (6, 12)), 40, axis=0)
    y = np.argmax(X[:, :4] + rng.normal(0, 0.5, (240, 4)), axis=1)
    model = models.build("logreg", (12,), 4, remove_speakers=True)
    model.fit(X, y, speakers__groups=np.repeat(np.arange(6), 40))
    assert model.named_steps["speakers"].components_.shape[0] == 5
    classes = ("neutral", "happy", "sad", "angry")
    names = ["egemaps.loudness_sma3_amean"] * 4 + [f"whisper_base.block3.mean[{i}]" for i in range(8)]
    for x in rng.normal(3.0, 3.0, (5, 12)):
        logits = model.decision_function(x[None])[0]
        order = np.argsort(-logits)
        result = BranchResult(OK, {c: 0.25 for c in classes}, model_input=x, model_mode="none")
        ex = explain_mod.voice_contributions(_Branch(model, classes), [result], classes[order[0]],
                                             classes[order[1]], names)
        assert ex is not None
        assert ex.logit_difference == pytest.approx(logits[order[0]] - logits[order[1]], abs=1e-9)
        assert sum(g.value for g in ex.groups) + ex.intercept == pytest.approx(ex.logit_difference)


def test_other_pipeline_shapes_are_exact_or_not_explained() -> None:
    """A scaler that keeps the mean (sklearn stores it, unused) is explained exactly; a
    projection that is not the speakers' (PCA) is not explained at all."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(5)
    X = rng.normal(3.0, 2.0, (200, 6))
    y = np.argmax(X[:, :3] + rng.normal(0, 0.5, (200, 3)), axis=1)
    classes = ("neutral", "happy", "sad")
    names = ["egemaps.loudness_sma3_amean"] * 6
    kept_mean = Pipeline([("scale", StandardScaler(with_mean=False)), ("again", StandardScaler(with_mean=False)),
                          ("clf", LogisticRegression(max_iter=500))]).fit(X, y)
    x = rng.normal(3.0, 2.0, 6)
    logits = kept_mean.decision_function(x[None])[0]
    order = np.argsort(-logits)
    result = BranchResult(OK, {c: 1 / 3 for c in classes}, model_input=x, model_mode="none")
    ex = explain_mod.voice_contributions(_Branch(kept_mean, classes), [result], classes[order[0]],
                                         classes[order[1]], names)
    assert ex.logit_difference == pytest.approx(logits[order[0]] - logits[order[1]], abs=1e-9)
    pca = Pipeline([("scale", StandardScaler()), ("pca", PCA(3)), ("clf", LogisticRegression(max_iter=500))]).fit(X, y)
    assert explain_mod.voice_contributions(_Branch(pca, classes), [result], "neutral", "happy", names) is None


def test_the_shipped_voice_model_is_explained_exactly() -> None:
    """The real bundle's own logistic regression: contributions add up to its logits."""
    import joblib

    model = joblib.load(shipped_bundle() / "audio" / "model.joblib")
    meta = json.loads((shipped_bundle() / "bundle.json").read_text())["models"]["audio"]
    classes = tuple(json.loads((shipped_bundle() / "bundle.json").read_text())["classes"])
    x = np.asarray(model.named_steps["scale"].mean_) + np.random.default_rng(1).normal(0, 1, len(meta["feature_names"])) \
        * np.asarray(model.named_steps["scale"].scale_)
    logits = model.decision_function(x[None])[0]
    order = np.argsort(-logits)
    result = BranchResult(OK, {c: 1 / 7 for c in classes}, model_input=x, model_mode="none")
    ex = explain_mod.voice_contributions(_Branch(model, classes), [result], classes[order[0]], classes[order[1]],
                                         meta["feature_names"])
    assert ex is not None
    assert ex.logit_difference == pytest.approx(logits[order[0]] - logits[order[1]], abs=1e-8)
    assert ex.logit_difference > 0


def test_a_model_that_is_not_linear_is_not_explained_as_one() -> None:
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    model = RandomForestClassifier(n_estimators=3).fit(rng.normal(size=(30, 4)), np.arange(30) % 2)
    result = BranchResult(OK, {"a": 0.5, "b": 0.5}, model_input=np.zeros(4), model_mode="none")
    assert explain_mod.voice_contributions(_Branch(model, ("a", "b")), [result], "a", "b",
                                           ["egemaps.loudness_sma3_amean"] * 4) is None


# --------------------------------------------------------------------------- face
@pytest.fixture(scope="module")
def real_bundle():
    from pipeline.serve.bundle import load_bundle

    return load_bundle(shipped_bundle())


def _face(shared: Path | None) -> np.ndarray:
    import cv2

    if shared is not None:
        files = sorted((shared / "fer2013" / "train" / "happy").glob("*.jpg"))[:1]
        if files:
            grey = cv2.imread(str(files[0]), cv2.IMREAD_GRAYSCALE)
            return np.repeat(grey[..., None], 3, axis=-1)
    face = np.full((48, 48), 120, np.uint8)
    cv2.ellipse(face, (24, 26), (15, 19), 0, 0, 360, 190, -1)
    for x in (18, 30):
        cv2.circle(face, (x, 21), 2, 40, -1)
    cv2.ellipse(face, (24, 33), (7, 4), 0, 0, 180, 60, 2)
    return np.repeat(face[..., None], 3, axis=-1)


def test_grad_cam_follows_the_face_and_changes_when_it_is_hidden(real_bundle) -> None:
    import os

    shared = Path(os.environ["AVE_SHARED_DATA"]) if os.environ.get("AVE_SHARED_DATA") else None
    branch = real_bundle.video
    assert explain_mod.last_conv_layer(branch.loaded()) == "relu4_2"
    face = _face(shared)
    hidden = face.copy()
    heat = explain_mod.face_explanation(branch, face[None], np.zeros(1), "happy").heatmaps
    assert heat.shape == (1, 48, 48) and 0.0 <= heat.min() and heat.max() <= 1.0
    y, x = np.unravel_index(int(np.argmax(heat[0])), heat[0].shape)
    y0, x0 = max(0, y - 12), max(0, x - 12)
    hidden[y0:y0 + 24, x0:x0 + 24] = 0  # cover where the model looked
    heat2 = explain_mod.face_explanation(branch, hidden[None], np.zeros(1), "happy").heatmaps
    assert float(np.abs(heat2 - heat).mean()) > 0.05
    # the per-frame answer is the model's own (what the clip answer pools)
    ex = explain_mod.face_explanation(branch, np.stack([face, hidden]), np.array([0.0, 0.5]), "happy")
    from pipeline.serve.inference import predict_crops

    assert ex.per_frame.shape == (2, len(branch.params.classes))
    pooled = predict_crops(branch, [np.stack([face, hidden])])[0]
    from pipeline.core.video import pool_frames

    assert np.allclose(pool_frames(ex.per_frame), pooled, atol=1e-6)
    over = explain_mod.overlay(face, heat[0])
    assert over.shape == (48, 48, 3) and over.dtype == np.uint8


def test_a_real_clip_is_explained_end_to_end(real_bundle, shared_data: Path, tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import bench_analyze

    from pipeline.serve import inference

    clip = bench_analyze.make_clip(4, tmp_path / "clip4.mp4")
    analysis = inference.analyze(str(clip), real_bundle)
    assert analysis.audio.ok and analysis.video.ok
    ex = explain_mod.explain(analysis, real_bundle)
    data = ex.to_json()
    json.dumps(data)  # JSON-able
    assert data["valence_arousal"]["source"].startswith("Warriner")
    assert set(data["valence_arousal"]["answers"]) == {"audio", "video", "fused"}
    voice = ex.voice
    assert voice is not None and voice.winner == analysis.audio.winner[0]
    assert sum(g.value for g in voice.groups) + voice.intercept == pytest.approx(voice.logit_difference)
    # the logit difference over the temperature is the answer's log-probability ratio
    p = analysis.audio.probabilities
    assert voice.logit_difference / voice.temperature == pytest.approx(
        np.log(p[voice.winner] / p[voice.runner_up]), abs=1e-4)
    assert ex.face is not None and ex.face.heatmaps.shape[0] == len(analysis.crops)
    assert len(data["face"]["per_frame"]) == len(analysis.crops)


def test_predict_json_explain_adds_the_explanation(shared_data: Path, tmp_path: Path, capsys) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import bench_analyze

    from pipeline.entry import cli

    clip = bench_analyze.make_clip(4, tmp_path / "clip4.mp4")
    assert cli.main(["predict", str(clip), "--json", "--explain", "--bundle", str(shipped_bundle())]) == 0
    out = json.loads(capsys.readouterr().out)
    ex = out["explanation"]
    assert ex["valence_arousal"]["answers"]["fused"] is not None
    groups = {g["group"]: g for g in ex["voice"]["groups"]}
    assert {"pitch", "loudness", "tempo", "voice_quality", "spectral", "encoder"} <= set(groups)
    assert sum(g["contribution"] for g in groups.values()) + ex["voice"]["intercept"] == pytest.approx(
        ex["voice"]["logit_difference"], abs=1e-3)
    assert len(ex["face"]["per_frame"]) >= 1
    assert cli.main(["predict", str(clip), "--json", "--bundle", str(shipped_bundle())]) == 0
    assert "explanation" not in json.loads(capsys.readouterr().out)  # only when asked
