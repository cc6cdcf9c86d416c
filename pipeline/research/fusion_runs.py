"""Fusion on the research side: out-of-fold branch probabilities (cross-fitting) and
the fusion experiment runner, beside :mod:`pipeline.research.experiments`.

A branch model's probabilities for its own training clips are over-confident, and a
fusion model fitted on them learns to trust that branch blindly: :func:`cross_fit`
produces *out-of-fold* probabilities by group k-fold (actors under the speaker protocol,
takes under the random one). :func:`run_fusion_variant` is the ``fusion`` branch's
runner (:data:`pipeline.research.experiments.BRANCH_RUNNERS`): branch folds, their cross-fitted
probabilities, every fuser of :mod:`pipeline.serve.fusion` trained on those and scored on the
branches' test probabilities, written to the results store. The serving estimators
themselves live in :mod:`pipeline.serve.fusion`, which never imports this module.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from pipeline.serve.fusion import ALL_FUSERS, METHODS, RULES, LateFusion, fuser_name

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- cross-fitting
#: ``fit_predict(train_idx, test_idx) -> (len(test_idx), C)`` probabilities from a model
#: trained only on ``train_idx`` (indices into the clips being cross-fitted).
FitPredict = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class CrossFit:
    """Out-of-fold probabilities of one branch for a set of training clips.

    ``proba`` (n, C): row i comes from the model of fold ``fold[i]``, which was trained
    on ``train_sets[fold[i]]`` (indices) and never on clip i or its group.
    """

    proba: np.ndarray
    fold: np.ndarray
    train_sets: list[np.ndarray] = field(default_factory=list)


def inner_splits(y: np.ndarray, groups: Sequence, n_splits: int = 3,
                 seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Group k-fold splits (stratified where possible) over ``groups``.

    Groups are actors under the speaker protocol and takes under the random one, so a
    group never sits on both sides. ``n_splits`` is capped by the number of groups.
    """
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    y = np.asarray(y)
    groups = np.asarray([str(g) for g in groups])
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError("cross-fitting needs clips from at least two groups (actors or takes)")
    k = max(2, min(int(n_splits), n_groups))
    try:
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        splits = list(splitter.split(np.zeros(len(y)), y, groups))
    except ValueError:
        splits = list(GroupKFold(n_splits=k).split(np.zeros(len(y)), y, groups))
    return [(np.asarray(tr), np.asarray(te)) for tr, te in splits if len(te) and len(tr)]


def cross_fit(fit_predict: FitPredict, y: np.ndarray, groups: Sequence, n_splits: int = 3,
              seed: int = 0, n_classes: int | None = None) -> CrossFit:
    """Out-of-fold branch probabilities for every clip of a training set.

    Splits the clips by ``groups`` (see :func:`inner_splits`), calls ``fit_predict`` once
    per split and stitches the held-out predictions together: each clip's row comes from
    a model that did not see that clip, nor any clip of its group.
    """
    y = np.asarray(y)
    splits = inner_splits(y, groups, n_splits=n_splits, seed=seed)
    proba: np.ndarray | None = None
    fold = np.full(len(y), -1, dtype=int)
    train_sets: list[np.ndarray] = []
    for i, (train, test) in enumerate(splits):
        p = np.asarray(fit_predict(train, test), dtype=np.float64)
        if p.shape[0] != len(test):
            raise ValueError(f"fit_predict returned {p.shape[0]} rows for {len(test)} clips")
        if proba is None:
            proba = np.zeros((len(y), n_classes or p.shape[1]))
        proba[test] = p
        fold[test] = i
        train_sets.append(train)
    if proba is None or (fold < 0).any():
        raise ValueError("cross-fitting left clips without an out-of-fold prediction")
    return CrossFit(proba=proba, fold=fold, train_sets=train_sets)



def evaluate_fusers(names: Sequence[str], train: tuple[np.ndarray, np.ndarray, np.ndarray],
                    test: tuple[np.ndarray, np.ndarray], random_state: int = 0) -> dict[str, np.ndarray]:
    """Fit each named fuser on ``train = (p_audio, p_video, y)`` and return its (n, C)
    probabilities on ``test = (p_audio, p_video)``: one fold of a fusion experiment."""
    out: dict[str, np.ndarray] = {}
    for name in names:
        fuser = LateFusion(fuser_name(name), random_state=random_state).fit(*train)
        out[fuser.name] = fuser.predict_proba(*test)
    return out


