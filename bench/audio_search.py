"""Search for the best audio configuration on real RAVDESS speech (variant ``best``).

Protocol (the same as ``$AVE_SHARED_DATA/BASELINES.md``): the actors found under
``<data>/ravdess-speech/Actor_*``, the six-emotion label set, leave-one-actor-out,
mean ± std over folds of accuracy and UAR (balanced accuracy). Every scaler and
model is fitted on the training actors of a fold only. Features come from
:mod:`pipeline.core.audio` at the pipeline's default :class:`Preprocessing` (22,050 Hz);
for each feature the span it is computed over is named: ``whole`` (the whole file),
``trim`` (the file with leading/trailing silence trimmed, what ``featurize`` uses for
openSMILE kinds) or ``win`` (the 0.5-3.5 s analysis window, what ``featurize`` uses for
MFCC/log-mel kinds).

Per-speaker normalisation (``spk``): each actor's feature vectors are standardised by
that actor's own mean and std over all of their clips. It uses no labels, so it is
legitimate at test time, but it needs several clips of the same speaker: it cannot
serve a single uploaded clip.

Usage::

    AVE_SHARED_DATA=../shared/data python bench/audio_search.py [--quick] [--cnn]

Writes ``bench/results/audio_search.json`` and prints a table. Features are cached
under ``$AVE_CACHE/audio_search`` (default ``cache/audio_search``).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pipeline.core import audio, media, paths
from pipeline.core.labels import RAVDESS_EMOTION_CODES, label_set
from pipeline.core.preprocessing import Preprocessing

log = logging.getLogger("audio_search")


# ----------------------------------------------------------------------------- data
def list_clips(root: Path, labels: str = "six") -> list[tuple[Path, str, str]]:
    """(path, actor, emotion) of RAVDESS audio-only speech files under ``root`` whose
    emotion is in the label set, sorted by name (deterministic order)."""
    keep = set(label_set(labels))
    out = []
    for path in sorted(root.glob("Actor_*/*.wav")):
        parts = path.stem.split("-")
        if len(parts) != 7 or parts[0] != "03" or parts[1] != "01":
            continue
        emotion = RAVDESS_EMOTION_CODES.get(parts[2])
        if emotion in keep:
            out.append((path, parts[6], emotion))
    return out


def extract_all(clips: list[tuple[Path, str, str]], params: Preprocessing) -> dict[str, np.ndarray]:
    """Every candidate feature of every clip, stacked in clip order."""
    from tqdm import tqdm

    feats: dict[str, list[np.ndarray]] = {}
    for path, _, _ in tqdm(clips, desc="features", unit="clip"):
        y = media.load_audio(path, params.sample_rate)
        for name, value in clip_features(y, params).items():
            feats.setdefault(name, []).append(value)
    return {name: np.stack(values) for name, values in feats.items()}


def clip_features(y: np.ndarray, params: Preprocessing) -> dict[str, np.ndarray]:
    """All candidate features of one decoded clip (name -> array)."""
    seg = audio.window(y, params)
    trimmed = audio.functional_span(y, params)
    mfcc_win = audio.mfcc_matrix(seg, params)
    mfcc_trim = audio.mfcc_matrix(trimmed, params)
    logmel_win = audio.logmel(seg, params)
    logmel_trim = audio.logmel(trimmed, params)
    return {
        "compare_trim": audio.featurize(y, params, "compare"),
        "compare_whole": audio._opensmile_functionals(y, params.sample_rate, "compare"),
        "compare_win": audio._opensmile_functionals(seg, params.sample_rate, "compare"),
        "egemaps_trim": audio.featurize(y, params, "egemaps"),
        "mfcc_mean_win": mfcc_win.mean(axis=1),
        "mfcc_stats_win": audio.mfcc_statistics(mfcc_win),
        "mfcc_stats_trim": audio.mfcc_statistics(mfcc_trim),
        "logmel_stats_win": np.concatenate([logmel_win.mean(1), logmel_win.std(1)]),
        "logmel_stats_trim": np.concatenate([logmel_trim.mean(1), logmel_trim.std(1)]),
        "mfcc_matrix_win": mfcc_win,
    }


def extra_features(clips: list[tuple[Path, str, str]], params: Preprocessing) -> dict[str, np.ndarray]:
    """ComParE at other sample rates and ComParE of augmented copies (for training folds)."""
    import dataclasses

    from tqdm import tqdm

    feats: dict[str, list[np.ndarray]] = {}
    rates = {16000: dataclasses.replace(params, sample_rate=16000)}
    for i, (path, _, _) in enumerate(tqdm(clips, desc="extra features", unit="clip")):
        for sr, p in rates.items():
            y = media.load_audio(path, sr)
            feats.setdefault(f"compare_trim_{sr}", []).append(audio.featurize(y, p, "compare"))
            feats.setdefault(f"compare_whole_{sr}", []).append(audio._opensmile_functionals(y, sr, "compare"))
        y = media.load_audio(path, params.sample_rate)
        rng = np.random.default_rng(i)
        for name in ("noise", "pitch_up"):
            z = audio.augment(y, params.sample_rate, name, rng)
            feats.setdefault(f"compare_trim_aug_{name}", []).append(audio.featurize(z, params, "compare"))
    return {name: np.stack(values) for name, values in feats.items()}


#: Trim levels (dB below the clip's peak) swept for ComParE functionals.
TRIM_LEVELS: tuple[int, ...] = (20, 25, 30, 35, 40, 45, 50)


def trim_variants(clips: list[tuple[Path, str, str]], params: Preprocessing) -> dict[str, np.ndarray]:
    """ComParE over the clip trimmed at each of :data:`TRIM_LEVELS` other than the one
    ``featurize`` uses (``audio.TRIM_TOP_DB``, the ``compare_trim`` feature)."""
    import librosa
    from tqdm import tqdm

    feats: dict[str, list[np.ndarray]] = {}
    for path, _, _ in tqdm(clips, desc="trim variants", unit="clip"):
        y = media.load_audio(path, params.sample_rate)
        for top_db in (t for t in TRIM_LEVELS if t != audio.TRIM_TOP_DB):
            span, _ = librosa.effects.trim(y, top_db=top_db)
            feats.setdefault(f"compare_trim{top_db}", []).append(
                audio._opensmile_functionals(span, params.sample_rate, "compare"))
    return {name: np.stack(values) for name, values in feats.items()}


def load_features(root: Path, params: Preprocessing, cache: Path, with_extra: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Cached features, integer labels (label-set order) and actor ids."""
    clips = list_clips(root, params.labels)
    if not clips:
        raise SystemExit(f"no RAVDESS speech clips found under {root}")
    key = f"{len(clips)}-{params.digest()}-trim{audio.TRIM_TOP_DB:g}-v4"
    file = cache / f"features-{key}.npz"
    if file.exists():
        data = dict(np.load(file))
    else:
        data = extract_all(clips, params)
        cache.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(".tmp.npz")
        np.savez(tmp, **data)
        tmp.replace(file)
    extra = cache / f"extra-{key}.npz"
    if extra.exists():
        data.update(dict(np.load(extra)))
    elif with_extra:
        more = extra_features(clips, params)
        np.savez(extra.with_suffix(".tmp.npz"), **more)
        extra.with_suffix(".tmp.npz").replace(extra)
        data.update(more)
    variants = cache / f"trimvar-{key}.npz"
    if variants.exists():
        data.update(dict(np.load(variants)))
    elif with_extra:
        more = trim_variants(clips, params)
        np.savez(variants.with_suffix(".tmp.npz"), **more)
        variants.with_suffix(".tmp.npz").replace(variants)
        data.update(more)
    classes = params.classes
    y = np.array([classes.index(e) for _, _, e in clips])
    actors = np.array([a for _, a, _ in clips])
    return data, y, actors


