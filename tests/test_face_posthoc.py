"""Face test-time views, per-class recalibration, the tune-faces experiment and how a
bundle serves both: views are exact transforms, the recalibration fits what it should
(and out-of-fold figures never see their own images), the served probabilities are the
measured ones, and a re-export carries a voice branch whole."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.core import face_views
from pipeline.core.scaling import Scaling
from pipeline.research import recalibration


def _faces(n: int = 3, size: int = 48) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, size, size, 1), dtype=np.uint8)


def test_views_are_the_transforms_they_name() -> None:
    x = _faces()
    assert face_views.view(x, "identity") is x
    assert np.array_equal(face_views.view(x, "flip"), x[:, :, ::-1])
    ramp = np.tile(np.arange(48, dtype=np.uint8)[None, :, None], (48, 1, 1))[None]  # brightness = column
    left, right = face_views.view(ramp, "crop_tl"), face_views.view(ramp, "crop_br")
    assert left.shape == ramp.shape and left.dtype == np.uint8
    assert left[0, :, 0, 0].mean() < 2 and right[0, :, -1, 0].mean() > 45  # windows at the corners
    zoom = face_views.view(ramp, "zoom")[0, 24, :, 0].astype(int)
    assert zoom[0] >= 2 and zoom[-1] <= 45 and np.all(np.diff(zoom) >= 0)  # the centre, enlarged
    assert face_views.view_names("flip_crops")[0] == "identity" and len(face_views.view_names("flip_crops")) == 7
    with pytest.raises(ValueError, match="unknown view set"):
        face_views.view_names("ten_crop")
    with pytest.raises(ValueError, match="size, size"):
        face_views.view(np.zeros((48, 48, 1), np.uint8), "flip")


def test_predict_views_averages_one_batched_call() -> None:
    calls = []

    def predict(batch: np.ndarray) -> np.ndarray:  # "probability of class 0" = mean of the left half
        calls.append(len(batch))
        left = batch[:, :, :24].mean(axis=(1, 2, 3)) / 255.0
        return np.stack([left, 1 - left], axis=1)

    x = _faces(4)
    proba = face_views.predict_views(predict, x, "flip")
    assert calls == [8]  # one call for 4 crops x 2 views
    plain, flipped = predict(x), predict(x[:, :, ::-1])
    assert np.allclose(proba, (plain + flipped) / 2)


def test_scaling_applies_temperature_and_vector_maps() -> None:
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    assert np.allclose(Scaling((1.0,) * 3, (0.0,) * 3).apply(p), p)
    t = Scaling((0.5,) * 3, (0.0,) * 3, method="temperature").apply(p)  # T = 2: softer
    assert np.allclose(t, np.sqrt(p) / np.sqrt(p).sum(axis=1, keepdims=True)) and t.max() < p.max()
    shifted = Scaling((1.0,) * 3, (0.0, np.log(4.0), 0.0)).apply(p)  # class 1 four times as likely
    expected = p * [1, 4, 1]
    assert np.allclose(shifted, expected / expected.sum(axis=1, keepdims=True))
    assert Scaling.from_dict(Scaling((1.0, 2.0), (0.0, 1.0)).to_dict()) == Scaling((1.0, 2.0), (0.0, 1.0))
    with pytest.raises(ValueError, match="3 classes"):
        Scaling((1.0,) * 3, (0.0,) * 3).apply(np.ones((1, 2)) / 2)
    with pytest.raises(ValueError, match="scale"):
        Scaling.from_dict({"bias": [0, 0]})


def _overconfident(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 3-class model twice as sure as it should be and blind to the classes' priors:
    scores x ~ N(1.5 onehot(y), 1), so the true posterior is softmax(1.5 x + log prior);
    the model says softmax(3 x)."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    x = rng.normal(0, 1, (n, 3))
    x[np.arange(n), y] += 1.5
    z = 3.0 * x
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True), y


def test_recalibration_lowers_the_calibration_error_out_of_fold() -> None:
    from pipeline.research.evaluation import expected_calibration_error

    p, y = _overconfident()
    temperature = recalibration.fit(p, y, "temperature")
    assert 1.5 < temperature.info["temperature"] < 2.6  # it was made twice as sure
    before = expected_calibration_error(y, p)
    for method in ("temperature", "vector"):
        after = expected_calibration_error(y, recalibration.cross_fitted(p, y, method))
        assert after < before / 2, (method, before, after)
    vector = recalibration.fit(p, y, "vector")
    assert vector.bias[2] - vector.bias[0] < -0.5  # learns the prior it was blind to: log(0.2 / 0.5) = -0.92
    with pytest.raises(ValueError, match="unknown recalibration"):
        recalibration.fit(p, y, "isotonic")


def test_cross_fitted_maps_never_see_the_images_they_score() -> None:
    p, y = _overconfident(400)
    out = recalibration.cross_fitted(p, y, "vector", folds=4, seed=3)
    tampered = p.copy()
    tampered[0] = np.eye(3)[(y[0] + 1) % 3] * 0.98 + 0.01  # image 0 now confidently wrong
    again = recalibration.cross_fitted(tampered, y, "vector", folds=4, seed=3)
    unchanged = np.flatnonzero(np.all(np.isclose(out, again, rtol=0, atol=1e-9), axis=1))
    # the rest of image 0's fold is scored by a map fitted on the other three folds: untouched;
    # the other 300 images' maps saw image 0
    assert len(unchanged) == 400 // 4 - 1 and 0 not in unchanged
    with pytest.raises(ValueError, match="hold only 3; use a larger image set or --calibration none"):
        recalibration.cross_fitted(p[:3], y[:3], "vector", folds=5)


def _image_set(root: Path) -> Path:
    """16 drawn 48 x 48 faces per emotion: happy mouths curve up, sad ones down."""
    import cv2

    rng = np.random.default_rng(1)
    for emotion, start, end in (("happy", 0, 180), ("sad", 180, 360)):
        (root / emotion).mkdir(parents=True)
        for i in range(16):
            face = np.full((48, 48), 110 + int(rng.integers(-20, 20)), np.uint8)
            cv2.ellipse(face, (24 + int(rng.integers(-2, 3)), 25), (16, 20), 0, 0, 360, 190, -1)
            for x in (18, 30):
                cv2.circle(face, (x, 20), 2, 40, -1)
            cv2.ellipse(face, (24, 34), (7, 4), 0, start, end, 50, 2)
            cv2.imwrite(str(root / emotion / f"{i}.png"), face)
    return root


def test_tune_faces_measures_variants_and_the_bundle_serves_what_was_measured(tmp_path: Path) -> None:
    import pandas as pd

    from pipeline.core import video
    from pipeline.core.corpora import scan
    from pipeline.research import export, store
    from pipeline.research.face_posthoc import PosthocConfig, tune_faces
    from pipeline.research.face_training import FER_PARAMS, FaceTrainingConfig, face_images, train_faces
    from pipeline.serve.bundle import load_bundle

    frame, _ = scan("images", _image_set(tmp_path / "train"))
    trained = train_faces(frame, tmp_path / "runs" / "faces", params=FER_PARAMS,
                          config=FaceTrainingConfig(model="face_cnn_small", epochs=2, batch_size=8, val_fraction=0.25,
                                                    hparams={"augment": 0.0}),
                          cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    out = tmp_path / "runs" / "faces"
    folds = tune_faces(trained / "model.keras", frame, out, params=FER_PARAMS,
                       config=PosthocConfig(base="small", view_sets=("none", "flip"), calibrations=("none", "vector"),
                                            val_fraction=0.25, cv_folds=2),
                       cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    assert [f.parent.name for f in folds] == ["small+none", "small+none+vector", "small+flip", "small+flip+vector"]
    summary = store.summarise(out)
    assert {"face_cnn", "small+none", "small+flip+vector"} <= set(summary["variant"])  # one ablation table
    plain = json.loads((out / "small+none" / "holdout-1" / "metrics.json").read_text())
    trained_metrics = json.loads((trained / "metrics.json").read_text())
    assert plain["accuracy"] == pytest.approx(trained_metrics["accuracy"])  # the same validation images
    tuned = json.loads((out / "small+flip+vector" / "holdout-1" / "metrics.json").read_text())
    assert tuned["n_test"] == 8 and "before_recalibration" in tuned and set(tuned["per_class_recall"]) == set(
        FER_PARAMS.classes)

    bundle = export.export_bundle(None, out / "small+flip+vector", out=tmp_path / "bundle", name="t")
    meta = json.loads((bundle / "bundle.json").read_text())["models"]["video"]
    assert meta["views"] == "flip" and meta["scaling"]["method"] == "vector"
    served = load_bundle(bundle).video
    assert served.views == "flip" and served.scaling is not None
    pair = tune_faces([trained / "model.keras"] * 2, frame, out, params=FER_PARAMS,  # an ensemble of one model twice
                      config=PosthocConfig(base="pair", view_sets=("flip",), calibrations=("none",), val_fraction=0.25),
                      cache_dir=tmp_path / "cache", n_jobs=1, progress=False)[0]
    assert json.loads((pair / "metrics.json").read_text())["accuracy"] == pytest.approx(
        json.loads((out / "small+flip" / "holdout-1" / "metrics.json").read_text())["accuracy"])
    assert not (pair / "model.keras").exists()
    from pipeline.serve.bundle import BundleError

    with pytest.raises(BundleError, match="no model file"):  # measured, never shipped
        export.export_bundle(None, pair.parent, out=tmp_path / "b3", name="t3")
    (out / "run+none" / "holdout-1").mkdir(parents=True)  # a training run that happens to bear the name
    (out / "run+none" / "holdout-1" / "config.yaml").write_text("model: {name: face_cnn}\n")
    with pytest.raises(ValueError, match="holds a training run"):  # never overwritten
        tune_faces(trained / "model.keras", frame, out, params=FER_PARAMS,
                   config=PosthocConfig(base="run", view_sets=("none",), calibrations=("none",), val_fraction=0.25),
                   cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    rows, X, y, _, _ = face_images(frame, FER_PARAMS, cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    predictions = pd.read_csv(out / "small+flip" / "holdout-1" / "predictions.csv")
    at = {c: i for i, c in enumerate(rows["clip_id"])}
    idx = [at[c] for c in predictions["clip_id"]]
    measured = predictions[[f"p_{c}" for c in FER_PARAMS.classes]].to_numpy()
    unscaled = load_bundle(export.export_bundle(None, out / "small+flip", out=tmp_path / "b2", name="t2")).video
    assert np.allclose(unscaled.predict_proba(X[idx]), measured, atol=1e-5)  # served = measured (views)
    expected = served.scaling.apply(measured)
    assert np.allclose(served.predict_proba(X[idx]), expected, atol=1e-5)  # and the shipped map on top
    # the serving path's crop-to-input step turns RGB crops into these inputs unchanged
    rgb = np.repeat(X[idx][..., :1], 3, axis=-1)
    assert np.array_equal(video.face_input(rgb, FER_PARAMS), X[idx])


def test_a_bundle_with_an_unusable_serving_record_is_refused(tmp_path: Path) -> None:
    import shutil

    from pipeline.serve.bundle import BundleError, load_bundle

    real = Path(__file__).resolve().parents[1] / "bundles" / "real"
    copy = tmp_path / "real"
    shutil.copytree(real, copy)
    meta = json.loads((copy / "bundle.json").read_text())
    meta["models"]["video"]["views"] = "ten_crop"
    (copy / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="serving record is unusable.*ten_crop"):
        load_bundle(copy)
    meta["models"]["video"]["views"] = "flip"
    meta["models"]["video"]["scaling"] = {"scale": [1.0, 1.0], "bias": [0.0, 0.0]}
    (copy / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="2 classes for a model of 7"):
        load_bundle(copy)


def test_export_carries_a_bundles_voice_branch_whole(tmp_path: Path) -> None:
    from pipeline.research import export

    real = Path(__file__).resolve().parents[1] / "bundles" / "real"
    out = export.export_bundle(None, None, out=tmp_path / "again", name="real", fusion_rule="reliability",
                               audio_bundle=real, video_bundle=real)
    before = json.loads((real / "bundle.json").read_text())["models"]
    after = json.loads((out / "bundle.json").read_text())["models"]
    assert after == before
    for rel in ("audio/model.joblib", *before["audio"]["calibrated"].values(), before["audio"]["reference"]):
        assert (out / rel).read_bytes() == (real / rel).read_bytes()


def test_the_model_card_states_views_and_recalibration() -> None:
    from pipeline.research.cards import render_card

    video = {"model": "face_cnn", "framework": "keras", "input_kind": "faces", "views": "flip",
             "scaling": Scaling((1.0, 0.8), (0.0, 0.1)).to_dict(),
             "metrics": {"protocol": "holdout", "n_folds": 1, "n_test": 10, "accuracy_mean": 0.6, "uar_mean": 0.5,
                         "macro_f1_mean": 0.5, "ece_mean": 0.02, "recalibration_protocol": "out-of-fold",
                         "before_recalibration": {"ece": 0.06}, "per_class_ece": {"happy": 0.03, "sad": 0.05}}}
    card = render_card({"name": "t", "classes": ["happy", "sad"], "models": {"video": video}}, {})
    assert "**Test-time views**: `flip` (identity, flip)" in card
    assert "ECE 6.0% before, 2.0% after" in card and "happy 3.0%, sad 5.0%" in card
