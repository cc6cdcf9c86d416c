"""Evaluation splits: the honest ``speaker`` protocol, leave-one-``corpus``-out, and the
report's ``random`` one.

A :class:`Fold` holds row positions into a manifest (``train``, ``val``, ``test``).
``speaker`` folds group by actor (no actor on two sides, validation actors taken from
the training side); ``corpus`` folds hold out one whole corpus each (trained on every
other corpus of the manifest: people, rooms and microphones never met); ``random`` folds
are stratified by emotion and repeated over seeds; ``all`` is one fold that trains on
every clip (the model that ships; its test side is the training data, so its scores are
in-sample and never a result).
One manifest row is one *take* (the audio-only, video-only and AV files of a
performance share one ``clip_id``), so splitting rows never lets a take straddle
train and test.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

PROTOCOLS: tuple[str, ...] = ("speaker", "corpus", "random", "all")
#: The report's seeds for its repeated random splits.
REPORT_SEEDS: tuple[int, ...] = (27, 31, 948088, 271617, 42)


@dataclass(frozen=True)
class Fold:
    """One train/validation/test partition, as row positions into a manifest."""

    name: str                      # "speaker-K", "corpus-NAME" (NAME held out) or "random-SEED"
    protocol: str                  # "speaker" | "corpus" | "random"
    seed: int                      # seeds the model's initialisation for this fold
    train: np.ndarray              # int positions, sorted
    val: np.ndarray
    test: np.ndarray
    test_actors: tuple[str, ...]
    val_actors: tuple[str, ...] = ()

    def sides(self) -> dict[str, np.ndarray]:
        """The three index arrays by name."""
        return {"train": self.train, "val": self.val, "test": self.test}


def filter_to_labels(manifest: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Rows whose emotion is in ``classes``, re-indexed 0..n-1 (done before splitting)."""
    keep = manifest["emotion"].isin(list(classes))
    dropped = int((~keep).sum())
    if dropped:
        log.info("dropping %d clips whose emotion is not in the label set", dropped)
    return manifest.loc[keep].reset_index(drop=True)