# ----------------------------------------------------------------------- evaluation
def speaker_normalise(X: np.ndarray, actors: np.ndarray) -> np.ndarray:
    """Standardise each actor's rows by that actor's own statistics (no labels)."""
    return audio.speaker_normalise(X, actors)


def loao(make: Callable[[], Any], X: np.ndarray, y: np.ndarray, actors: np.ndarray) -> dict[str, Any]:
    """Leave-one-actor-out: fit ``make()`` on the other actors, score on the held-out one."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    accs, uars = [], []
    for a in np.unique(actors):
        test = actors == a
        model = make()
        model.fit(X[~test], y[~test])
        pred = model.predict(X[test])
        accs.append(accuracy_score(y[test], pred))
        uars.append(balanced_accuracy_score(y[test], pred))
    return {"acc": float(np.mean(accs)), "acc_std": float(np.std(accs)),
            "uar": float(np.mean(uars)), "uar_std": float(np.std(uars)), "folds": [float(v) for v in accs]}


def loao_augmented(make: Callable[[], Any], X: np.ndarray, extra: list[np.ndarray], y: np.ndarray,
                   actors: np.ndarray) -> dict[str, Any]:
    """Leave-one-actor-out where the training actors' augmented copies (rows aligned
    with ``X``) join the training set; the held-out actor is scored on originals only."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    accs, uars = [], []
    for a in np.unique(actors):
        test = actors == a
        Xtr = np.vstack([X[~test]] + [E[~test] for E in extra])
        ytr = np.concatenate([y[~test]] * (1 + len(extra)))
        model = make()
        model.fit(Xtr, ytr)
        pred = model.predict(X[test])
        accs.append(accuracy_score(y[test], pred))
        uars.append(balanced_accuracy_score(y[test], pred))
    return {"acc": float(np.mean(accs)), "acc_std": float(np.std(accs)),
            "uar": float(np.mean(uars)), "uar_std": float(np.std(uars)), "folds": [float(v) for v in accs]}


