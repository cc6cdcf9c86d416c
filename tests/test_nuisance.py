"""Projecting the training speakers' subspace out of the features
(:class:`models.nuisance.SpeakerSubspaceRemoval`): what it removes, what it keeps, its
errors, and that the experiment runner and a saved model use it without test-side data."""
from __future__ import annotations

import joblib
import numpy as np
import pytest

import models
from models.nuisance import SpeakerSubspaceRemoval
from pipeline.research import experiments
from pipeline.research.splits import Fold


def _speakers_and_emotions(seed: int = 0, n_speakers: int = 6, per: int = 20, d: int = 12):
    """Rows = speaker offset (in 3 fixed directions) + emotion offset (in another) + noise."""
    rng = np.random.default_rng(seed)
    speaker_dirs = np.eye(d)[:3]
    emotion_dir = np.eye(d)[5]
    groups = np.repeat([f"s{k}" for k in range(n_speakers)], per)
    y = np.tile(np.arange(2), n_speakers * per // 2)
    offsets = rng.normal(0, 5, (n_speakers, 3)) @ speaker_dirs
    X = offsets[np.repeat(np.arange(n_speakers), per)] + np.outer(y * 2.0 - 1, emotion_dir)
    return X + rng.normal(0, 0.001, X.shape), y, groups


def test_removes_the_speaker_directions_and_keeps_the_emotion():
    X, y, groups = _speakers_and_emotions()
    step = SpeakerSubspaceRemoval().fit(X, y, groups=groups)
    assert step.components_.shape == (3, X.shape[1])  # 6 speakers, means spread in 3 directions only
    np.testing.assert_allclose(step.components_ @ step.components_.T, np.eye(3), atol=1e-9)
    Z = step.transform(X)
    means = np.stack([Z[groups == g].mean(axis=0) for g in np.unique(groups)])
    assert np.abs(means - means.mean(axis=0)).max() < 1e-3  # every training speaker now sits at one place
    gap = Z[y == 1, 5].mean() - Z[y == 0, 5].mean()
    assert gap == pytest.approx(2.0, abs=0.01)  # the emotion's direction is untouched
    assert SpeakerSubspaceRemoval(n_components=2).fit(X, y, groups=groups).components_.shape == (2, X.shape[1])


def test_speakers_already_normalised_leave_nothing_to_remove():
    X, y, groups = _speakers_and_emotions()
    for g in np.unique(groups):
        X[groups == g] -= X[groups == g].mean(axis=0)
    step = SpeakerSubspaceRemoval().fit(X, y, groups=groups)
    assert step.components_.shape == (0, X.shape[1])
    np.testing.assert_allclose(step.transform(X), X)


def test_never_removes_more_than_half_the_features():
    """As many speakers as features (91 CREMA-D speakers, 88 eGeMAPS values): the means
    span the space; removing it all would leave the classifier rounding noise."""
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(12), 5)
    X = rng.normal(size=(60, 6)) + np.repeat(rng.normal(0, 3, (12, 6)), 5, axis=0)
    step = SpeakerSubspaceRemoval().fit(X, groups=groups)
    assert step.components_.shape == (3, 6)
    assert np.linalg.matrix_rank(step.transform(X)) == 3


@pytest.mark.parametrize("kwargs, message", [
    ({}, "needs the speaker"),
    ({"groups": np.array(["a", "b"])}, "one speaker per row"),
    ({"groups": np.zeros((120, 1))}, "one speaker per row"),
    ({"groups": ["a"] * 119 + [None]}, "no speaker name"),
    ({"groups": [0.0] * 119 + [float("nan")]}, "no speaker name"),
])
def test_clear_errors(kwargs, message):
    X, y, _ = _speakers_and_emotions()
    with pytest.raises(ValueError, match=message):
        SpeakerSubspaceRemoval().fit(X, y, **kwargs)


def test_clear_errors_for_settings_and_values():
    from sklearn.exceptions import NotFittedError

    X, y, groups = _speakers_and_emotions()
    for bad in (0, True, 2.7, "2"):
        with pytest.raises(ValueError, match="n_components"):
            SpeakerSubspaceRemoval(n_components=bad).fit(X, y, groups=groups)
    X_bad = X.copy()
    X_bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        SpeakerSubspaceRemoval().fit(X_bad, y, groups=groups)
    with pytest.raises(NotFittedError):
        SpeakerSubspaceRemoval().transform(X)
    step = SpeakerSubspaceRemoval().fit(X, y, groups=list(range(6)) * 20)  # any hashable names
    with pytest.raises(ValueError, match="NaN"):
        step.transform(X_bad)
    with pytest.raises(ValueError, match=r"need X \(n, 12\)"):
        step.transform(X[:, :5])


def test_logreg_with_speakers_removed_serves_one_row_after_a_round_trip(tmp_path):
    X, y, groups = _speakers_and_emotions()
    model = models.build("logreg", (X.shape[1],), 2, remove_speakers=True)
    with pytest.raises(ValueError, match="needs the speaker"):
        models.build("logreg", (X.shape[1],), 2, remove_speakers=True).fit(X, y)
    model.fit(X, y, speakers__groups=groups)
    joblib.dump(model, tmp_path / "model.joblib")
    again = joblib.load(tmp_path / "model.joblib")
    # the first take moved by the difference between two training speakers' averages
    stranger = X[:1] + X[groups == "s3"].mean(axis=0) - X[groups == "s0"].mean(axis=0)
    np.testing.assert_allclose(again.predict_proba(stranger), model.predict_proba(X[:1]), atol=1e-9)


def test_the_runner_hands_every_training_row_its_speaker():
    import pandas as pd

    manifest = pd.DataFrame({"corpus": ["ravdess"] * 3 + ["tess"] * 3,
                             "actor": ["01", "01", "02", "01", "01", "02"]})
    fold = Fold("corpus-x", "corpus", 0, train=np.array([0, 1, 3]), val=np.array([4]),
                test=np.array([2, 5]), test_actors=())
    ok = np.array([True, False, True, True, True, True])
    train, val = experiments.speaker_groups(manifest, fold, {"noise": (np.zeros((6, 1)), ok)})
    # the originals, then the copies of the clips whose augmentation worked (rows 0 and 3)
    assert train.tolist() == ["ravdess:01", "ravdess:01", "tess:01", "ravdess:01", "tess:01"]
    assert val.tolist() == ["tess:01"]
