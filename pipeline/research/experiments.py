"""Experiment specs (YAML) -> variants x folds -> the results store. Resumable.

A spec is a *base* (corpus, labels, protocol, branch, preprocessing, features, model,
training) plus ``variants``, each a named override of the base: one row of an ablation
table. ``python -m pipeline run SPEC [--set key=value]... [--only VARIANT]... [--out
DIR]`` resolves the base, applies ``--set`` to it, then each variant's ``set`` on top,
and runs every fold of every variant into ``DIR/<name>/<variant>/<fold>/``. Finished
folds (a folder with metrics.json) are skipped, so an interrupted run resumes where
it stopped, and a rerun with nothing left to do only reprints the summary.

Executors plug in through :data:`EXECUTORS` (``name -> "module:function"``): ``local``
(the default) runs variant after variant, fold after fold, in this process; ``ray``
(:mod:`pipeline.research.ray_executor`, imported only when chosen) makes every (variant, fold) a
Ray task. Both go through the same unit of work: :func:`plan_variant` (unfinished folds,
features extracted once through the on-disk cache, in the calling process) then
:func:`run_fold_task` per :class:`FoldTask` (train, evaluate, write the fold atomically).

Branches plug in through :data:`BRANCH_RUNNERS` (``branch -> "module:function"``): a
runner receives one resolved variant spec and the experiment folder and writes its
folds with :func:`pipeline.research.results.write_fold`. The helpers it needs are public here:
:func:`load_manifest_for`, :func:`features_for`, :func:`make_folds`, :func:`run_fold`
(and :func:`pipeline.research.training.fit_predict`).
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import importlib
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from pipeline.core import paths
from pipeline.research import results
from pipeline.research import store
from pipeline.core.preprocessing import Preprocessing
from pipeline.research.splits import REPORT_SEEDS, Fold, encode_labels, filter_to_labels
from pipeline.research.training import fit_predict

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULTS", "BRANCH_RUNNERS", "load_spec", "resolve", "variant_specs", "validate",
    "preprocessing_for", "corpora_of", "protocol_kinds", "load_manifest_for", "features_for", "augmented_for", "make_folds",
    "assemble_fold", "run_fold", "run_spec",
    "EXECUTORS", "VariantData", "FoldTask", "VariantPlan", "TaskFailure", "RunFailures",
    "plan_variant", "run_fold_task", "run_local", "executor_for", "error_line",
]

#: Every key a spec may hold, with its default. ``preprocessing``, ``model.params`` and
#: ``fusion`` are open dicts (checked against Preprocessing / the model builder /
#: the fusion runner).
DEFAULTS: dict[str, Any] = {
    "name": "experiment",
    "description": "",
    "corpus": {"name": "synthetic", "root": "data/synthetic", "channel": None},
    "labels": "six",
    "protocol": {"kind": "speaker", "folds": 6, "seeds": list(REPORT_SEEDS),
                 "val_fraction": 0.1, "test_fraction": 0.1},
    "branch": "audio",
    "preprocessing": {},
    "features": {"kind": "mfcc_mean", "augment": [], "full_frame": False, "detector": None,
                 "n_jobs": 2, "calibration": "none", "neutral_takes": 2},
    "model": {"name": "audio_cnn", "params": {}},
    "training": {"epochs": 100, "batch_size": 32, "patience": 10, "seed": 42,
                 "early_stopping": True, "balance": None},
    "fusion": {},
    "variants": [],
}
_OPEN_KEYS = ("preprocessing", "model.params", "fusion")
#: Mappings that may also be given as a list (several corpora).
_LIST_OR_MAPPING = ("corpus",)

#: branch -> "module:function"; the function is ``runner(spec, exp_dir, *, cache_dir,
#: progress) -> list[str]`` (fold names it wrote) for one resolved variant spec.
BRANCH_RUNNERS: dict[str, str] = {
    "audio": "pipeline.research.experiments:run_branch",
    "video": "pipeline.research.experiments:run_branch",
    "fusion": "pipeline.research.fusion_runs:run_fusion_variant",
}
#: Keys that do not change a fold's result (left out of its fingerprint).
_NEUTRAL_KEYS = ("name", "description", "variants", "variant", "features.n_jobs")
#: executor -> "module:function"; the function is ``executor(specs, exp_dir, *, cache_dir,
#: progress, **options) -> list[TaskFailure]``: it runs every unfinished fold of the
#: resolved variant ``specs`` into ``exp_dir``. Imported only when chosen.
EXECUTORS: dict[str, str] = {
    "local": "pipeline.research.experiments:run_local",
    "ray": "pipeline.research.ray_executor:run_ray",
}


class SpecError(ValueError):
    """An experiment spec that cannot run, with a one-line reason."""


# --------------------------------------------------------------------------- spec
def load_spec(path: str | Path) -> dict[str, Any]:
    """Read a spec YAML file into a dict (no defaults applied)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"experiment spec not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise SpecError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path} must hold a mapping of spec keys")
    return data


def _is_open(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in _OPEN_KEYS)