def nested_loao(makers: dict[str, Callable[[], Any]], X: np.ndarray, y: np.ndarray,
                actors: np.ndarray) -> dict[str, Any]:
    """Honest tuning: in each outer fold pick the candidate with the best inner
    leave-one-actor-out accuracy on the training actors, then score it on the
    held-out actor. Returns the outer scores and the choice per fold."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    accs, uars, chosen = [], [], []
    for a in np.unique(actors):
        test = actors == a
        inner = {name: loao(make, X[~test], y[~test], actors[~test])["acc"] for name, make in makers.items()}
        best = max(inner, key=inner.get)
        model = makers[best]()
        model.fit(X[~test], y[~test])
        pred = model.predict(X[test])
        accs.append(accuracy_score(y[test], pred))
        uars.append(balanced_accuracy_score(y[test], pred))
        chosen.append(best)
    return {"acc": float(np.mean(accs)), "acc_std": float(np.std(accs)),
            "uar": float(np.mean(uars)), "uar_std": float(np.std(uars)),
            "folds": [float(v) for v in accs], "chosen": chosen}


def nested_loao_features(makers: dict[Any, Callable[[], Any]], features: dict[Any, np.ndarray],
                         y: np.ndarray, actors: np.ndarray) -> dict[str, Any]:
    """Like :func:`nested_loao` but the candidates are (feature variant, model) pairs
    sharing keys, e.g. the trim level of ComParE."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    accs, uars, chosen = [], [], []
    for a in np.unique(actors):
        test = actors == a
        inner = {k: loao(makers[k], X[~test], y[~test], actors[~test])["acc"] for k, X in features.items()}
        best = max(inner, key=inner.get)
        model = makers[best]()
        model.fit(features[best][~test], y[~test])
        pred = model.predict(features[best][test])
        accs.append(accuracy_score(y[test], pred))
        uars.append(balanced_accuracy_score(y[test], pred))
        chosen.append(best)
    return {"acc": float(np.mean(accs)), "acc_std": float(np.std(accs)),
            "uar": float(np.mean(uars)), "uar_std": float(np.std(uars)),
            "folds": [float(v) for v in accs], "chosen": chosen}


class KerasClassifier:
    """Minimal fit/predict adapter over a registered Keras builder, for :func:`loao`.

    Trains on the training actors with ``val_fraction`` of them held out (stratified)
    for early stopping, exactly as a real run would.
    """

    def __init__(self, name: str, epochs: int = 150, batch_size: int = 16, seed: int = 0,
                 val_fraction: float = 0.15, **hp: Any) -> None:
        self.name, self.epochs, self.batch_size, self.seed = name, epochs, batch_size, seed
        self.val_fraction, self.hp = val_fraction, hp

    def fit(self, X: np.ndarray, y: np.ndarray) -> "KerasClassifier":
        import keras
        from sklearn.model_selection import train_test_split

        import models

        keras.utils.set_random_seed(self.seed)
        Xtr, Xva, ytr, yva = train_test_split(X, y, test_size=self.val_fraction, stratify=y,
                                              random_state=self.seed)
        self.model_ = models.build(self.name, X.shape[1:], int(y.max()) + 1, **self.hp)
        stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=30, restore_best_weights=True)
        self.model_.fit(Xtr, ytr, validation_data=(Xva, yva), epochs=self.epochs,
                        batch_size=self.batch_size, callbacks=[stop], verbose=0)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict(X, verbose=0).argmax(axis=1)


# ------------------------------------------------------------------------ candidates
def sk(name: str, dim: int, **hp: Any) -> Callable[[], Any]:
    """A factory of the registered scikit-learn model ``name``."""
    import models

    return lambda: models.build(name, (dim,), 6, **hp)


