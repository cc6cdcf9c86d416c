"""Voices that travel (issue 18): which features, layer, normalisation and training
recipe answer people and corpora the model never met.

Development data: RAVDESS speech actors 01-16 (832 clips without calm) and the TESS half
(1,400 clips), label set ``seven``. Protocols, both reported for every row:

- ``speaker``: ``GroupKFold(4)`` by actor over RAVDESS 01-16, trained on RAVDESS only
  (BASELINES.md's folds: reference 57.6% accuracy);
- ``corpus``: leave-one-corpus-out, RAVDESS -> TESS and TESS -> RAVDESS (reference
  28.8% / 30.5% UAR).

Calibration (per-speaker normalisation, :mod:`pipeline.core.calibration`): ``none``
(the population scaler), ``session`` (each speaker's features standardised by that
speaker's *other* clips: no label, never the tested clip itself), ``neutral`` (shifted by
the mean of two of the speaker's neutral takes, which are then left out of the test
side). Every feature is read through the project's cache (:mod:`pipeline.research.features`),
so the numbers come from the exact features serving computes.

    python -m bench.voice_study --shared ../shared/data --part layers
    python -m bench.voice_study --shared ../shared/data --part features
    python -m bench.voice_study --shared ../shared/data --part combos
    python -m bench.voice_study --shared ../shared/data --part heads
    python -m bench.voice_study --shared ../shared/data --part conditions

Writes ``bench/results/voice_study_<part>.json``.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from pipeline.core.preprocessing import Preprocessing

log = logging.getLogger("voice_study")
CLASSES = Preprocessing(labels="seven").classes
#: The speech-encoder recipe's preprocessing (16 kHz, level-normalised speech, Silero gate).
PARAMS = Preprocessing(sample_rate=16000, labels="seven", level_db=-26.0, voice_activity="vad")
#: BASELINES.md's recipe: ComParE of the trimmed 16 kHz clip, level as recorded.
REFERENCE_PARAMS = Preprocessing(sample_rate=16000, labels="seven")
REFERENCE = {"speaker_accuracy": 0.576, "ravdess_to_tess_uar": 0.288, "tess_to_ravdess_uar": 0.305}


# --------------------------------------------------------------------------- data
def development_manifest(shared: Path) -> pd.DataFrame:
    """RAVDESS 01-16 (speech, seven emotions) then TESS, one frame, 0..n-1."""
    from pipeline.core.corpora import scan
    from pipeline.research.splits import filter_to_labels

    parts = []
    for corpus, folder in (("ravdess", "ravdess-speech"), ("tess", "tess")):
        frame, _ = scan(corpus, shared / folder)
        parts.append(filter_to_labels(frame[frame["channel"] == "speech"], CLASSES))
    return pd.concat(parts, ignore_index=True)


def features(frame: pd.DataFrame, kind: str, params: Preprocessing = PARAMS, augment: str | None = None,
             cache: Path = Path("cache")) -> np.ndarray:
    """Cached features of every row (all rows must work: the study never drops clips)."""
    from pipeline.research import features as feats

    return np.asarray(feats.extract(frame, kind, params, cache, augment=augment, n_jobs=2, progress=True))


# --------------------------------------------------------------------------- protocols
def folds(frame: pd.DataFrame, protocol: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, train rows, test rows): ``speaker`` GroupKFold(4) over RAVDESS (trained on
    RAVDESS only), ``corpus`` leave-one-corpus-out."""
    from sklearn.model_selection import GroupKFold

    corpus = frame["corpus"].to_numpy()
    if protocol == "speaker":
        rav = np.flatnonzero(corpus == "ravdess")
        groups = frame["actor"].to_numpy()[rav]
        return [(f"speaker-{k}", rav[tr], rav[te])
                for k, (tr, te) in enumerate(GroupKFold(4).split(rav, groups=groups))]
    return [(f"corpus-{c}", np.flatnonzero(corpus != c), np.flatnonzero(corpus == c)) for c in ("tess", "ravdess")]


def normalise(X: np.ndarray, frame: pd.DataFrame, mode: str, calib_mask: np.ndarray) -> np.ndarray:
    """Per-speaker normalisation of every row (:func:`pipeline.core.calibration.normalise_speakers`)."""
    from pipeline.core.calibration import normalise_speakers

    return normalise_speakers(X, frame["actor"].to_numpy(), mode, calib_mask)


def scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    return {"accuracy": float(accuracy_score(y, pred)), "uar": float(balanced_accuracy_score(y, pred))}


def run(frame: pd.DataFrame, X: np.ndarray, make: Callable[[], Any], *, mode: str = "none",
        calib_mask: np.ndarray | None = None, weights: Callable[[np.ndarray], np.ndarray] | None = None,
        extra_train: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Both protocols for one recipe: per fold accuracy and UAR, plus the summary the
    goals name (speaker accuracy, each direction's UAR)."""
    y = frame["emotion"].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()
    speakers = (frame["corpus"].astype(str) + ":" + frame["actor"].astype(str)).to_numpy()
    calib_mask = np.zeros(len(frame), bool) if calib_mask is None else calib_mask
    Xn = normalise(X, frame, mode, calib_mask)
    out: dict[str, Any] = {"folds": {}}
    for protocol in ("speaker", "corpus"):
        for name, train, test in folds(frame, protocol):
            test = test[~calib_mask[test]] if mode == "neutral" else test
            Xt, yt = Xn[train], y[train]
            if extra_train:
                for X_aug in extra_train.values():
                    Xt = np.concatenate([Xt, normalise(X_aug, frame, mode, calib_mask)[train]])
                    yt = np.concatenate([yt, y[train]])
            model = make()
            kwargs = {}
            if weights is not None:
                w = weights(train)
                kwargs["clf__sample_weight"] = np.tile(w, len(Xt) // len(train))
            if "speakers" in dict(getattr(model, "steps", [])):  # the training speakers' subspace removed
                kwargs["speakers__groups"] = np.tile(speakers[train], len(Xt) // len(train))
            model.fit(Xt, yt, **kwargs)
            out["folds"][name] = scores(y[test], model.predict(Xn[test]))
    f = out["folds"]
    out["speaker_accuracy"] = float(np.mean([f[k]["accuracy"] for k in f if k.startswith("speaker")]))
    out["speaker_accuracy_std"] = float(np.std([f[k]["accuracy"] for k in f if k.startswith("speaker")]))
    out["ravdess_to_tess_uar"] = f["corpus-tess"]["uar"]
    out["tess_to_ravdess_uar"] = f["corpus-ravdess"]["uar"]
    return out


def logreg(C: float) -> Callable[[], Any]:
    import models

    return lambda: models.build("logreg", (1,), len(CLASSES), C=C, class_weight="balanced", max_iter=3000)


def corpus_balance(frame: pd.DataFrame) -> Callable[[np.ndarray], np.ndarray]:
    """Sample weights giving each corpus of the training side the same total weight."""
    corpus = frame["corpus"].to_numpy()

    def weights(train: np.ndarray) -> np.ndarray:
        c = corpus[train]
        counts = {k: (c == k).sum() for k in np.unique(c)}
        return np.array([len(c) / (len(counts) * counts[k]) for k in c])

    return weights


def line(label: str, r: dict[str, Any]) -> str:
    return (f"{label:<48} speaker {100 * r['speaker_accuracy']:5.1f}  R->T {100 * r['ravdess_to_tess_uar']:5.1f}"
            f"  T->R {100 * r['tess_to_ravdess_uar']:5.1f}")


# --------------------------------------------------------------------------- parts
def part_layers(frame: pd.DataFrame, encoder: str) -> dict[str, Any]:
    """Every block of one encoder (Whisper base or tiny.en), mean+std pooling, C in a
    small grid, calibration none and session."""
    out: dict[str, Any] = {}
    for kind in (f"{encoder}_layers",):
        L = features(frame, kind)
        for layer in range(L.shape[1]):
            for C in (0.01, 0.1):
                for mode in ("none", "session"):
                    key = f"{kind[:-7]}/block{layer}/C{C}/{mode}"
                    out[key] = run(frame, L[:, layer], logreg(C), mode=mode)
                    print(line(key, out[key]), flush=True)
    return out


def part_features(frame: pd.DataFrame, layer: int) -> dict[str, Any]:
    """ComParE, eGeMAPS, Whisper base block ``layer`` and their combinations; the
    three calibrations; corpus-balanced training."""
    base = features(frame, "whisper_base_layers")[:, layer]
    ege = features(frame, "egemaps")
    com = features(frame, "compare", params=REFERENCE_PARAMS)  # the reference recipe: level as recorded
    sets = {"compare": (com, 1e-3), "egemaps": (ege, 0.1), f"whisper_base.block{layer}": (base, 0.01),
            f"whisper_base.block{layer}+egemaps": (np.concatenate([base, ege], axis=1), 0.01),
            f"whisper_base.block{layer}+compare": (np.concatenate([base, com], axis=1), 1e-3)}
    from pipeline.research.splits import neutral_takes

    calib = neutral_takes(frame)
    out: dict[str, Any] = {}
    for name, (X, C) in sets.items():
        for mode in ("none", "session", "neutral"):
            key = f"{name}/C{C}/{mode}"
            out[key] = run(frame, X, logreg(C), mode=mode, calib_mask=calib)
            print(line(key, out[key]), flush=True)
        key = f"{name}/C{C}/none/corpus-balanced"
        out[key] = run(frame, X, logreg(C), weights=corpus_balance(frame))
        print(line(key, out[key]), flush=True)
    return out


def part_combos(frame: pd.DataFrame) -> dict[str, Any]:
    """Blocks of Whisper base side by side (concatenated, or averaged block by block),
    with eGeMAPS, calibration none: does a lower block beside block 3 carry what travels
    (block 0 alone: RAVDESS -> TESS 44.1% but speaker folds 57.2%)?"""
    L = features(frame, "whisper_base_layers")
    ege = features(frame, "egemaps")
    sets = {
        "block3+egemaps": [L[:, 3], ege],
        "block0+egemaps": [L[:, 0], ege],
        "block2+egemaps": [L[:, 2], ege],
        "block0+block3+egemaps": [L[:, 0], L[:, 3], ege],
        "block1+block3+egemaps": [L[:, 1], L[:, 3], ege],
        "block0+block2+egemaps": [L[:, 0], L[:, 2], ege],
        "block0..3+egemaps": [L[:, 0], L[:, 1], L[:, 2], L[:, 3], ege],
        "block2+block3+egemaps": [L[:, 2], L[:, 3], ege],
        "mean(block0..3)+egemaps": [L[:, 0:4].mean(axis=1), ege],
        "mean(block1..3)+egemaps": [L[:, 1:4].mean(axis=1), ege],
        "mean(block0..2)+egemaps": [L[:, 0:3].mean(axis=1), ege],
        "block0+block3": [L[:, 0], L[:, 3]],
    }
    #: the rows also measured normalised per recording session (the long-recording path)
    with_session = ("block3+egemaps", "block2+egemaps", "mean(block0..3)+egemaps", "mean(block1..3)+egemaps")
    out: dict[str, Any] = {}
    for name, parts in sets.items():
        X = np.concatenate(parts, axis=1)
        for C in (0.003, 0.01):
            for mode in ("none", "session") if name in with_session else ("none",):
                key = f"{name}/C{C}/{mode}"
                out[key] = run(frame, X, logreg(C), mode=mode)
                print(line(key, out[key]), flush=True)
    return out


def speakers_removed(C: float, n_components: int | None = None, rescale: bool = True) -> Callable[[], Any]:
    """Standardise, project out the training speakers' subspace
    (:class:`models.nuisance.SpeakerSubspaceRemoval`, its ``n_components`` strongest
    directions; None: all), standardise again unless ``rescale`` is False, then
    logistic regression (``models.build("logreg", remove_speakers=True)`` with rescale)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from models.nuisance import SpeakerSubspaceRemoval

    def make() -> Any:
        again = [("rescale", StandardScaler())] if rescale else []
        return Pipeline([("scale", StandardScaler()), ("speakers", SpeakerSubspaceRemoval(n_components)), *again,
                         ("clf", LogisticRegression(C=C, class_weight="balanced", max_iter=3000, random_state=0))])

    return make


def shrinkage_lda() -> Callable[[], Any]:
    """Standardise + linear discriminant analysis with Ledoit-Wolf shrinkage."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return lambda: Pipeline([("scale", StandardScaler()),
                             ("clf", LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"))])


def part_heads(frame: pd.DataFrame) -> dict[str, Any]:
    """On the served input (Whisper base blocks 1-3 averaged + eGeMAPS), calibration
    none (one clip of a stranger): other pooling parts, per-clip scaling of the encoder
    part, other linear classifiers, and the training speakers' subspace projected out."""
    L = features(frame, "whisper_base_layers")
    ege = features(frame, "egemaps")
    enc = L[:, 1:4].mean(axis=1)
    width = enc.shape[1] // 2
    unit = enc / np.linalg.norm(enc, axis=1, keepdims=True)
    sets = {
        "served": (np.concatenate([enc, ege], axis=1), 0.003),
        "means only (no std)": (np.concatenate([enc[:, :width], ege], axis=1), 0.003),
        "encoder per clip to unit length": (np.concatenate([unit, ege], axis=1), 0.003),
        "encoder only": (enc, 0.003),
    }
    out: dict[str, Any] = {}
    for name, (X, C) in sets.items():
        key = f"{name}/logreg C{C}"
        out[key] = run(frame, X, logreg(C))
        print(line(key, out[key]), flush=True)
    from pipeline.research.splits import neutral_takes

    calib = neutral_takes(frame)
    X = sets["served"][0]
    for mode in ("session", "neutral"):
        key = f"served/logreg C0.003/{mode}"
        out[key] = run(frame, X, logreg(0.003), mode=mode, calib_mask=calib)
        print(line(key, out[key]), flush=True)
    for C in (0.001, 0.01):
        key = f"served/logreg C{C}"
        out[key] = run(frame, X, logreg(C))
        print(line(key, out[key]), flush=True)
    key = "served/shrinkage LDA"
    out[key] = run(frame, X, shrinkage_lda())
    print(line(key, out[key]), flush=True)
    for C in (0.003, 0.001):
        key = f"served/speaker subspace (all) removed, not re-standardised/logreg C{C}"
        out[key] = run(frame, X, speakers_removed(C, rescale=False))
        print(line(key, out[key]), flush=True)
        for k in (1, 2, 4, 8, 12, None):
            key = f"served/speaker subspace ({'all' if k is None else k} directions) removed/logreg C{C}"
            out[key] = run(frame, X, speakers_removed(C, k))
            print(line(key, out[key]), flush=True)
        for mode in ("session", "neutral"):
            key = f"served/speaker subspace (all) removed/logreg C{C}/{mode}"
            out[key] = run(frame, X, speakers_removed(C), mode=mode, calib_mask=calib)
            print(line(key, out[key]), flush=True)
    return out


def part_conditions(frame: pd.DataFrame, kind: str, C: float, augments: list[str]) -> dict[str, Any]:
    """Training copies under recording conditions, one at a time then together; each
    measured with calibration none and session, on both protocols."""
    X = features(frame, kind)
    out: dict[str, Any] = {}
    copies = {name: features(frame, kind, augment=name) for name in augments}
    for mode in ("none", "session"):
        key = f"{kind}/{mode}/original only"
        out[key] = run(frame, X, logreg(C), mode=mode)
        print(line(key, out[key]), flush=True)
        for name in augments:
            key = f"{kind}/{mode}/+{name}"
            out[key] = run(frame, X, logreg(C), mode=mode, extra_train={name: copies[name]})
            print(line(key, out[key]), flush=True)
        key = f"{kind}/{mode}/+all"
        out[key] = run(frame, X, logreg(C), mode=mode, extra_train=copies)
        print(line(key, out[key]), flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--part", choices=("layers", "features", "combos", "heads", "conditions"), default="layers")
    parser.add_argument("--layer", type=int, default=3)
    parser.add_argument("--kind", default="whisper_base")
    parser.add_argument("--C", type=float, default=0.01)
    parser.add_argument("--augment", nargs="*", default=[])
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    frame = development_manifest(args.shared)
    if args.part == "layers":
        result = part_layers(frame, args.kind)
    elif args.part == "features":
        result = part_features(frame, args.layer)
    elif args.part == "combos":
        result = part_combos(frame)
    elif args.part == "heads":
        result = part_heads(frame)
    else:
        result = part_conditions(frame, args.kind, args.C, args.augment)
    report = {"protocols": {"speaker": "GroupKFold(4) by actor over RAVDESS 01-16 (832 clips), trained on RAVDESS",
                            "corpus": "leave-one-corpus-out: RAVDESS 01-16 <-> TESS half (1,400 clips)"},
              "labels": "seven", "classifier": "standardise + multinomial logistic regression, balanced",
              "reference": REFERENCE, "seconds": round(time.perf_counter() - started, 1), "results": result}
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = f"_{args.kind}" if args.part == "layers" else ("_" + "_".join(args.augment) if args.augment else "")
    target = args.out / f"voice_study_{args.part}{suffix}.json"
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(target)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