def encode_labels(emotions: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """Emotion names -> class indices (int64) in label-set order; unknown names raise."""
    index = {c: i for i, c in enumerate(classes)}
    try:
        return np.array([index[e] for e in emotions], dtype=np.int64)
    except KeyError as err:
        raise ValueError(f"emotion {err.args[0]!r} is not in the label set {list(classes)}") from None


def _pick_val_actors(train_actors: list[str], genders: dict[str, str], fraction: float,
                     rng: np.random.Generator) -> list[str]:
    """Choose ``round(fraction * n)`` (at least 1) validation actors, alternating genders."""
    n_val = max(1, int(round(fraction * len(train_actors))))
    n_val = min(n_val, len(train_actors) - 1)
    by_gender: dict[str, list[str]] = {}
    for actor in rng.permutation(train_actors):
        by_gender.setdefault(genders.get(str(actor), ""), []).append(str(actor))
    pools = [by_gender[g] for g in sorted(by_gender)]
    start = int(rng.integers(len(pools)))
    pools = pools[start:] + pools[:start]  # which gender goes first varies by fold
    chosen: list[str] = []
    while len(chosen) < n_val:
        for pool in pools:
            if pool and len(chosen) < n_val:
                chosen.append(pool.pop())
    return sorted(chosen)


def _stratified_holdout(labels: np.ndarray, positions: np.ndarray, fraction: float,
                        seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``positions`` into (rest, held) with ``fraction`` held, stratified if possible."""
    from sklearn.model_selection import train_test_split

    n_held = max(1, int(round(fraction * len(positions))))
    counts = np.unique(labels[positions], return_counts=True)[1]
    stratify = labels[positions] if counts.min() >= 2 and n_held >= len(counts) else None
    rest, held = train_test_split(positions, test_size=n_held, random_state=seed,
                                  shuffle=True, stratify=stratify)
    return np.sort(rest), np.sort(held)


def speaker_folds(manifest: pd.DataFrame, n_folds: int, *, val_fraction: float = 0.1,
                  seed: int = 42, test_corpus: str | None = None) -> list[Fold]:
    """Group k-fold by actor, gender-balanced; validation actors come from the train side.

    Uses scikit-learn's ``StratifiedGroupKFold`` with actors as groups and gender as
    the stratum, so each test fold mixes male and female voices when it can. With
    ``n_folds`` equal to the number of actors this is leave-one-actor-out.
    ``test_corpus``: only that corpus's actors are folded into test sides; the rows of
    every other corpus are always on the training side (a recipe trained on several
    corpora, scored speaker-independently on one).
    """
    from sklearn.model_selection import StratifiedGroupKFold

    if test_corpus is not None:
        pool = np.flatnonzero(manifest["corpus"].astype(str).to_numpy() == test_corpus)
        if not len(pool):
            raise ValueError(f"no clips of corpus {test_corpus!r} to fold by speaker")
        rest = np.setdiff1d(np.arange(len(manifest)), pool)
        inner = speaker_folds(manifest.iloc[pool].reset_index(drop=True), n_folds,
                              val_fraction=val_fraction, seed=seed)
        return [Fold(name=f.name, protocol=f.protocol, seed=f.seed,
                     train=np.sort(np.concatenate([pool[f.train], rest])), val=pool[f.val], test=pool[f.test],
                     test_actors=f.test_actors, val_actors=f.val_actors) for f in inner]
    actors = manifest["actor"].astype(str).to_numpy()
    unique = sorted(set(actors))
    if n_folds < 2:
        raise ValueError(f"protocol.folds must be >= 2, got {n_folds}")
    if n_folds > len(unique):
        hint = (f"use at most {len(unique)} folds" if len(unique) >= 2 else
                "speaker folds need at least two actors; use protocol.kind=random (not speaker-independent)")
        raise ValueError(f"protocol.folds={n_folds} but the corpus has only {len(unique)} actors "
                         f"({', '.join(unique)}); {hint}")
    genders = dict(zip(actors, manifest["gender"].astype(str)))
    strata = np.array([genders[a] for a in actors])
    labels = manifest["emotion"].astype(str).to_numpy()
    splitter = StratifiedGroupKFold(n_splits=n_folds)
    folds: list[Fold] = []
    for k, (train_pos, test_pos) in enumerate(splitter.split(actors, strata, groups=actors)):
        rng = np.random.default_rng(seed + k)
        train_actors = sorted(set(actors[train_pos]))
        if val_fraction <= 0:  # no validation side: Keras then stops on training loss
            val_actors, val_pos = [], np.array([], dtype=int)
        elif len(train_actors) >= 2:
            val_actors = _pick_val_actors(train_actors, genders, val_fraction, rng)
            is_val = np.isin(actors[train_pos], val_actors)
            val_pos, train_pos = train_pos[is_val], train_pos[~is_val]
        else:  # one training actor: the only validation left is a slice of its clips
            log.warning("fold %d has one training actor; validation clips come from it", k)
            val_actors = []
            train_pos, val_pos = _stratified_holdout(labels, train_pos, val_fraction, seed + k)
        folds.append(Fold(
            name=f"speaker-{k}", protocol="speaker", seed=seed + k,
            train=np.sort(train_pos), val=np.sort(val_pos), test=np.sort(test_pos),
            test_actors=tuple(sorted(set(actors[test_pos]))), val_actors=tuple(val_actors)))
    return folds


def random_folds(manifest: pd.DataFrame, seeds: Sequence[int] = REPORT_SEEDS, *,
                 val_fraction: float = 0.1, test_fraction: float = 0.1) -> list[Fold]:
    """The report's protocol: a stratified random split per seed, by take (manifest row).

    ``test_fraction`` and ``val_fraction`` are fractions of the whole manifest
    (0.1/0.1 gives the report's 80/10/10). Speakers are shared between the sides, so
    these numbers are optimistic; they are kept to reproduce the report.
    """
    if not 0 < test_fraction < 1 or not 0 <= val_fraction < 1 or test_fraction + val_fraction >= 1:
        raise ValueError("need 0 < test_fraction, 0 <= val_fraction and their sum < 1")
    if manifest["clip_id"].duplicated().any():
        raise ValueError("manifest has duplicate clip ids: a take would straddle the split")
    labels = manifest["emotion"].astype(str).to_numpy()
    actors = manifest["actor"].astype(str).to_numpy()
    everything = np.arange(len(manifest))
    folds: list[Fold] = []
    for seed in seeds:
        rest, test = _stratified_holdout(labels, everything, test_fraction, int(seed))
        if val_fraction > 0:
            train, val = _stratified_holdout(labels, rest, val_fraction / (1 - test_fraction), int(seed))
        else:
            train, val = rest, np.array([], dtype=int)
        folds.append(Fold(name=f"random-{seed}", protocol="random", seed=int(seed),
                          train=train, val=val, test=test,
                          test_actors=tuple(sorted(set(actors[test])))))
    return folds


def corpus_folds(manifest: pd.DataFrame, *, val_fraction: float = 0.1, seed: int = 42) -> list[Fold]:
    """Leave-one-corpus-out: one fold per corpus of the manifest (in first-seen order),
    named ``corpus-<name>``, testing on every clip of that corpus after training on every
    other corpus. Validation actors (``val_fraction`` of the training actors, at least
    one) come from the training corpora. Needs at least two corpora (ValueError)."""
    corpora = list(dict.fromkeys(manifest["corpus"].astype(str)))
    if len(corpora) < 2:
        raise ValueError(f"leave-one-corpus-out needs at least two corpora; the spec has {', '.join(corpora)}")
    column = manifest["corpus"].astype(str).to_numpy()
    actors = manifest["actor"].astype(str).to_numpy()
    genders = dict(zip(actors, manifest["gender"].astype(str)))
    folds = []
    for k, name in enumerate(corpora):
        test = np.flatnonzero(column == name)
        train = np.flatnonzero(column != name)
        val = np.array([], dtype=int)
        val_actors: list[str] = []
        train_actors = sorted(set(actors[train]))
        if val_fraction > 0 and len(train_actors) >= 2:
            val_actors = _pick_val_actors(train_actors, genders, val_fraction, np.random.default_rng(seed + k))
            is_val = np.isin(actors[train], val_actors)
            val, train = train[is_val], train[~is_val]
        folds.append(Fold(name=f"corpus-{name}", protocol="corpus", seed=seed + k, train=np.sort(train),
                          val=np.sort(val), test=np.sort(test), test_actors=tuple(sorted(set(actors[test]))),
                          val_actors=tuple(val_actors)))
    return folds


def make_folds(manifest: pd.DataFrame, kind: str, *, n_folds: int = 6,
               seeds: Sequence[int] = REPORT_SEEDS, val_fraction: float = 0.1,
               test_fraction: float = 0.1, seed: int = 42, speaker_corpus: str | None = None) -> list[Fold]:
    """Folds of protocol ``kind`` (``speaker``, ``corpus`` or ``random``) over
    ``manifest``'s rows; ``speaker_corpus`` restricts speaker folds' test sides to one
    corpus (:func:`speaker_folds`)."""
    if len(manifest) == 0:
        raise ValueError("no clips to split (is the corpus empty or the label set wrong?)")
    if kind == "speaker":
        return speaker_folds(manifest, n_folds, val_fraction=val_fraction, seed=seed, test_corpus=speaker_corpus)
    if kind == "corpus":
        return corpus_folds(manifest, val_fraction=val_fraction, seed=seed)
    if kind == "all":
        rows = np.arange(len(manifest))
        return [Fold(name="all-0", protocol="all", seed=seed, train=rows, val=np.array([], dtype=int), test=rows,
                     test_actors=tuple(sorted(set(manifest["actor"].astype(str)))))]
    if kind == "random":
        return random_folds(manifest, seeds, val_fraction=val_fraction, test_fraction=test_fraction)
    raise ValueError(f"unknown protocol {kind!r}; choose one of: {', '.join(PROTOCOLS)}")


def neutral_takes(manifest: pd.DataFrame, n_per_speaker: int = 2, seed: int = 0) -> np.ndarray:
    """Boolean ``(n,)`` mask of the calm takes each speaker gives to "calibrate to my
    voice": ``n_per_speaker`` of the speaker's ``neutral`` takes, drawn with ``seed``.
    These takes are held apart: never on a test side of a ``neutral`` calibration run."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(manifest), bool)
    neutral = manifest["emotion"].astype(str).to_numpy() == "neutral"
    actors = manifest["actor"].astype(str).to_numpy()
    for actor in sorted(set(actors[neutral])):
        rows = np.flatnonzero(neutral & (actors == actor))
        mask[rng.choice(rows, size=min(n_per_speaker, len(rows)), replace=False)] = True
    return mask
