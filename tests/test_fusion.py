"""Late fusion: every method and rule, the missing-modality fallback and the
out-of-fold (cross-fitting) property."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.serve import fusion
from pipeline.research import fusion_runs

C = 6


def _branch(y: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """(n, C) probabilities that favour the true class by ``strength`` logits."""
    logits = rng.normal(0.0, 1.0, (len(y), C))
    logits[np.arange(len(y)), y] += strength
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    y = np.tile(np.arange(C), 50)
    rng.shuffle(y)
    # Two complementary branches: audio good at classes 0-2, video at 3-5.
    pa = _branch(y, 1.0, rng)
    pv = _branch(y, 1.0, rng)
    boost_a, boost_v = y < 3, y >= 3
    pa[boost_a, y[boost_a]] += 2.0
    pv[boost_v, y[boost_v]] += 2.0
    return y, fusion.normalize(pa), fusion.normalize(pv)


@pytest.mark.parametrize("name", fusion.ALL_FUSERS)
def test_every_fuser_beats_both_branches(data, name):
    y, pa, pv = data
    train, test = np.arange(200), np.arange(200, 300)
    fuser = fusion.LateFusion(name, classes=[str(i) for i in range(C)]).fit(pa[train], pv[train], y[train])
    proba = fuser.predict_proba(pa[test], pv[test])
    assert proba.shape == (100, C)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    acc = float(np.mean(proba.argmax(axis=1) == y[test]))
    best_branch = max(np.mean(pa[test].argmax(1) == y[test]), np.mean(pv[test].argmax(1) == y[test]))
    assert acc > best_branch, f"{name}: {acc:.3f} <= best branch {best_branch:.3f}"


def test_missing_class_still_gives_all_columns(data):
    y, pa, pv = data
    keep = y != 5
    fuser = fusion.LateFusion("fusion_lr").fit(pa[keep], pv[keep], y[keep])
    proba = fuser.predict_proba(pa[:10], pv[:10])
    assert proba.shape == (10, C) and np.all(proba[:, 5] == 0)


def test_weighted_rule_learns_to_trust_the_better_branch():
    rng = np.random.default_rng(0)
    y = np.tile(np.arange(C), 40)
    good, noise = _branch(y, 4.0, rng), _branch(y, 0.0, rng)
    rule = fusion.RuleFusion("weighted").fit(fusion.stack(noise, good), y)
    assert rule.weight_ < 0.5  # weight of audio (the noise branch here)
    rule = fusion.RuleFusion("weighted").fit(fusion.stack(good, noise), y)
    assert rule.weight_ > 0.5


def test_product_rule_is_normalised_product():
    pa = np.array([[0.5, 0.5, 0, 0, 0, 0]]) + 0.0
    pv = np.array([[0.9, 0.1, 0, 0, 0, 0]]) + 0.0
    rule = fusion.RuleFusion("product").fit(fusion.stack(pa, pv), np.array([0]))
    p = rule.predict_proba(fusion.stack(pa, pv))[0]
    assert p.argmax() == 0 and abs(p[0] - 0.9) < 1e-3


def test_knn_grid_search_picks_a_k_in_range(data):
    y, pa, pv = data
    fuser = fusion.LateFusion("fusion_knn").fit(pa, pv, y)
    assert 1 <= fuser.describe()["n_neighbors"] <= 24


def test_fallback_when_one_modality_is_missing(data):
    y, pa, pv = data
    fuser = fusion.LateFusion("fusion_mlp").fit(pa, pv, y)
    both = fuser.fuse(pa[0], pv[0])
    assert both.status == "ok" and both.source == "fusion"
    audio_only = fuser.fuse(pa[0], None, video_reason="no face")
    assert audio_only.status == "ok" and "audio only" in audio_only.source and "no face" in audio_only.source
    np.testing.assert_allclose(audio_only.probabilities, pa[0] / pa[0].sum())
    video_only = fuser.fuse(None, pv[0], audio_reason="silent audio")
    assert "video only" in video_only.source and "silent audio" in video_only.source
    none = fuser.fuse(None, None, audio_reason="silent audio", video_reason="no face")
    assert none.probabilities is None and "silent audio" in none.status


def test_unknown_names_fail_clearly():
    with pytest.raises(ValueError, match="unknown fuser"):
        fusion.make_fuser("fusion_forest")
    with pytest.raises(ValueError, match="unknown fuser"):
        fusion.fuser_name("vote")
    with pytest.raises(ValueError, match="same shape|one shape"):
        fusion.stack(np.zeros((3, 6)), np.zeros((4, 6)))


def test_cross_fit_is_out_of_fold():
    """Every clip's fusion-training probability comes from a branch model that was
    trained without that clip and without any clip of its actor."""
    actors = np.repeat([f"{a:02d}" for a in range(1, 9)], 12)
    y = np.tile(np.arange(C), 16)
    trained_on: list[set[int]] = []

    def fit_predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        # A "branch model" that memorises its training clips: it answers the true label
        # with certainty for clips it saw, so any leak would be visible in the output.
        trained_on.append(set(train.tolist()))
        out = np.full((len(test), C), 1.0 / C)
        seen = np.isin(test, train)
        out[seen] = np.eye(C)[y[test[seen]]]
        return out

    result = fusion_runs.cross_fit(fit_predict, y, actors, n_splits=4, seed=0)
    assert result.proba.shape == (len(y), C)
    assert len(trained_on) == 4 and (result.fold >= 0).all()
    for i in range(len(y)):
        train = trained_on[result.fold[i]]
        assert i not in train
        assert not any(actors[j] == actors[i] for j in train), "an actor straddles the inner split"
    # no clip got the memorised (leaked) answer
    assert np.allclose(result.proba, 1.0 / C)


def test_inner_splits_need_two_groups():
    with pytest.raises(ValueError, match="two groups"):
        fusion_runs.inner_splits(np.zeros(5, dtype=int), ["01"] * 5)