def candidates(F: dict[str, np.ndarray], actors: np.ndarray, quick: bool) -> list[tuple[str, str, str, Callable[[], Any], np.ndarray]]:
    """(label, feature, model, factory, X) rows to evaluate."""
    rows = []
    spk = {name: speaker_normalise(X, actors) for name, X in F.items() if X.ndim == 2}
    comp = F["compare_trim"]
    for C in ((1e-3,) if quick else (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)):
        rows.append((f"svm_linear C={C:g}", "compare_trim", "svm_linear", sk("svm_linear", comp.shape[1], C=C), comp))
    rows.append(("svm_linear C=0.001 balanced", "compare_trim", "svm_linear",
                 sk("svm_linear", comp.shape[1], C=1e-3, class_weight="balanced"), comp))
    for name in (f"compare_trim{t}" for t in TRIM_LEVELS):
        if name in F:
            rows.append(("svm_linear C=0.001", name, "svm_linear", sk("svm_linear", comp.shape[1], C=1e-3), F[name]))
    for span in ("whole", "win"):
        X = F[f"compare_{span}"]
        rows.append(("svm_linear C=0.001", f"compare_{span}", "svm_linear", sk("svm_linear", X.shape[1], C=1e-3), X))
    # lbfgs on 6,373 features is slow on 2 cores: one value, the SVM's best.
    rows.append(("logreg C=0.001", "compare_trim", "logreg", sk("logreg", comp.shape[1], C=1e-3), comp))
    for name in ("egemaps_trim", "mfcc_stats_win", "mfcc_stats_trim", "logmel_stats_win", "logmel_stats_trim"):
        X = F[name]
        rows.append(("svm_rbf C=10", name, "svm_rbf", sk("svm_rbf", X.shape[1], C=10.0), X))
        rows.append(("svm_linear C=0.01", name, "svm_linear", sk("svm_linear", X.shape[1], C=1e-2), X))
    X = F["mfcc_stats_win"]
    for name in ("svm_poly3", "svm_poly4", "mlp"):
        rows.append((name, "mfcc_stats_win", name, sk(name, X.shape[1]), X))
    combo = np.hstack([comp, F["mfcc_stats_trim"], F["logmel_stats_trim"]])
    rows.append(("svm_linear C=0.001", "compare+mfcc_stats+logmel_stats (trim)", "svm_linear",
                 sk("svm_linear", combo.shape[1], C=1e-3), combo))
    # Per-speaker normalisation (needs an actor's other clips; not for single uploads).
    X = spk["compare_trim"]
    for C in ((1e-3,) if quick else (1e-4, 1e-3, 1e-2)):
        rows.append((f"svm_linear C={C:g}", "compare_trim +spk", "svm_linear", sk("svm_linear", X.shape[1], C=C), X))
    rows.append(("logreg C=0.001", "compare_trim +spk", "logreg", sk("logreg", X.shape[1], C=1e-3), X))
    for name in ("egemaps_trim", "mfcc_stats_trim"):
        X = spk[name]
        rows.append(("svm_rbf C=10", f"{name} +spk", "svm_rbf", sk("svm_rbf", X.shape[1], C=10.0), X))
    return rows


def extra_candidates(F: dict[str, np.ndarray], actors: np.ndarray) -> list[tuple[str, str, str, Callable[[], Any], Any]]:
    """ComParE at 16 kHz, and ComParE with augmented training copies."""
    rows: list[tuple[str, str, str, Callable[[], Any], Any]] = []
    dim = F["compare_trim"].shape[1]
    for sr in (16000,):
        for span in ("trim", "whole"):
            rows.append(("svm_linear C=0.001", f"compare_{span} @{sr // 1000}k", "svm_linear",
                         sk("svm_linear", dim, C=1e-3), F[f"compare_{span}_{sr}"]))
    aug = {n: F[f"compare_trim_aug_{n}"] for n in ("noise", "pitch_up")}
    for names in (("noise",), ("pitch_up",), ("noise", "pitch_up")):
        rows.append(("svm_linear C=0.001", f"compare_trim +aug {'+'.join(names)}", "svm_linear",
                     sk("svm_linear", dim, C=1e-3), (F["compare_trim"], [aug[n] for n in names])))
    spk = speaker_normalise(F["compare_trim_16000"], actors)
    rows.append(("svm_linear C=0.001", "compare_trim @16k +spk", "svm_linear", sk("svm_linear", dim, C=1e-3), spk))
    return rows