# --------------------------------------------------------------------------- experiment
#: Defaults of a spec's ``fusion:`` block (see configs/fusion.yaml).
FUSION_DEFAULTS: dict = {
    "audio": {"features": {"kind": "mfcc_mean"}, "model": {"name": "audio_cnn"}},
    "video": {"features": {"kind": "frames"}, "model": {"name": "lrcn"}},
    "methods": list(METHODS),
    "rules": list(RULES),
    "inner_folds": 3,
    "inner_val_fraction": 0.15,
    "reuse": True,
}
#: Name of the file, inside a branch fold folder, holding the cross-fitted (out-of-fold)
#: probabilities of that fold's training and validation clips.
OOF_FILE = "oof.csv"
TABLE_FILE = "fusion_table.csv"


def fusion_settings(spec: dict) -> dict:
    """The spec's ``fusion`` block over :data:`FUSION_DEFAULTS`, checked."""
    raw = dict(spec.get("fusion") or {})
    unknown = sorted(set(raw) - set(FUSION_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown fusion key(s) {', '.join(unknown)}; known: {', '.join(FUSION_DEFAULTS)}")
    out = {**FUSION_DEFAULTS, **raw}
    for name in out["methods"]:
        if name not in METHODS:
            raise ValueError(f"unknown fusion method {name!r}; choose from: {', '.join(METHODS)}")
    for name in out["rules"]:
        if name not in RULES:
            raise ValueError(f"unknown fusion rule {name!r}; choose from: {', '.join(RULES)}")
    if int(out["inner_folds"]) < 2:
        raise ValueError("fusion.inner_folds must be >= 2")
    return out


def branch_spec(spec: dict, branch: str) -> dict:
    """The resolved single-branch spec a fusion experiment trains for ``branch``.

    Built exactly like a variant of an ``audio``/``video`` experiment (same defaults,
    corpus, labels, protocol; the branch block's features, model, training and
    preprocessing), so its fingerprint equals that of an identical branch experiment
    and those finished folds can be reused.
    """
    from pipeline.research.experiments import resolve, variant_specs

    block = dict(fusion_settings(spec)[branch] or {})
    unknown = sorted(set(block) - {"features", "model", "training", "preprocessing"})
    if unknown:
        raise ValueError(f"unknown key(s) in fusion.{branch}: {', '.join(unknown)}")
    raw = {"name": f"{spec['name']}-{branch}", "corpus": spec["corpus"], "labels": spec["labels"],
           "protocol": spec["protocol"], "branch": branch,
           "preprocessing": {**(spec.get("preprocessing") or {}), **(block.get("preprocessing") or {})},
           "features": block.get("features") or {}, "model": block.get("model") or {},
           "training": {**(spec.get("training") or {}), **(block.get("training") or {})}}
    out = variant_specs(resolve(raw))[0]
    out["variant"] = {"name": branch, "group": "branch", "description": f"the {branch} branch alone"}
    return out


def _group_keys(manifest, protocol: str) -> np.ndarray:
    """Inner cross-fitting groups: actors (speaker protocol) or takes (random)."""
    column = "actor" if protocol == "speaker" else "clip_id"
    return manifest[column].astype(str).to_numpy()


def _holdout(positions: np.ndarray, groups: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``positions`` into (fit, val) by whole groups, ~``fraction`` of groups to val."""
    unique = np.unique(groups[positions])
    if len(unique) < 2 or fraction <= 0:
        return positions, positions[:0]
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(fraction * len(unique))))
    n_val = min(n_val, len(unique) - 1)
    val_groups = rng.choice(unique, size=n_val, replace=False)
    is_val = np.isin(groups[positions], val_groups)
    return positions[~is_val], positions[is_val]


def _cross_fit_branch(bspec: dict, X: np.ndarray, y: np.ndarray, groups: np.ndarray,
                      positions: np.ndarray, augmented: dict, settings: dict, seed: int,
                      n_classes: int, speakers: np.ndarray) -> np.ndarray:
    """Out-of-fold probabilities (len(positions), C) of one branch for an outer fold's
    training + validation clips: inner group k-fold, each inner model trained (with the
    branch's augmentation and an inner validation slice for early stopping) only on
    the other inner folds. ``speakers``: the speaker of every clip (for a model that
    removes the training speakers' subspace)."""
    from pipeline.research.training import fit_predict

    def fit_predict_inner(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        fit_pos, val_pos = _holdout(positions[train], groups, float(settings["inner_val_fraction"]),
                                    seed + len(train))
        X_fit, y_fit, g_fit = [X[fit_pos]], [y[fit_pos]], [speakers[fit_pos]]
        for X_aug, ok in augmented.values():
            rows = fit_pos[ok[fit_pos]]
            X_fit.append(X_aug[rows])
            y_fit.append(y[rows])
            g_fit.append(speakers[rows])
        inner_spec = {**bspec, "training": {**bspec["training"], "seed": seed}}
        probs, _, _ = fit_predict(inner_spec, np.concatenate(X_fit), np.concatenate(y_fit),
                                  X[val_pos], y[val_pos], X[positions[test]], n_classes=n_classes,
                                  groups=(np.concatenate(g_fit), speakers[val_pos]))
        return probs

    return cross_fit(fit_predict_inner, y[positions], groups[positions],
                     n_splits=int(settings["inner_folds"]), seed=seed, n_classes=n_classes).proba


def _oof_frame(manifest, positions: np.ndarray, y: np.ndarray, proba: np.ndarray, classes) -> "pd.DataFrame":
    import pandas as pd

    rows = manifest.iloc[positions]
    frame = pd.DataFrame({"clip_id": rows["clip_id"].to_numpy(), "actor": rows["actor"].astype(str).to_numpy(),
                          "true": [classes[i] for i in y[positions]]})
    for i, name in enumerate(classes):
        frame[f"p_{name}"] = proba[:, i]
    return frame


def _write_csv_atomic(frame, path) -> None:
    from pipeline.research.results import atomic_write_text

    atomic_write_text(path, frame.to_csv(index=False))


def _find_reusable(runs_root, exp_dir, fingerprint_: str, fold_name: str, test_ids: set) -> "Path | None":
    """A finished fold of another experiment made with the same branch config and the
    same test clips (so the same training clips), or None."""
    import yaml
    from pathlib import Path

    for config in sorted(Path(runs_root).glob(f"*/*/{fold_name}/config.yaml")):
        fold_dir = config.parent
        if fold_dir.parent.parent.resolve() == Path(exp_dir).resolve() or not (fold_dir / "metrics.json").is_file():
            continue
        try:
            data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        if data.get("fingerprint") != fingerprint_:
            continue
        import pandas as pd

        try:
            ids = set(pd.read_csv(fold_dir / "predictions.csv", usecols=["clip_id"])["clip_id"].astype(str))
        except (OSError, ValueError):
            continue
        if ids == test_ids:
            return fold_dir
    return None


def _check_same_config(fold_dir, fingerprint_: str) -> None:
    """Refuse to fuse a finished branch fold made with another branch config."""
    import yaml

    config = fold_dir / "config.yaml"
    if not config.is_file():
        return
    try:
        old = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("fingerprint")
    except (OSError, yaml.YAMLError):
        return
    if old and old != fingerprint_:
        raise ValueError(f"{fold_dir} was made with a different branch config; use --set name=NEW_NAME, "
                         f"another --out folder, or delete it")


def _copy_fold(source, target, *, experiment: str, variant: str) -> None:
    """Copy a finished fold folder into this experiment (temp folder, then rename),
    relabelling its metrics so the summary names it after this experiment."""
    import json
    import shutil

    from pipeline.research.staging import staged_dir

    with staged_dir(target, prefix=f".tmp-{os.path.basename(str(target))}-", marker="metrics.json") as tmp:
        shutil.copytree(source, tmp, dirs_exist_ok=True)
        metrics = json.loads((tmp / "metrics.json").read_text(encoding="utf-8"))
        metrics.update({"experiment": experiment, "variant": variant, "group": "branch",
                        "reused_from": str(source)})
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
        (tmp / OOF_FILE).unlink(missing_ok=True)


def run_fusion_variant(spec: dict, exp_dir, *, cache_dir=None, progress: bool = True) -> list[str]:
    """Runner of the ``fusion`` branch (see :data:`pipeline.research.experiments.BRANCH_RUNNERS`).

    For every outer fold of the spec's protocol: (1) the audio and video branch folds,
    written as variants ``audio`` and ``video`` (reused from any experiment that ran
    the same branch config on the same folds); (2) their out-of-fold probabilities for
    the fold's training clips by inner cross-fitting (``oof.csv``); (3) every fusion
    method and rule trained on those and tested on the branches' test probabilities,
    written as variants ``fusion_<method>`` / ``rule_<rule>``. Returns fold names written.
    """
    from pathlib import Path

    import pandas as pd
    from tqdm.auto import tqdm

    from pipeline.research import results
    from pipeline.research import store
    from pipeline.research.experiments import (augmented_for, features_for, fingerprint, load_manifest_for,
                                      make_folds, preprocessing_for, run_fold, speaker_ids)
    from pipeline.research.splits import encode_labels

    exp_dir = Path(exp_dir)
    settings = fusion_settings(spec)
    classes = list(preprocessing_for(spec).classes)
    specs = {b: branch_spec(spec, b) for b in ("audio", "video")}
    fusers = [f"fusion_{m}" for m in settings["methods"]] + [f"rule_{r}" for r in settings["rules"]]

    manifest = load_manifest_for(specs["video"])  # takes that have a video, hence both modalities
    folds = make_folds(specs["video"], manifest)

    def pending() -> list:
        return [f for f in folds if not all(store.fold_done(exp_dir / v / f.name) for v in fusers)
                or not all((exp_dir / b / f.name / OOF_FILE).is_file() for b in specs)]

    if not pending():
        return []
    # Featurize both branches; keep the clips both could use, in manifest order.
    arrays, kept_ids = {}, {}
    for b, bspec in specs.items():
        X, kept, _ = features_for(bspec, manifest, cache_dir=cache_dir, progress=progress)
        arrays[b], kept_ids[b] = X, kept["clip_id"].astype(str).to_numpy()
    common = set(kept_ids["audio"]) & set(kept_ids["video"])
    n_left_out = len(manifest) - len(common)
    if n_left_out:
        log.warning("%d clip(s) left out of fusion: a branch could not featurize them", n_left_out)
        arrays = {b: arrays[b][np.isin(kept_ids[b], list(common))] for b in specs}
        manifest = manifest.loc[manifest["clip_id"].astype(str).isin(common)].reset_index(drop=True)
        folds = make_folds(specs["video"], manifest)
    data = {b: (arrays[b], augmented_for(bspec, manifest, cache_dir=cache_dir, progress=progress))
            for b, bspec in specs.items()}
    y = encode_labels(manifest["emotion"].tolist(), classes)
    groups = _group_keys(manifest, spec["protocol"]["kind"])
    speakers = speaker_ids(manifest)
    runs_root = exp_dir.parent
    written: list[str] = []
    for fold in tqdm(pending(), desc=f"fusion {spec['variant']['name']}", unit="fold", disable=not progress,
                     leave=False):
        inputs_train, inputs_test = {}, {}
        trainval = np.sort(np.concatenate([fold.train, fold.val]))
        test_ids = set(manifest.iloc[fold.test]["clip_id"].astype(str))
        for b, bspec in specs.items():
            X, augmented = data[b]
            fold_dir = exp_dir / b / fold.name
            _check_same_config(fold_dir, fingerprint(bspec))
            if not store.fold_done(fold_dir):
                source = (_find_reusable(runs_root, exp_dir, fingerprint(bspec), fold.name, test_ids)
                          if settings["reuse"] else None)
                if source is not None:
                    log.info("reusing %s for %s/%s", source, b, fold.name)
                    _copy_fold(source, fold_dir, experiment=spec["name"], variant=b)
                else:
                    run_fold({**bspec, "name": spec["name"]}, fold, X, y, manifest, fold_dir,
                             augmented=augmented, n_skipped=n_left_out, progress=progress)
            oof_path = fold_dir / OOF_FILE
            if not oof_path.is_file():
                proba = _cross_fit_branch(bspec, X, y, groups, trainval, augmented, settings,
                                          seed=int(fold.seed), n_classes=len(classes), speakers=speakers)
                _write_csv_atomic(_oof_frame(manifest, trainval, y, proba, classes), oof_path)
            inputs_train[b] = pd.read_csv(oof_path, dtype={"clip_id": str, "actor": str})
            inputs_test[b] = pd.read_csv(fold_dir / "predictions.csv", dtype={"clip_id": str, "actor": str})
        _run_fusers(spec, fold, fusers, inputs_train, inputs_test, classes, exp_dir, settings)
        written.append(fold.name)
        results.write_summary(exp_dir)
        write_table(exp_dir)
    return written


def _aligned(frames: dict, classes) -> tuple[np.ndarray, np.ndarray, np.ndarray, "pd.DataFrame"]:
    """(p_audio, p_video, y, rows) over the clips both branch frames hold, audio order."""
    cols = [f"p_{c}" for c in classes]
    audio = frames["audio"].drop_duplicates("clip_id").set_index("clip_id")
    video = frames["video"].drop_duplicates("clip_id").set_index("clip_id")
    ids = [i for i in audio.index if i in video.index]
    if len(ids) < len(audio) or len(ids) < len(video):
        log.warning("fusion: %d audio and %d video clips, %d in common", len(audio), len(video), len(ids))
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[t] for t in audio.loc[ids, "true"]], dtype=int)
    rows = audio.loc[ids, ["actor", "true"]].reset_index()
    return audio.loc[ids, cols].to_numpy(float), video.loc[ids, cols].to_numpy(float), y, rows


def _run_fusers(spec: dict, fold, fusers: list[str], train_frames: dict, test_frames: dict, classes,
                exp_dir, settings: dict) -> None:
    """Fit every fuser on the fold's out-of-fold branch probabilities, score it on the
    branches' test probabilities and write one fold folder per fuser."""
    import time

    import joblib
    import pandas as pd

    from pipeline.research import results, store
    from pipeline.research.evaluation import evaluate

    pa_tr, pv_tr, y_tr, _ = _aligned(train_frames, classes)
    pa_te, pv_te, y_te, rows = _aligned(test_frames, classes)
    for name in fusers:
        fold_dir = exp_dir / name / fold.name
        if store.fold_done(fold_dir):
            continue
        started = time.perf_counter()
        fuser = LateFusion(name, classes=classes, random_state=int(fold.seed)).fit(pa_tr, pv_tr, y_tr)
        probs = fuser.predict_proba(pa_te, pv_te)
        metrics = evaluate(y_te, probs, classes)
        metrics.update({
            "n_train": int(len(y_tr)), "fold": fold.name, "variant": name,
            "group": "rule" if name.startswith("rule_") else "learned", "protocol": fold.protocol,
            "test_actors": list(fold.test_actors), "experiment": spec["name"], "branch": "fusion",
            "model": name, "feature": "audio+video probabilities", "params": fuser.describe(),
            "seconds": round(time.perf_counter() - started, 3)})
        predictions = pd.DataFrame({"clip_id": rows["clip_id"], "actor": rows["actor"].astype(str),
                                    "fold": fold.name, "true": rows["true"],
                                    "pred": [classes[i] for i in probs.argmax(axis=1)]})
        for i, c in enumerate(classes):
            predictions[f"p_{c}"] = probs[:, i]
        config = {k: v for k, v in spec.items()}
        config.update({"experiment": spec["name"], "fold": fold.name, "protocol": fold.protocol,
                       "test_actors": list(fold.test_actors), "classes": list(classes), "fuser": name,
                       "framework": "sklearn", "fusion": settings,
                       "inputs": {"train": f"audio/{fold.name}/{OOF_FILE}, video/{fold.name}/{OOF_FILE}",
                                  "test": f"audio/{fold.name}/predictions.csv, video/{fold.name}/predictions.csv"}})
        results.write_fold(fold_dir, config=config, metrics=metrics, predictions=predictions,
                           save_model=lambda folder, f=fuser: joblib.dump(f, folder / "model.joblib"))


def fusion_table(exp_dir) -> "pd.DataFrame":
    """The report's Tables 5-1 to 5-5 in one frame: one row per (protocol, fold) with
    the test accuracy of ``audio``, ``video`` and every fuser, plus the k the KNN grid
    search chose. Accuracies are fractions in [0, 1]."""
    import pandas as pd

    from pipeline.research import store

    rows: dict[tuple[str, str], dict] = {}
    for variant in store.variants(exp_dir):
        for m in store.load_metrics(exp_dir, variant):
            row = rows.setdefault((str(m.get("protocol", "")), str(m.get("fold", ""))), {})
            row[variant] = float(m.get("accuracy", np.nan))
            if variant == "fusion_knn":
                row["knn_k"] = (m.get("params") or {}).get("n_neighbors")
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame([{"protocol": p, "fold": f, **r} for (p, f), r in rows.items()])
    order = ["protocol", "fold", "knn_k", "audio", "video"] + list(ALL_FUSERS)
    cols = [c for c in order if c in frame.columns] + [c for c in frame.columns if c not in order]
    return frame[cols].sort_values(["protocol", "fold"]).reset_index(drop=True)


def write_table(exp_dir) -> "pd.DataFrame":
    """Write :func:`fusion_table` to ``<exp_dir>/fusion_table.csv`` (atomically)."""
    from pathlib import Path

    frame = fusion_table(exp_dir)
    if not frame.empty:
        _write_csv_atomic(frame, Path(exp_dir) / TABLE_FILE)
    return frame