def _merge(base: dict[str, Any], update: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Deep-merge ``update`` into a copy of ``base``; unknown keys raise SpecError."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if key not in out and not _is_open(dotted):
            known = ", ".join(f"{prefix}{k}" for k in out) or "(none)"
            raise SpecError(f"unknown spec key {dotted!r}; known here: {known}")
        if isinstance(out.get(key), dict) and not isinstance(value, dict) and dotted not in _LIST_OR_MAPPING:
            raise SpecError(f"{dotted} must be a mapping of keys (e.g. {dotted}: {{...}}), not {value!r}")
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not _is_open(dotted):
            out[key] = _merge(out[key], value, dotted + ".")
        else:
            out[key] = copy.deepcopy(value)
    return out


def set_dotted(spec: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of ``spec`` with ``a.b.c`` set to ``value`` (unknown keys raise)."""
    parts = key.split(".")
    nested: Any = value
    for part in reversed(parts[1:]):
        nested = {part: nested}
    if any(not p for p in parts):
        raise SpecError(f"bad key {key!r}")
    return _merge(spec, {parts[0]: nested})


def parse_override(text: str) -> tuple[str, Any]:
    """``"key=value"`` -> (key, YAML-parsed value), e.g. ``protocol.folds=6`` -> 6."""
    import yaml

    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise SpecError(f"--set expects KEY=VALUE, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def resolve(raw: dict[str, Any], overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Defaults <- spec file <- ``--set`` overrides: the base spec (variants kept raw)."""
    spec = _merge(DEFAULTS, raw)
    for text in overrides:
        key, value = parse_override(text)
        spec = set_dotted(spec, key, value)
    if not spec["variants"]:
        spec["variants"] = [{"name": "base", "group": "", "description": "the base spec"}]
    return spec


def variant_specs(base: dict[str, Any], only: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One fully resolved spec per variant (``base`` + its ``set``), ``only`` filtering."""
    out = []
    if not isinstance(base["variants"], list) or not all(isinstance(v, dict) for v in base["variants"]):
        raise SpecError("variants must be a list of mappings, e.g. [{name: small, set: {model.name: logreg}}]")
    names = [str(v.get("name", "")) for v in base["variants"]]
    if len(set(names)) != len(names) or not all(names):
        raise SpecError("every variant needs a unique, non-empty name")
    unknown = sorted(set(only or ()) - set(names))
    if unknown:
        raise SpecError(f"no variant named {', '.join(unknown)}; the spec has: {', '.join(names)}")
    for variant in base["variants"]:
        extra = set(variant) - {"name", "group", "description", "set"}
        if extra:
            raise SpecError(f"variant {variant['name']!r} has unknown keys: {', '.join(sorted(extra))}")
        paths.safe_name(str(variant["name"]), "the variant name")
        if not isinstance(variant.get("set") or {}, dict):
            raise SpecError(f"variant {variant['name']!r}: set must be a mapping of dotted keys to values")
        if only and variant["name"] not in only:
            continue
        spec = {k: v for k, v in base.items() if k != "variants"}
        for key, value in (variant.get("set") or {}).items():
            spec = set_dotted(spec, str(key), value)
        spec["variant"] = {"name": str(variant["name"]), "group": str(variant.get("group", "")),
                           "description": str(variant.get("description", ""))}
        out.append(spec)
    return out


def preprocessing_for(spec: dict[str, Any]) -> Preprocessing:
    """The Preprocessing a spec implies (its overrides plus its label set)."""
    names = {f.name for f in dataclasses.fields(Preprocessing)}
    unknown = sorted(set(spec.get("preprocessing") or {}) - names)
    if unknown:
        raise SpecError(f"unknown preprocessing key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    try:
        return Preprocessing(**{**(spec.get("preprocessing") or {}), "labels": spec["labels"]})
    except (TypeError, ValueError) as err:
        raise SpecError(f"bad preprocessing: {err}") from None


def feature_kind(spec: dict[str, Any]) -> str:
    """The cached feature kind: ``frames`` becomes ``frames_full`` with ``full_frame``."""
    kind = str(spec["features"]["kind"])
    if kind == "frames" and spec["features"].get("full_frame"):
        return "frames_full"
    return kind


def validate(spec: dict[str, Any], *, check_root: bool = True) -> None:
    """Fail early, with one clear line, on anything that would fail mid-run."""
    import models
    from pipeline.core.corpora import CORPORA
    from pipeline.research.features import AUDIO_KINDS, VIDEO_KINDS
    from pipeline.core.labels import LABEL_SETS
    from pipeline.research.splits import PROTOCOLS

    where = f"variant {spec['variant']['name']!r}: " if "variant" in spec else ""
    corpora = corpora_of(spec)
    for corpus in corpora:
        if corpus["name"] not in CORPORA:
            raise SpecError(f"{where}unknown corpus.name {corpus['name']!r}; choose one of: {', '.join(CORPORA)}")
    if not isinstance(spec["labels"], str) or spec["labels"] not in LABEL_SETS:
        raise SpecError(f"{where}unknown labels {spec['labels']!r}; choose one of: {', '.join(LABEL_SETS)}")
    protocol = spec["protocol"]
    for kind in protocol_kinds(spec):
        if kind not in PROTOCOLS:
            raise SpecError(f"{where}unknown protocol.kind {kind!r}; choose one of: {', '.join(PROTOCOLS)}")
    if "corpus" in protocol_kinds(spec) and len({c["name"] for c in corpora}) < 2:
        raise SpecError(f"{where}protocol.kind corpus (leave-one-corpus-out) needs at least two corpora: "
                        "give corpus as a list, e.g. [{name: ravdess, root: ...}, {name: tess, root: ...}]")
    if not isinstance(protocol["folds"], int) or protocol["folds"] < 2:
        raise SpecError(f"{where}protocol.folds must be an integer >= 2")
    fractions = (protocol["val_fraction"], protocol["test_fraction"])
    if not all(isinstance(f, (int, float)) and 0 <= f < 1 for f in fractions) or sum(fractions) >= 1:
        raise SpecError(f"{where}protocol.val_fraction and test_fraction must be in [0, 1) with a sum < 1")
    if (not isinstance(protocol["seeds"], list) or not protocol["seeds"]
            or not all(isinstance(s, int) for s in protocol["seeds"])):
        raise SpecError(f"{where}protocol.seeds must be a non-empty list of integers")
    if not isinstance(spec["branch"], str) or spec["branch"] not in BRANCH_RUNNERS:
        raise SpecError(f"{where}unknown branch {spec['branch']!r}; choose one of: {', '.join(BRANCH_RUNNERS)}")
    preprocessing_for(spec)
    if spec["branch"] in ("audio", "video"):
        kinds = AUDIO_KINDS if spec["branch"] == "audio" else VIDEO_KINDS
        kind = str(spec["features"]["kind"])
        if kind not in kinds and not (spec["branch"] == "audio" and all(p in kinds for p in kind.split("+"))):
            raise SpecError(f"{where}features.kind {spec['features']['kind']!r} is not a {spec['branch']} "
                            f"feature; choose one of: {', '.join(kinds)}")
        augment = spec["features"].get("augment") or []
        if not isinstance(augment, list):
            raise SpecError(f"{where}features.augment must be a list, e.g. [babble], not {augment!r}")
        n_jobs = spec["features"].get("n_jobs", 1)
        if not isinstance(n_jobs, int) or isinstance(n_jobs, bool) or n_jobs < 1:
            raise SpecError(f"{where}features.n_jobs must be a positive integer, not {n_jobs!r}")
        if augment and spec["branch"] != "audio":
            raise SpecError(f"{where}features.augment applies to the audio branch only")
        if augment:
            from pipeline.core.audio import AUGMENTATIONS
            from pipeline.core.degrade import CONDITIONS

            bad = [a for a in augment if a not in AUGMENTATIONS + CONDITIONS]
            if bad:
                raise SpecError(f"{where}unknown augmentation {bad[0]!r}; choose from: "
                                f"{', '.join(AUGMENTATIONS + CONDITIONS)}")
        if spec["model"]["name"] not in models.available():
            raise SpecError(f"{where}unknown model {spec['model']['name']!r}; registered: "
                            f"{', '.join(models.available())}")
        if not isinstance(spec["model"].get("params") or {}, dict):
            raise SpecError(f"{where}model.params must be a mapping")
        from pipeline.research.training import builder_parameters

        takes = builder_parameters(spec["model"]["name"])
        unknown = [k for k in spec["model"].get("params") or {} if takes is not None and k not in takes]
        if unknown:
            raise SpecError(f"{where}model {spec['model']['name']!r} takes no parameter {unknown[0]!r}; "
                            f"it takes: {', '.join(takes)}")
    from pipeline.core.calibration import MODES

    if spec["features"].get("calibration", "none") not in MODES:
        raise SpecError(f"{where}features.calibration must be one of {', '.join(MODES)}")
    if spec["training"].get("balance") not in (None, "corpus"):
        raise SpecError(f"{where}training.balance must be empty or 'corpus'")
    for key in ("epochs", "batch_size", "patience"):
        if not isinstance(spec["training"].get(key), int) or spec["training"][key] < 1:
            raise SpecError(f"{where}training.{key} must be a positive integer")
    for corpus in corpora if check_root else []:
        root = Path(str(corpus["root"])).expanduser()
        if root.is_dir():
            continue
        hint = ("generate it with `python -m pipeline synth --out {0}`" if corpus["name"] == "synthetic"
                else "download it with `python -m pipeline fetch ravdess --dest {0}`"
                if corpus["name"] == "ravdess" else f"point corpus.root at your {corpus['name']} folder")
        raise SpecError(f"corpus folder {root} not found; {hint.format(root)} "
                        f"or pass --set corpus.root=PATH")


def fingerprint(spec: dict[str, Any]) -> str:
    """Digest of everything that changes a fold's result (resume safety check)."""
    data = {k: v for k, v in spec.items() if k not in _NEUTRAL_KEYS}
    data = copy.deepcopy(data)
    data.get("features", {}).pop("n_jobs", None)
    data["corpus"] = _resolved_corpus(data)
    return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def corpora_of(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The corpora a spec names, each ``{name, root, channel}``: ``corpus`` is one
    mapping or a list of them (several corpora are concatenated into one manifest; the
    ``corpus`` protocol holds each out in turn)."""
    corpus = spec["corpus"]
    items = corpus if isinstance(corpus, list) else [corpus]
    if not items or not all(isinstance(c, dict) and c.get("name") for c in items):
        raise SpecError("corpus must be a mapping {name, root, channel} or a non-empty list of them")
    return [{"name": str(c["name"]), "root": str(c.get("root", "")), "channel": c.get("channel")} for c in items]


def protocol_kinds(spec: dict[str, Any]) -> list[str]:
    """The protocols a spec runs: ``protocol.kind`` is one name or a list (e.g.
    ``[speaker, corpus]``: speaker-independent folds beside leave-one-corpus-out)."""
    kind = spec["protocol"]["kind"]
    return [str(k) for k in kind] if isinstance(kind, list) else [str(kind)]


def _resolved_corpus(spec: dict[str, Any]) -> Any:
    """The spec's corpus (one mapping, or a list) with absolute roots (digest input)."""
    resolved = [{**c, "root": str(Path(c["root"]).expanduser().resolve())} for c in corpora_of(spec)]
    return resolved if isinstance(spec["corpus"], list) else {**spec["corpus"], **resolved[0]}


# --------------------------------------------------------------------------- data
def load_manifest_for(spec: dict[str, Any]) -> pd.DataFrame:
    """The corpus manifest, restricted to the label set, the channel and the modality
    the branch needs (``audio``: any audio source; ``video``: a video file), 0..n-1."""
    from pipeline.core.corpora import scan
    from pipeline.core.corpora.manifest import has_modality

    frames = []
    for corpus in corpora_of(spec):
        part, summary = scan(corpus["name"], Path(corpus["root"]).expanduser())
        if summary.n_skipped:
            log.info("%s scan skipped %d files: %s", corpus["name"], summary.n_skipped, summary.skipped)
        if corpus.get("channel"):
            part = part.loc[part["channel"] == corpus["channel"]]
        frames.append(part)
    manifest = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if len(frames) > 1:
        manifest = _distinct_actors(manifest)
    if spec["branch"] == "audio":
        manifest = manifest.loc[has_modality(manifest, "audio") | has_modality(manifest, "video")]
    elif spec["branch"] == "video":
        manifest = manifest.loc[has_modality(manifest, "video")]
    manifest = filter_to_labels(manifest.reset_index(drop=True), preprocessing_for(spec).classes)
    if manifest.empty:
        raise SpecError(f"no {spec['branch']} clips of the {spec['labels']!r} emotions in "
                        f"{', '.join(c['root'] for c in corpora_of(spec))}")
    return manifest


def _distinct_actors(manifest: pd.DataFrame) -> pd.DataFrame:
    """Actors of concatenated corpora kept apart: when two corpora share an actor id
    (EmoDB's ``03`` and RAVDESS's ``03``), every actor becomes ``<corpus>:<actor>``."""
    owners = manifest.groupby(manifest["actor"].astype(str))["corpus"].nunique()
    if (owners > 1).any():
        manifest = manifest.assign(actor=manifest["corpus"].astype(str) + ":" + manifest["actor"].astype(str))
    return manifest


def features_for(spec: dict[str, Any], manifest: pd.DataFrame, *, cache_dir: str | Path | None = None,
                 progress: bool = True) -> tuple[np.ndarray, pd.DataFrame, list[tuple[str, str]]]:
    """(X, manifest of the clips that worked, failed [(clip_id, reason)]) for a spec."""
    from pipeline.research import features

    failed: list[tuple[str, str]] = []
    X = features.extract(manifest, feature_kind(spec), preprocessing_for(spec),
                         cache_dir or paths.cache_dir(), n_jobs=int(spec["features"].get("n_jobs", 2)),
                         progress=progress, detector=spec["features"].get("detector"), failed=failed)
    return X, features.drop_failed(manifest, failed), failed


def augmented_for(spec: dict[str, Any], manifest: pd.DataFrame, *, cache_dir: str | Path | None = None,
                  progress: bool = True) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For each augmentation of the spec: (X_aug aligned to ``manifest`` rows, ok mask).

    Rows whose augmentation failed are zero-filled and flagged False in the mask.
    """
    from pipeline.research import features

    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in spec["features"].get("augment") or []:
        failed: list[tuple[str, str]] = []
        X = features.extract(manifest, feature_kind(spec), preprocessing_for(spec),
                             cache_dir or paths.cache_dir(), augment=name,
                             n_jobs=int(spec["features"].get("n_jobs", 2)), progress=progress,
                             failed=failed)
        ok = ~manifest["clip_id"].isin({c for c, _ in failed}).to_numpy()
        full = np.zeros((len(manifest), *X.shape[1:]), dtype=X.dtype)
        full[ok] = X
        out[name] = (full, ok)
    return out


def make_folds(spec: dict[str, Any], manifest: pd.DataFrame) -> list[Fold]:
    """The protocol's folds over ``manifest`` (speaker k-fold or seeded random splits)."""
    from pipeline.research import splits

    protocol = spec["protocol"]
    corpora = corpora_of(spec)
    folds: list[Fold] = []
    for kind in protocol_kinds(spec):
        folds += splits.make_folds(manifest, kind, n_folds=int(protocol["folds"]),
                                   seeds=[int(s) for s in protocol["seeds"]],
                                   val_fraction=float(protocol["val_fraction"]),
                                   test_fraction=float(protocol["test_fraction"]),
                                   seed=int(spec["training"].get("seed", 42)),
                                   speaker_corpus=corpora[0]["name"] if len(corpora) > 1 else None)
    return folds


def assemble_fold(X: np.ndarray, y: np.ndarray, fold: Fold,
                  augmented: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
                  ) -> dict[str, np.ndarray]:
    """Arrays of one fold: ``X_train, y_train, X_val, y_val, X_test, y_test``.

    Augmented copies are added as extra *training* rows only (of the fold's training
    clips whose augmentation worked); validation and test see original clips only.
    """
    X_train, y_train = [X[fold.train]], [y[fold.train]]
    for _, (X_aug, ok) in (augmented or {}).items():
        rows = fold.train[ok[fold.train]]
        X_train.append(X_aug[rows])
        y_train.append(y[rows])
    return {
        "X_train": np.concatenate(X_train) if len(X_train) > 1 else X_train[0],
        "y_train": np.concatenate(y_train) if len(y_train) > 1 else y_train[0],
        "X_val": X[fold.val], "y_val": y[fold.val],
        "X_test": X[fold.test], "y_test": y[fold.test],
    }


# --------------------------------------------------------------------------- folds
def predictions_frame(manifest: pd.DataFrame, fold: Fold, y_true: np.ndarray, probs: np.ndarray,
                      classes: Sequence[str]) -> pd.DataFrame:
    """``clip_id, actor, fold, true, pred, p_<emotion>...`` for the fold's test clips."""
    test = manifest.iloc[fold.test]
    frame = pd.DataFrame({
        "clip_id": test["clip_id"].to_numpy(), "actor": test["actor"].astype(str).to_numpy(),
        "fold": fold.name, "true": [classes[i] for i in y_true],
        "pred": [classes[i] for i in probs.argmax(axis=1)]})
    for i, name in enumerate(classes):
        frame[f"p_{name}"] = probs[:, i]
    return frame


def fold_config(spec: dict[str, Any], fold: Fold, **extra: Any) -> dict[str, Any]:
    """The config.yaml of one fold: the resolved variant spec plus what serving needs
    (Preprocessing dict, class order, feature kind) and the fold's identity."""
    params = preprocessing_for(spec)
    config = {k: v for k, v in spec.items()}
    config["training"] = {**spec["training"], "seed": fold.seed}
    config.update({
        "experiment": spec["name"], "fold": fold.name, "protocol": fold.protocol,
        "test_actors": list(fold.test_actors), "val_actors": list(fold.val_actors),
        "classes": list(params.classes), "feature_kind": feature_kind(spec),
        "preprocessing_params": params.to_dict(), "fingerprint": fingerprint(spec),
    })
    config.update(extra)
    return config


def run_fold(spec: dict[str, Any], fold: Fold, X: np.ndarray, y: np.ndarray, manifest: pd.DataFrame,
             fold_dir: Path, *, augmented: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
             n_skipped: int = 0, progress: bool = False) -> dict[str, Any]:
    """Train and evaluate one fold and write it to ``fold_dir`` atomically; returns metrics."""
    from pipeline.research.evaluation import evaluate
    from pipeline.research.training import framework_of, save_model

    started = time.perf_counter()
    classes = list(preprocessing_for(spec).classes)
    X, augmented, fold = calibrated(spec, X, manifest, fold, augmented)
    arrays = assemble_fold(X, y, fold, augmented)
    fold_spec = {**spec, "training": {**spec["training"], "seed": fold.seed}}
    weights = corpus_weights(manifest, fold, augmented) if spec["training"].get("balance") == "corpus" else None
    probs, history, model = fit_predict(fold_spec, arrays["X_train"], arrays["y_train"], arrays["X_val"],
                                        arrays["y_val"], arrays["X_test"], n_classes=len(classes),
                                        progress=progress, sample_weight=weights,
                                        groups=speaker_groups(manifest, fold, augmented))
    metrics = evaluate(arrays["y_test"], probs, classes)
    metrics.update({
        "n_train": int(len(fold.train)), "n_train_rows": int(len(arrays["X_train"])),
        "n_val": int(len(fold.val)), "n_skipped": int(n_skipped),
        "fold": fold.name, "variant": spec["variant"]["name"], "group": spec["variant"]["group"],
        "protocol": fold.protocol, "test_actors": list(fold.test_actors),
        "experiment": spec["name"], "branch": spec["branch"], "model": spec["model"]["name"],
        "feature": feature_kind(spec), "seconds": round(time.perf_counter() - started, 2),
    })
    if len(history):
        metrics["epochs_run"] = int(len(history))
        if history["val_loss"].notna().any():
            metrics["best_epoch"] = int(history.loc[history["val_loss"].idxmin(), "epoch"])
    config = fold_config(spec, fold, framework=framework_of(spec["model"]["name"]),
                         input_shape=list(X.shape[1:]))
    results.write_fold(fold_dir, config=config, metrics=metrics,
                       predictions=predictions_frame(manifest, fold, arrays["y_test"], probs, classes),
                       history=history, save_model=lambda folder: save_model(model, folder))
    return metrics


def calibrated(spec: dict[str, Any], X: np.ndarray, manifest: pd.DataFrame, fold: Fold,
               augmented: dict[str, tuple[np.ndarray, np.ndarray]] | None
               ) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]] | None, Fold]:
    """The fold's features under ``features.calibration`` (per-speaker normalisation,
    :func:`pipeline.core.calibration.normalise_speakers`; training and test speakers
    alike, never with labels). ``neutral``: each speaker is shifted by the mean of
    ``features.neutral_takes`` of their neutral takes
    (:func:`pipeline.research.splits.neutral_takes`), which leave the test side.
    Augmented copies are normalised by their own statistics (a whole session recorded
    in those conditions)."""
    from pipeline.core.calibration import normalise_speakers
    from pipeline.research.splits import neutral_takes

    mode = str(spec["features"].get("calibration") or "none")
    if mode == "none":
        return X, augmented, fold
    actors = manifest["actor"].astype(str).to_numpy()
    flagged = (neutral_takes(manifest, int(spec["features"].get("neutral_takes", 2)),
                             int(spec["training"].get("seed", 42))) if mode == "neutral" else None)
    flat = lambda A: np.asarray(A).reshape(len(A), -1)  # noqa: E731
    X = normalise_speakers(flat(X), actors, mode, flagged).astype(np.float32)
    augmented = {k: (normalise_speakers(flat(A), actors, mode, flagged).astype(np.float32), ok)
                 for k, (A, ok) in (augmented or {}).items()}
    if flagged is not None:
        fold = dataclasses.replace(fold, test=fold.test[~flagged[fold.test]])
    return X, augmented, fold


def _training_rows(fold: Fold, augmented: dict[str, tuple[np.ndarray, np.ndarray]] | None) -> np.ndarray:
    """Manifest rows of the training side in :func:`assemble_fold`'s order (originals,
    then each augmentation's copies of the clips it worked on)."""
    return np.concatenate([fold.train] + [fold.train[ok[fold.train]] for _, (_, ok) in (augmented or {}).items()])


def speaker_ids(manifest: pd.DataFrame) -> np.ndarray:
    """``corpus:actor`` of every manifest row (actor names repeat across corpora)."""
    return (manifest["corpus"].astype(str) + ":" + manifest["actor"].astype(str)).to_numpy()


def speaker_groups(manifest: pd.DataFrame, fold: Fold,
                   augmented: dict[str, tuple[np.ndarray, np.ndarray]] | None) -> tuple[np.ndarray, np.ndarray]:
    """The speaker (:func:`speaker_ids`) of every training row (:func:`assemble_fold`'s
    order; a copy is its clip's speaker) and of every validation row."""
    speaker = speaker_ids(manifest)
    return speaker[_training_rows(fold, augmented)], speaker[fold.val]


def corpus_weights(manifest: pd.DataFrame, fold: Fold,
                   augmented: dict[str, tuple[np.ndarray, np.ndarray]] | None) -> tuple[np.ndarray, np.ndarray]:
    """Sample weights (train rows in :func:`assemble_fold`'s order, validation rows) that
    give every corpus the same total weight: ``training.balance: corpus``."""
    corpus = manifest["corpus"].astype(str).to_numpy()
    train = corpus[_training_rows(fold, augmented)]
    side = np.concatenate([train, corpus[fold.val]])
    names, counts = np.unique(side, return_counts=True)
    share = dict(zip(names, len(side) / (len(names) * counts)))
    return np.array([share[c] for c in train]), np.array([share[c] for c in corpus[fold.val]])


def _check_resumable(fold_dir: Path, spec: dict[str, Any]) -> None:
    """Refuse to mix a finished fold made by a different config into this experiment."""
    import yaml

    try:
        old = yaml.safe_load((fold_dir / "config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return
    if old.get("fingerprint") and old["fingerprint"] != fingerprint(spec):
        raise SpecError(f"{fold_dir} was made with a different config (labels, corpus, model...); "
                        f"use --set name=NEW_NAME or another --out folder, or delete it")


# --------------------------------------------------------------------------- units of work
@dataclasses.dataclass
class VariantData:
    """The arrays the folds of a variant train on, for one (corpus, parameters).

    ``X`` (n_clips, ...) features aligned to the rows of ``manifest`` (the clips whose
    features worked), ``y`` (n_clips,) class indices in label-set order, ``augmented``
    the train-only copies (:func:`augmented_for`), ``n_skipped`` the clips left out.
    Variants with the same :attr:`key` (:func:`data_key`) share one instance.
    """

    key: str
    X: np.ndarray
    y: np.ndarray
    manifest: pd.DataFrame
    augmented: dict[str, tuple[np.ndarray, np.ndarray]]
    n_skipped: int = 0


@dataclasses.dataclass(frozen=True)
class FoldTask:
    """One (variant, fold): the unit of work an executor runs. Picklable, so it can be
    sent to a Ray worker. ``workdir`` is the driver's working directory (relative paths
    of the spec resolve against it), empty to stay where the process is."""

    spec: dict[str, Any]
    fold: Fold
    fold_dir: str
    workdir: str = ""

    @property
    def variant(self) -> str:
        return str(self.spec["variant"]["name"])


@dataclasses.dataclass
class VariantPlan:
    """What is left of one variant: its unfinished folds as tasks, and their arrays."""

    spec: dict[str, Any]
    tasks: list[FoldTask]
    data: VariantData


@dataclasses.dataclass(frozen=True)
class TaskFailure:
    """A (variant, fold) that failed, with the last line of its error."""

    variant: str
    fold: str
    error: str

    def __str__(self) -> str:
        return f"{self.variant}/{self.fold}: {self.error}"


class RunFailures(RuntimeError):
    """Some tasks failed; every other one finished and was kept.

    ``failures`` name each failed (variant, fold) and its error's last line;
    ``summary`` is the summary written from the folds that finished.
    """

    def __init__(self, failures: Sequence[TaskFailure], summary: pd.DataFrame) -> None:
        self.failures = list(failures)
        self.summary = summary
        super().__init__(f"{len(self.failures)} task(s) failed: " + "; ".join(map(str, self.failures)))


def error_line(err: BaseException) -> str:
    """The last line of an error: ``Type: message`` for a one-line error, the last
    non-empty line of a multi-line one (a remote traceback ends with ``Type: message``)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    return lines[-1] if len(lines) > 1 else f"{type(err).__name__}: {lines[0]}"


def data_key(spec: dict[str, Any]) -> str:
    """Digest of what a variant's arrays depend on: corpus (resolved root, channel),
    branch, label set, feature kind, preprocessing, detector and augmentations."""
    data = {"corpus": _resolved_corpus(spec),
            "branch": spec["branch"], "labels": spec["labels"], "kind": feature_kind(spec),
            "preprocessing": preprocessing_for(spec).to_dict(),
            "detector": spec["features"].get("detector"),
            "augment": list(spec["features"].get("augment") or [])}
    return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def plan_variant(spec: dict[str, Any], exp_dir: str | Path, *, cache_dir: str | Path | None = None,
                 progress: bool = True, shared: dict[str, VariantData] | None = None,
                 workdir: str = "") -> VariantPlan | None:
    """Everything before training for one ``audio``/``video`` variant: its finished folds
    checked (a different config is refused) and skipped, the arrays of the others
    extracted through the on-disk feature cache. ``shared`` (data key ->
    :class:`VariantData`) lets variants of the same corpus and feature parameters reuse
    one extraction. None when every fold is finished."""
    variant_dir = Path(exp_dir) / spec["variant"]["name"]
    manifest = load_manifest_for(spec)
    folds = make_folds(spec, manifest)
    todo = [f for f in folds if not store.fold_done(variant_dir / f.name)]
    for fold in folds:
        if store.fold_done(variant_dir / fold.name):
            _check_resumable(variant_dir / fold.name, spec)
    if not todo:
        return None
    key = data_key(spec)
    data = shared.get(key) if shared is not None else None
    if data is None:
        X, kept, failed = features_for(spec, manifest, cache_dir=cache_dir, progress=progress)
        if failed:
            log.warning("%d clip(s) skipped (features failed), e.g. %s: %s", len(failed), *failed[0])
            manifest = kept
        augmented = augmented_for(spec, manifest, cache_dir=cache_dir, progress=progress)
        y = encode_labels(manifest["emotion"].tolist(), preprocessing_for(spec).classes)
        data = VariantData(key, X, y, manifest, augmented, len(failed))
        if shared is not None:
            shared[key] = data
    if data.n_skipped:
        folds = make_folds(spec, data.manifest)  # the same protocol over the clips that worked
        todo = [f for f in folds if not store.fold_done(variant_dir / f.name)]
    tasks = [FoldTask(spec, fold, str(variant_dir / fold.name), workdir) for fold in todo]
    return VariantPlan(spec, tasks, data)


def run_fold_task(task: FoldTask, data: VariantData, *, progress: bool = False) -> dict[str, Any]:
    """Run one (variant, fold): train, evaluate and write the fold atomically
    (:func:`pipeline.research.results.write_fold`); returns its metrics. A plain function of
    picklable arguments, called in this process by the local executor and inside a
    Ray task by the Ray one."""
    import os

    previous = os.getcwd()
    move = bool(task.workdir) and os.path.isdir(task.workdir) and task.workdir != previous
    if move:
        os.chdir(task.workdir)
    try:
        return run_fold(task.spec, task.fold, data.X, data.y, data.manifest, Path(task.fold_dir),
                        augmented=data.augmented, n_skipped=data.n_skipped, progress=progress)
    finally:
        if move:
            os.chdir(previous)


def run_branch(spec: dict[str, Any], exp_dir: Path, *, cache_dir: str | Path | None = None,
               progress: bool = True) -> list[str]:
    """Runner of the ``audio`` and ``video`` branches: every unfinished fold of one variant."""
    from tqdm.auto import tqdm

    plan = plan_variant(spec, exp_dir, cache_dir=cache_dir, progress=progress)
    if plan is None:
        return []
    written = []
    for task in tqdm(plan.tasks, desc=spec["variant"]["name"], unit="fold", disable=not progress, leave=False):
        metrics = run_fold_task(task, plan.data, progress=progress)
        log.info("%s/%s: accuracy %.3f, UAR %.3f", spec["variant"]["name"], task.fold.name,
                 metrics["accuracy"], metrics["uar"])
        written.append(task.fold.name)
        results.write_summary(exp_dir)
    return written


def runner_for(branch: str) -> Callable[..., list[str]]:
    """The runner function registered for ``branch`` in :data:`BRANCH_RUNNERS`."""
    target = BRANCH_RUNNERS.get(branch)
    if target is None:
        raise SpecError(f"unknown branch {branch!r}; choose one of: {', '.join(BRANCH_RUNNERS)}")
    module, _, func = target.partition(":")
    try:
        return getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError):
        raise SpecError(f"the {branch!r} branch runner {target} is not available") from None


def executor_for(name: str) -> Callable[..., list[TaskFailure]]:
    """The executor function registered as ``name`` in :data:`EXECUTORS`."""
    target = EXECUTORS.get(name)
    if target is None:
        raise SpecError(f"unknown executor {name!r}; choose one of: {', '.join(EXECUTORS)}")
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)


def run_local(specs: Sequence[dict[str, Any]], exp_dir: Path, *, cache_dir: str | Path | None = None,
              progress: bool = True) -> list[TaskFailure]:
    """The default executor: variant after variant, fold after fold, in this process.
    The first error stops the run (the folds finished before it are kept)."""
    for spec in specs:
        started = time.perf_counter()
        written = runner_for(spec["branch"])(spec, exp_dir, cache_dir=cache_dir, progress=progress)
        if written:
            log.info("variant %s: %d fold(s) in %.1f s", spec["variant"]["name"], len(written),
                     time.perf_counter() - started)
    return []


def run_spec(spec_path: str | Path, overrides: Sequence[str] = (), only: Sequence[str] | None = None,
             out: str | Path | None = None, progress: bool = True, *,
             cache_dir: str | Path | None = None, executor: str = "local",
             executor_options: dict[str, Any] | None = None) -> pd.DataFrame:
    """Run every (selected) variant x fold of a spec; returns the experiment's summary.

    Writes ``<out>/<name>/spec.yaml`` (resolved), each fold atomically, and
    ``summary.csv`` after every fold. Folds already finished are skipped.
    ``executor`` names an entry of :data:`EXECUTORS` (``local`` or ``ray``), given
    ``executor_options`` (Ray: ``address``, ``cpus_per_task``, ``gpus_per_task``...).
    When some tasks fail (Ray executor), the summary of what finished is written and
    :class:`RunFailures` is raised, naming each failed (variant, fold).
    """
    run = executor_for(executor)
    base = resolve(load_spec(spec_path), overrides)
    specs = variant_specs(base, only)
    for spec in specs:
        validate(spec)
    exp_dir = Path(out or paths.runs_dir()) / paths.safe_name(str(base["name"]), "the experiment name")
    exp_dir.mkdir(parents=True, exist_ok=True)
    removed = results.clean_partial(exp_dir)
    if removed:
        log.info("removed %d unfinished fold folder(s) from an interrupted run", removed)
    # A rerun's spec replaces the saved one only once its folds ran: one refused for a
    # changed config (plan_variant) must not leave a spec.yaml that its folds contradict.
    fresh = not (exp_dir / "spec.yaml").is_file()
    if fresh:
        results.write_spec(exp_dir, base)
    failures = run(specs, exp_dir, cache_dir=cache_dir, progress=progress, **(executor_options or {}))
    if not fresh:
        results.write_spec(exp_dir, base)
    summary = results.write_summary(exp_dir)
    if only:
        picked = summary.loc[summary["variant"].isin(list(only))].reset_index(drop=True)
        # a fusion spec's variants (protocols) write rows named audio, video, fusion_*...
        summary = picked if len(picked) or "fusion" not in {s["branch"] for s in specs} else summary
    if failures:
        raise RunFailures(failures, summary)
    return summary