def cnn_candidates(F: dict[str, np.ndarray], actors: np.ndarray) -> list[tuple[str, str, str, Callable[[], Any], np.ndarray]]:
    """Small Keras models: the report's final 1-D CNN on the MFCC mean."""
    X = F["mfcc_mean_win"]
    return [
        ("audio_cnn (report final) 150 ep", "mfcc_mean_win", "audio_cnn",
         lambda: KerasClassifier("audio_cnn", epochs=150), X),
        ("audio_cnn 150 ep", "mfcc_mean_win +spk", "audio_cnn",
         lambda: KerasClassifier("audio_cnn", epochs=150), speaker_normalise(X, actors)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.environ.get("AVE_SHARED_DATA", ""),
                        help="folder holding ravdess-speech/ (default $AVE_SHARED_DATA)")
    parser.add_argument("--quick", action="store_true", help="fewer hyperparameter values")
    parser.add_argument("--cnn", action="store_true", help="also train the small Keras CNNs")
    parser.add_argument("--extra", action="store_true",
                        help="also ComParE at 16 kHz and with augmented (noise, pitch) training copies")
    parser.add_argument("--only-extra", action="store_true", help="evaluate only the --extra rows")
    parser.add_argument("--nested", action="store_true", help="also nested (honest) tuning of C")
    parser.add_argument("--out", default="bench/results/audio_search.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.data:
        print("set AVE_SHARED_DATA or pass --data (a folder with ravdess-speech/)", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    params = Preprocessing()
    F, y, actors = load_features(Path(args.data) / "ravdess-speech", params, paths.cache_dir() / "audio_search",
                                 with_extra=args.extra or args.only_extra)
    log.info("%d clips, %d actors, classes %s", len(y), len(np.unique(actors)), params.classes)
    rows = [] if args.only_extra else candidates(F, actors, args.quick) + (cnn_candidates(F, actors) if args.cnn else [])
    if args.extra or args.only_extra:
        rows += extra_candidates(F, actors)
    results = []
    for label, feature, model, make, X in rows:
        t0 = time.time()
        if isinstance(X, tuple):  # (features, augmented copies for the training actors)
            r = loao_augmented(make, X[0], X[1], y, actors)
            X = X[0]
        else:
            r = loao(make, X, y, actors)
        r.update(label=label, feature=feature, model=model, dim=int(np.prod(X.shape[1:])),
                 seconds=round(time.time() - t0, 1))
        results.append(r)
        log.info("%-45s %-28s acc %5.1f ± %4.1f  UAR %5.1f  (%.0f s)", feature, label,
                 100 * r["acc"], 100 * r["acc_std"], 100 * r["uar"], r["seconds"])
    if args.nested and any(f"compare_trim{t}" in F for t in TRIM_LEVELS):
        levels = {t: F.get(f"compare_trim{t}", F["compare_trim"]) for t in TRIM_LEVELS}
        makers = {t: sk("svm_linear", 6373, C=1e-3) for t in TRIM_LEVELS}
        t0 = time.time()
        r = nested_loao_features(makers, levels, y, actors)
        r.update(label="nested: trim level tuned inside", feature="compare_trim{20..50}", model="svm_linear",
                 dim=6373, seconds=round(time.time() - t0, 1))
        results.append(r)
        log.info("%-45s %-28s acc %5.1f ± %4.1f  UAR %5.1f  chosen %s", r["feature"], r["label"],
                 100 * r["acc"], 100 * r["acc_std"], 100 * r["uar"], r["chosen"])
    if args.nested:
        for feature, spk in (("compare_trim", False), ("compare_trim +spk", True)):
            X = speaker_normalise(F["compare_trim"], actors) if spk else F["compare_trim"]
            makers = {f"svm_linear C={C:g}": sk("svm_linear", X.shape[1], C=C)
                      for C in (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)}
            t0 = time.time()
            r = nested_loao(makers, X, y, actors)
            r.update(label="nested: svm_linear, C tuned inside", feature=feature, model="nested",
                     dim=int(X.shape[1]), seconds=round(time.time() - t0, 1))
            results.append(r)
            log.info("%-45s %-28s acc %5.1f ± %4.1f  UAR %5.1f  chosen %s", feature, r["label"],
                     100 * r["acc"], 100 * r["acc_std"], 100 * r["uar"], r["chosen"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(out.read_text())["results"] if out.exists() else []
    merged = {(r["feature"], r["label"]): r for r in previous}
    merged.update({(r["feature"], r["label"]): r for r in results})
    payload = {"protocol": "leave-one-actor-out, six emotions, RAVDESS speech actors under --data",
               "n_clips": int(len(y)), "actors": sorted(set(actors.tolist())),
               "preprocessing": params.to_dict(), "results": sorted(merged.values(), key=lambda r: -r["acc"])}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(out)
    print(f"\n{'feature':45s} {'model':28s}   acc (± std)     UAR")
    for r in payload["results"]:
        print(f"{r['feature']:45s} {r['label']:28s} {100 * r['acc']:5.1f} ± {100 * r['acc_std']:4.1f}   {100 * r['uar']:5.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
