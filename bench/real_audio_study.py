"""Choose the real speech model: candidates under the speaker protocol on RAVDESS 01-16.

    python bench/real_audio_study.py [--root ../shared/data/ravdess-speech] [--stage all]

Protocol (as ``../shared/data/BASELINES.md``): label set ``seven`` (calm dropped, 832
clips), 4-fold group k-fold by actor (scikit-learn ``GroupKFold(4)``), mean ± std over
folds. Every candidate is scored on the same outer folds; the *selected* number is
nested: inside each outer training side, an inner ``GroupKFold(3)`` over its actors
picks the candidate, which is then scored on the outer test actors, so the reported
figure is not the one the choice was made on.

Also measured here: calm dropped vs folded into neutral (scored on the seven-emotion
clips both ways), trimming vs Silero VAD cut before the functionals. Writes
``bench/results/real_audio_study.json``.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, write_result  # noqa: E402

SR = 16000


def _manifest(root: str):
    from pipeline.core.corpora import scan

    frame, _ = scan("ravdess", root)
    return frame.loc[frame["channel"] == "speech"].reset_index(drop=True)


def _features(frame, block: str, *, cache: str, sample_rate: int = SR, augment: str | None = None) -> np.ndarray:
    """A feature block: a feature kind, ``<kind>_vad`` for openSMILE functionals over the
    VAD speech segments instead of the trimmed clip."""
    from pipeline.research import features
    from pipeline.core.preprocessing import Preprocessing

    kind = block[:-4] if block.endswith("_vad") else block
    params = Preprocessing(sample_rate=sample_rate, labels="seven",
                           speech_span="vad" if block.endswith("_vad") else "trim")
    return np.asarray(features.extract(frame, kind, params, cache, n_jobs=2, progress=True, augment=augment),
                      dtype=np.float64)


def _svm(C: float, kernel: str = "linear", gamma: Any = "scale") -> Callable[[], Any]:
    def make():
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC

        return make_pipeline(StandardScaler(), SVC(kernel=kernel, C=C, gamma=gamma, class_weight="balanced",
                                                   probability=False, random_state=0))
    return make


def _logreg(C: float) -> Callable[[], Any]:
    def make():
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000, class_weight="balanced"))
    return make


@dataclasses.dataclass
class Candidate:
    name: str
    blocks: tuple[str, ...]  # feature blocks concatenated
    make: Callable[[], Any]
    augment: tuple[str, ...] = ()  # augmented copies of the training clips (feature block "<block>+<aug>")


def _scores(y: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import balanced_accuracy_score

    return float((pred == y).mean()), float(balanced_accuracy_score(y, pred))


def _fit_predict(c: Candidate, X: dict[str, np.ndarray], y, train, test) -> np.ndarray:
    Xtr = np.hstack([X[b][train] for b in c.blocks])
    Xte = np.hstack([X[b][test] for b in c.blocks])
    ytr = y[train]
    for aug in c.augment:
        Xtr = np.vstack([Xtr, np.hstack([X[f"{b}+{aug}"][train] for b in c.blocks])])
        ytr = np.concatenate([ytr, y[train]])
    model = c.make().fit(Xtr, ytr)
    return model.predict(Xte)


def evaluate_all(cands: list[Candidate], X: dict[str, np.ndarray], y: np.ndarray, groups: np.ndarray,
                 n_outer: int = 4, n_inner: int = 3) -> dict[str, Any]:
    from sklearn.model_selection import GroupKFold

    outer = list(GroupKFold(n_outer).split(np.zeros(len(y)), y, groups))
    table: dict[str, dict[str, Any]] = {}
    for c in cands:
        accs, uars = [], []
        for train, test in outer:
            acc, uar = _scores(y[test], _fit_predict(c, X, y, train, test))
            accs.append(acc)
            uars.append(uar)
        table[c.name] = {"accuracy": accs, "uar": uars, "accuracy_mean": float(np.mean(accs)),
                         "accuracy_std": float(np.std(accs, ddof=1)), "uar_mean": float(np.mean(uars)),
                         "uar_std": float(np.std(uars, ddof=1))}
        print(f"{c.name:40s} acc {100 * np.mean(accs):5.1f} ± {100 * np.std(accs, ddof=1):4.1f}  "
              f"UAR {100 * np.mean(uars):5.1f}", flush=True)
    nested_acc, nested_uar, chosen = [], [], []
    for train, test in outer:
        inner = list(GroupKFold(n_inner).split(np.zeros(len(train)), y[train], groups[train]))
        inner_uar = {}
        for c in cands:
            vals = [_scores(y[train][te], _fit_predict(c, X, y, train[tr], train[te]))[1] for tr, te in inner]
            inner_uar[c.name] = float(np.mean(vals))
        best = max(cands, key=lambda c: inner_uar[c.name])
        chosen.append(best.name)
        acc, uar = _scores(y[test], _fit_predict(best, X, y, train, test))
        nested_acc.append(acc)
        nested_uar.append(uar)
    folds = [{"test_actors": sorted(set(groups[test].tolist()))} for _, test in outer]
    return {"candidates": table, "folds": folds,
            "nested": {"chosen_per_fold": chosen, "accuracy": nested_acc, "uar": nested_uar,
                       "accuracy_mean": float(np.mean(nested_acc)), "accuracy_std": float(np.std(nested_acc, ddof=1)),
                       "uar_mean": float(np.mean(nested_uar)), "uar_std": float(np.std(nested_uar, ddof=1))}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.environ.get("AVE_SHARED_DATA", "../shared/data") + "/ravdess-speech")
    parser.add_argument("--cache", default="cache")
    parser.add_argument("--blocks", default="compare,egemaps,mfcc_stats")
    parser.add_argument("--augment", default="", help="augmentations of the compare block, e.g. noise,pitch_down")
    parser.add_argument("--name", default="real_audio_study", help="results file name")
    parser.add_argument("--no-calm", action="store_true", help="skip the calm measurement")
    args = parser.parse_args(argv)

    from pipeline.core.labels import label_set

    started = time.perf_counter()
    frame = _manifest(args.root)
    blocks = [b for b in args.blocks.split(",") if b]
    X_all = {b: _features(frame, b, cache=args.cache) for b in blocks}
    augs = [a for a in args.augment.split(",") if a]
    for aug in augs:
        X_all[f"compare+{aug}"] = _features(frame, "compare", cache=args.cache, augment=aug)
    classes = label_set("seven")
    groups_all = frame["actor"].astype(str).to_numpy()

    # --- calm: dropped vs folded into neutral, scored on the seven-emotion clips
    keep = frame["emotion"].isin(classes).to_numpy()
    y7 = frame.loc[keep, "emotion"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    X7 = {b: X_all[b][keep] for b in X_all}
    g7 = groups_all[keep]

    cands = [Candidate("compare_svm_linear_C1e-3 (reference)", ("compare",), _svm(1e-3))]
    for C in (1e-4, 3e-4, 3e-3):
        cands.append(Candidate(f"compare_svm_linear_C{C:g}", ("compare",), _svm(C)))
    for C in (1e-3, 1e-2):
        cands.append(Candidate(f"compare_logreg_C{C:g}", ("compare",), _logreg(C)))
    if "egemaps" in blocks:
        cands.append(Candidate("egemaps_svm_rbf_C10", ("egemaps",), _svm(10.0, "rbf")))
        cands.append(Candidate("compare+egemaps_svm_linear_C1e-3", ("compare", "egemaps"), _svm(1e-3)))
    if "compare_vad" in blocks:
        cands.append(Candidate("compare(VAD speech)_svm_linear_C1e-3", ("compare_vad",), _svm(1e-3)))
    if augs:
        cands.append(Candidate(f"compare_logreg_C0.001+aug({','.join(augs)})", ("compare",), _logreg(1e-3), tuple(augs)))
        cands.append(Candidate(f"compare_svm_linear_C1e-3+aug({','.join(augs)})", ("compare",), _svm(1e-3), tuple(augs)))
        for aug in augs:
            cands.append(Candidate(f"compare_logreg_C0.001+aug({aug})", ("compare",), _logreg(1e-3), (aug,)))
    if "mfcc_stats" in blocks:
        cands.append(Candidate("mfcc_stats_svm_rbf_C10", ("mfcc_stats",), _svm(10.0, "rbf")))
        cands.append(Candidate("compare+mfcc_stats_svm_linear_C1e-3", ("compare", "mfcc_stats"), _svm(1e-3)))
    out: dict[str, Any] = {"protocol": "seven (calm dropped), GroupKFold(4) by actor, RAVDESS speech actors 01-16",
                           "n_clips": int(keep.sum()), "machine": machine()}
    out["calm_dropped"] = evaluate_all(cands, X7, y7, g7)
    if args.no_calm:
        out["seconds"] = round(time.perf_counter() - started, 1)
        write_result(args.name, out)
        return 0

    # calm folded into neutral for training: train on all 960, score on the seven-emotion test clips
    from sklearn.model_selection import GroupKFold

    y_fold = frame["emotion"].replace({"calm": "neutral"}).map({c: i for i, c in enumerate(classes)}).to_numpy()
    ref = cands[0]
    accs, uars = [], []
    for train, test in GroupKFold(4).split(np.zeros(len(y_fold)), y_fold, groups_all):
        test = test[keep[test]]
        pred = _fit_predict(ref, X_all, y_fold, train, test)
        acc, uar = _scores(y_fold[test], pred)
        accs.append(acc)
        uars.append(uar)
    out["calm_as_neutral_reference"] = {"accuracy_mean": float(np.mean(accs)), "accuracy_std": float(np.std(accs, ddof=1)),
                                        "uar_mean": float(np.mean(uars)), "note": "trained with calm as neutral, "
                                        "scored on the 832 seven-emotion clips of the same outer folds"}
    print("calm folded into neutral (reference recipe):", out["calm_as_neutral_reference"])
    out["seconds"] = round(time.perf_counter() - started, 1)
    write_result(args.name, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
