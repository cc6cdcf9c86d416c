"""Speaker and random protocols: disjoint sides, no actor leak, seeded and stratified."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.research import splits
from pipeline.core.labels import label_set

SIX = label_set("six")


def _manifest(n_actors: int = 8, takes: int = 4, emotions=SIX) -> pd.DataFrame:
    rows = []
    for a in range(1, n_actors + 1):
        for e in emotions:
            for r in range(takes):
                rows.append({"clip_id": f"t:{a:02d}-{e}-{r}", "actor": f"{a:02d}",
                             "gender": "male" if a % 2 else "female", "emotion": e})
    return pd.DataFrame(rows)


def _actors(m: pd.DataFrame, idx: np.ndarray) -> set[str]:
    return set(m["actor"].iloc[idx])


@settings(max_examples=25, deadline=None)
@given(n_actors=st.integers(2, 10), data=st.data())
def test_speaker_folds_never_share_an_actor(n_actors: int, data) -> None:
    m = _manifest(n_actors, takes=2)
    k = data.draw(st.integers(2, n_actors))
    folds = splits.make_folds(m, "speaker", n_folds=k, val_fraction=0.2)
    assert len(folds) == k
    tested = []
    for f in folds:
        train, val, test = _actors(m, f.train), _actors(m, f.val), _actors(m, f.test)
        assert not (train & test) and not (val & test)
        if n_actors - len(test) >= 2:  # validation actors come from the training side
            assert val and not (train & val)
            assert set(f.val_actors) == val
        assert set(f.test_actors) == test
        assert len(f.train) + len(f.val) + len(f.test) == len(m)
        tested += sorted(test)
    assert sorted(tested) == sorted(set(m["actor"]))  # every actor tested exactly once


def test_speaker_folds_balance_gender_and_name_folds() -> None:
    m = _manifest(8)
    folds = splits.speaker_folds(m, 4)
    assert [f.name for f in folds] == ["speaker-0", "speaker-1", "speaker-2", "speaker-3"]
    for f in folds:
        genders = set(m["gender"].iloc[f.test])
        assert genders == {"male", "female"}


def test_too_many_folds_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="only 3 actors"):
        splits.make_folds(_manifest(3), "speaker", n_folds=4)
    with pytest.raises(ValueError, match="unknown protocol"):
        splits.make_folds(_manifest(3), "loso")


def test_random_folds_are_seeded_stratified_and_disjoint() -> None:
    m = _manifest(6, takes=5)
    folds = splits.make_folds(m, "random")
    assert [f.name for f in folds] == [f"random-{s}" for s in splits.REPORT_SEEDS]
    for f in folds:
        sides = [set(m["clip_id"].iloc[i]) for i in (f.train, f.val, f.test)]
        assert not (sides[0] & sides[1]) and not (sides[0] & sides[2]) and not (sides[1] & sides[2])
        assert sum(map(len, sides)) == len(m)
        assert len(f.test) == round(0.1 * len(m))
        counts = m["emotion"].iloc[f.test].value_counts()
        assert set(counts.index) == set(SIX) and counts.max() - counts.min() <= 1
    again = splits.make_folds(m, "random")
    assert all(np.array_equal(a.test, b.test) for a, b in zip(folds, again))
    assert not np.array_equal(folds[0].test, folds[1].test)


def test_random_split_refuses_duplicate_takes() -> None:
    m = _manifest(2)
    m = pd.concat([m, m.iloc[:1]], ignore_index=True)
    with pytest.raises(ValueError, match="straddle"):
        splits.random_folds(m)


def test_labels_are_filtered_and_encoded_in_label_set_order() -> None:
    m = _manifest(2, emotions=label_set("eight"))
    kept = splits.filter_to_labels(m, label_set("four"))
    assert set(kept["emotion"]) == set(label_set("four"))
    assert list(kept.index) == list(range(len(kept)))
    y = splits.encode_labels(["angry", "neutral"], label_set("four"))
    assert y.tolist() == [3, 0]
    with pytest.raises(ValueError, match="not in the label set"):
        splits.encode_labels(["disgust"], label_set("four"))
