"""From finished runs to a bundle (research side): choose the fold that serves, carry
its run's measured metrics, refit or choose the fuser, write the bundle.

``python -m pipeline export --audio runs/X/variant --video runs/Y/variant
[--fusion runs/Z/fusion_mlp | --fusion-rule reliability]`` calls :func:`export_bundle`.
The bundle's layout and :func:`pipeline.serve.bundle.load_bundle` belong to the serving
side, :mod:`pipeline.serve.bundle`, which never imports this module; :func:`write_bundle`
writes that layout here. The two paths meet only in the files.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.research.staging import staged_dir
from pipeline.serve.bundle import BUNDLE_FILE, FORMAT_VERSION, BranchModel, BundleError
from pipeline.core.preprocessing import Preprocessing
from pipeline.core.scaling import Scaling

log = logging.getLogger(__name__)


SUMMARY_METRICS: tuple[str, ...] = ("accuracy", "uar", "macro_f1", "ece")



# --------------------------------------------------------------------------- writing
def shared_classes(*class_sets: tuple[str, ...]) -> tuple[str, ...]:
    """The emotions every branch can name, in the first branch's order: the classes a
    bundle fuses over (branches trained on different label sets are fused on these)."""
    first, *rest = class_sets
    return tuple(c for c in first if all(c in other for other in rest))


def _atomic_json(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, default=_json_default)
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _save_model(model: Any, framework: str, folder: Path) -> str:
    """Write a Keras or scikit-learn model into ``folder``; return the file name.
    ``model`` may also be the path of a saved model file, which is copied as is."""
    import joblib

    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(model, (str, Path)):
        source = Path(model)
        shutil.copy2(source, folder / source.name)
        return source.name
    if framework == "keras":
        model.save(folder / "model.keras")
        return "model.keras"
    joblib.dump(model, folder / "model.joblib")
    return "model.joblib"


def write_bundle(out: str | os.PathLike[str], *, name: str, audio: BranchModel | None,
                 video: BranchModel | None, fusion: Any = None,
                 extra: dict[str, Any] | None = None, card_info: dict[str, Any] | None = None) -> Path:
    """Write a bundle folder from in-memory models (temp folder, then rename).

    Branches may have different label sets: the bundle fuses over the emotions both
    name (:func:`shared_classes`). Either may be None (a one-branch bundle). ``fusion``
    is a serving fuser (:mod:`pipeline.serve.fusion`: ``LateFusion``, ``ReliabilityFusion``,
    ``SingleBranch``) or None.
    """
    import joblib

    branches = {b.branch: b for b in (audio, video) if b is not None}
    if not branches:
        raise BundleError("a bundle needs at least one branch model")
    classes = shared_classes(*(b.params.classes for b in branches.values()))
    if len(classes) < 2:
        raise BundleError("the audio and video models share fewer than two emotions: nothing to fuse")
    out = Path(out)
    with staged_dir(out, prefix=f".{out.name}-", marker="bundle.json") as tmp:
        meta_models: dict[str, Any] = {}
        for key, branch in branches.items():
            file = _save_model(branch.loaded(), branch.framework, tmp / key)
            info = {"model": branch.model_name, "framework": branch.framework,
                    "input_kind": branch.input_kind, "file": f"{key}/{file}",
                    "full_frame": bool(branch.full_frame), "preprocessing": branch.params.to_dict(),
                    "metrics": branch.metrics, **branch.info}
            if branch.scaler is not None:
                joblib.dump(branch.scaler, tmp / key / "scaler.joblib")
                info["scaler"] = f"{key}/scaler.joblib"
            for mode, model in branch.calibrated.items():
                target = tmp / key / f"model_{mode}.joblib"
                shutil.copy2(model, target) if isinstance(model, (str, Path)) else joblib.dump(model, target)
                info.setdefault("calibrated", {})[mode] = f"{key}/model_{mode}.joblib"
            if branch.reference is not None:
                joblib.dump(branch.reference, tmp / key / "reference.joblib")
                info["reference"] = f"{key}/reference.joblib"
            if branch.temperature:
                info["temperature"] = dict(branch.temperature)
            if branch.views != "none":
                info["views"] = branch.views
            if branch.scaling is not None:
                info["scaling"] = branch.scaling.to_dict()
            meta_models[key] = info
        if fusion is not None:
            (tmp / "fusion").mkdir()
            joblib.dump(fusion, tmp / "fusion" / "model.joblib")
            meta_models["fusion"] = {"file": "fusion/model.joblib", **fusion.describe(),
                                     "model": fusion.name, **(extra or {}).get("fusion", {})}
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        digest = hashlib.sha1(json.dumps(meta_models, sort_keys=True, default=_json_default).encode()
                              + created.encode()).hexdigest()[:10]
        labels = {b.params.labels for b in branches.values()}
        meta = {"format": FORMAT_VERSION, "id": f"{name}-{digest}", "name": name, "created": created,
                "classes": list(classes), "labels": labels.pop() if len(labels) == 1 else "shared",
                "models": meta_models,
                **{k: v for k, v in (extra or {}).items() if k != "fusion"}}
        if card_info is not None:
            from pipeline.research.cards import CARD_FILE, render_card

            meta["cards"] = [CARD_FILE]
            (tmp / CARD_FILE).write_text(render_card(meta, card_info), encoding="utf-8")
        _atomic_json(tmp / BUNDLE_FILE, meta)
    log.info("bundle %s written to %s", name, out)
    return out



def portable_path(path: str | os.PathLike[str]) -> str:
    """``path`` relative to the working directory when it lies inside it (what a bundle
    records as its source run, so a committed bundle names no machine's folders), else
    as given."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)

def variant_metrics(variant_dir: Path) -> dict[str, Any]:
    """:func:`run_metrics` of a variant's main protocol (speaker preferred) plus, when it
    ran leave-one-corpus-out, ``corpus``: each held-out corpus's figures by name."""
    from pipeline.research import store

    protocol, folds = _protocol_folds(variant_dir)
    metrics = run_metrics(variant_dir, protocol, folds)
    corpus_folds = [n for n in store.folds(variant_dir.parent, variant_dir.name) if n.startswith("corpus-")]
    if corpus_folds:
        metrics["corpus"] = {n.split("-", 1)[1]: run_metrics(variant_dir, "corpus", [n]) for n in corpus_folds}
    return metrics


def _protocol_folds(variant_dir: Path) -> tuple[str, list[str]]:
    """(protocol, its finished folds) of a run variant, preferring ``speaker``."""
    from pipeline.research import store

    names = store.folds(variant_dir.parent, variant_dir.name)
    if not names:
        raise BundleError(f"{variant_dir} holds no finished fold; run its experiment first")
    for protocol in ("speaker", "random"):
        chosen = [n for n in names if n.startswith(protocol + "-")]
        if chosen:
            if protocol == "speaker":
                _check_finished(variant_dir, len(chosen))
            return protocol, chosen
    return names[0].split("-")[0], names


def _check_finished(variant_dir: Path, finished: int) -> None:
    """Refuse a speaker-fold variant whose run stopped before all its folds were done:
    what its bundle says it trained on (and so ``evaluate``'s in-sample check) comes
    from the other folds' test sides."""
    import yaml

    try:
        spec = yaml.safe_load((variant_dir.parent / "spec.yaml").read_text(encoding="utf-8")) or {}
        planned = int((spec.get("protocol") or {}).get("folds") or 0)
    except (OSError, ValueError, TypeError, yaml.YAMLError):
        return
    if 0 < finished < planned:
        raise BundleError(f"{variant_dir} has {finished} of its {planned} speaker folds finished; rerun its "
                          "experiment to finish them before exporting")


def run_metrics(variant_dir: Path, protocol: str, folds: list[str]) -> dict[str, Any]:
    """Mean and sample std over the folds of one protocol (fractions), as measured, plus
    the confusion matrix summed over the folds' test sides (rows true, columns
    predicted, in ``classes`` order) and the recall per class it implies."""
    values: dict[str, list[float]] = {k: [] for k in SUMMARY_METRICS}
    confusion: np.ndarray | None = None
    classes: list[str] = []
    for fold in folds:
        metrics = json.loads((variant_dir / fold / "metrics.json").read_text(encoding="utf-8"))
        for key in SUMMARY_METRICS:
            if metrics.get(key) is not None:
                values[key].append(float(metrics[key]))
        if metrics.get("confusion") is not None:
            matrix = np.asarray(metrics["confusion"], dtype=np.int64)
            confusion = matrix if confusion is None or confusion.shape != matrix.shape else confusion + matrix
            classes = list(metrics.get("classes") or classes)
    out: dict[str, Any] = {"protocol": protocol, "n_folds": len(folds)}
    for key, vals in values.items():
        if vals:
            out[f"{key}_mean"] = float(np.mean(vals))
            out[f"{key}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
    if confusion is not None and len(classes) == len(confusion):
        support = confusion.sum(axis=1)
        out["classes"] = classes
        out["confusion"] = confusion.tolist()
        out["per_class_recall"] = {c: float(confusion[i, i] / support[i]) for i, c in enumerate(classes)
                                   if support[i] > 0}
        out["n_test"] = int(support.sum())
    return out


def pick_fold(variant_dir: Path, folds: list[str]) -> tuple[str, str]:
    """The fold whose model serves, and why.

    Keras runs: the fold with the lowest validation loss (its early-stopping criterion;
    test scores are not looked at). scikit-learn runs have no validation history: the
    fold with the median test accuracy, so the choice neither flatters nor sinks it.
    """
    import pandas as pd

    losses = {}
    for fold in folds:
        history = variant_dir / fold / "history.csv"
        if history.is_file():
            frame = pd.read_csv(history)
            if "val_loss" in frame and frame["val_loss"].notna().any():
                losses[fold] = float(frame["val_loss"].min())
    if len(folds) == 1:
        return folds[0], f"fold {folds[0]}: the only fold"
    if losses:
        best = min(losses, key=losses.get)
        return best, f"fold {best}: lowest validation loss ({losses[best]:.3f}) of {len(folds)} folds"
    accs = {f: json.loads((variant_dir / f / "metrics.json").read_text())["accuracy"] for f in folds}
    ranked = sorted(accs, key=accs.get)
    median = ranked[(len(ranked) - 1) // 2]
    return median, f"fold {median}: median test accuracy of {len(folds)} folds (no validation history)"


def trained_on(variant_dir: Path, folds: list[str], fold: str, protocol: str, config: dict[str, Any]) -> dict[str, Any]:
    """What the serving ``fold`` learned from, for ``evaluate``'s in-sample check:
    ``corpus`` (the adapter's name), ``root`` (the last two parts of the corpus folder,
    e.g. ``fer2013/train``) and, for the speaker protocol, ``actors``: every actor on
    the test side of the variant's folds except this fold's own (ids without leading
    zeros). A model trained on every clip (an ``all`` fold) also names, for each corpus
    in ``also``, the actors it trained on (read from that fold's own predictions, whose
    clip ids begin with the corpus), so that a copy of those clips in another folder is
    still known as seen. An empty dict when the run's config names no corpus."""
    import pandas as pd

    from pipeline.core.corpora.manifest import actor_key, sorted_actors

    corpus = config.get("corpus") or {}
    corpora = corpus if isinstance(corpus, list) else [corpus]
    if not corpora or not corpora[0].get("name"):
        return {}
    corpus = corpora[0]
    root = str(corpus.get("root") or "")
    out: dict[str, Any] = {"corpus": str(corpus["name"]), "root": "/".join(Path(root).parts[-2:]) if root else ""}
    if len(corpora) > 1:  # every clip of the other corpora was on the training side
        out["also"] = [{"corpus": str(c["name"]), "root": "/".join(Path(str(c.get("root", ""))).parts[-2:])}
                       for c in corpora[1:]]
        own = variant_dir / fold / "predictions.csv"
        if fold.startswith("all") and own.is_file():  # in-sample predictions: every training clip
            table = pd.read_csv(own, usecols=["clip_id", "actor"], dtype=str).dropna()
            where = table["clip_id"].str.split(":", n=1).str[0]
            for entry in out["also"]:
                entry["actors"] = sorted_actors({actor_key(a) for a in table["actor"][where == entry["corpus"]]})
    if protocol == "speaker":
        tested: dict[str, set[str]] = {}
        for name in folds:
            table = pd.read_csv(variant_dir / name / "predictions.csv", usecols=["actor"], dtype=str)
            tested[name] = {actor_key(a) for a in table["actor"].dropna()}
        everyone = set().union(*tested.values())
        out["actors"] = sorted_actors(everyone - tested.get(fold, set()))
    return out


def _branch_from_run(variant_dir: Path, branch: str) -> BranchModel:
    """A BranchModel (model as a file path) from a finished run variant folder."""
    import yaml

    protocol, folds = _protocol_folds(variant_dir)
    fold, why = pick_fold(variant_dir, folds)
    if (variant_dir / "all-0" / "metrics.json").is_file():  # a model trained on every clip serves
        fold, why = "all-0", (f"trained on every clip of the run (the all protocol); its figures are the "
                              f"{protocol} folds'")
    fold_dir = variant_dir / fold
    config = yaml.safe_load((fold_dir / "config.yaml").read_text(encoding="utf-8")) or {}
    model_file = next((fold_dir / n for n in ("model.keras", "model.joblib") if (fold_dir / n).is_file()), None)
    if model_file is None:
        raise BundleError(f"{fold_dir} holds no model file")
    if config.get("branch") not in (None, branch):
        raise BundleError(f"{variant_dir} is a {config.get('branch')} run, not a {branch} run")
    params = Preprocessing.from_dict(config.get("preprocessing_params") or
                                     {**(config.get("preprocessing") or {}), "labels": config.get("labels", "six")})
    kind = str(config.get("feature_kind") or (config.get("features") or {}).get("kind", ""))
    full_frame = kind == "frames_full" or bool((config.get("features") or {}).get("full_frame"))
    metrics = variant_metrics(variant_dir)
    fold_metrics = json.loads((fold_dir / "metrics.json").read_text(encoding="utf-8"))
    if fold != "all-0":
        metrics["serving_fold_accuracy"] = float(fold_metrics.get("accuracy", float("nan")))
    for key in ("per_class_ece", "before_recalibration", "recalibration_protocol"):
        if fold_metrics.get(key):
            metrics[key] = fold_metrics[key]
    serving = config.get("serving") or {}
    scaling = Scaling.from_dict(serving["scaling"]) if serving.get("scaling") else None
    return BranchModel(
        branch=branch, model_name=str((config.get("model") or {}).get("name", "")),
        framework=str(config.get("framework") or ("keras" if model_file.suffix == ".keras" else "sklearn")),
        input_kind=kind if kind == "faces" else ("frames" if branch == "video" else kind), params=params,
        model=model_file,
        full_frame=full_frame, metrics=metrics, views=str(serving.get("views") or "none"), scaling=scaling,
        info={"protocol": protocol, "serving": why, "source": portable_path(variant_dir),
              "experiment": str(config.get("experiment", variant_dir.parent.name)),
              "detector": (config.get("features") or {}).get("detector"),
              "trained_on": trained_on(variant_dir, folds, fold, protocol, config)})


def branch_from_bundle(bundle: Path, branch: str) -> BranchModel:
    """One branch of an existing bundle as it is (model file, scaler, speaker-normalised
    models, temperatures, feature reference, test-time views, recalibration, preprocessing,
    record), to carry it into a new bundle unchanged."""
    import joblib

    from pipeline.core.scaling import Scaling

    meta = json.loads((bundle / BUNDLE_FILE).read_text(encoding="utf-8")) if (bundle / BUNDLE_FILE).is_file() else {}
    info = dict((meta.get("models") or {}).get(branch) or {})
    if not info or not (bundle / info.get("file", "")).is_file():
        raise BundleError(f"{bundle} holds no {branch} model to carry over")
    files = [info.get("scaler"), info.get("reference"), *(info.get("calibrated") or {}).values()]
    missing = [f for f in files if f and not (bundle / f).is_file()]
    if missing:
        raise BundleError(f"{bundle} is incomplete: {', '.join(missing)} missing")
    core = ("model", "framework", "input_kind", "file", "full_frame", "preprocessing", "metrics", "scaler",
            "calibrated", "temperature", "reference", "views", "scaling")
    return BranchModel(branch=branch, model_name=str(info["model"]), framework=str(info["framework"]),
                       input_kind=str(info["input_kind"]), params=Preprocessing.from_dict(info["preprocessing"]),
                       model=bundle / info["file"], full_frame=bool(info.get("full_frame")),
                       metrics=dict(info.get("metrics") or {}),
                       scaler=joblib.load(bundle / info["scaler"]) if info.get("scaler") else None,
                       calibrated={str(m): bundle / f for m, f in (info.get("calibrated") or {}).items()},
                       temperature={str(m): float(t) for m, t in (info.get("temperature") or {}).items()},
                       reference=joblib.load(bundle / info["reference"]) if info.get("reference") else None,
                       views=str(info.get("views") or "none"),
                       scaling=Scaling.from_dict(info["scaling"]) if info.get("scaling") else None,
                       info={k: v for k, v in info.items() if k not in core})


def _fusion_from_run(fusion_dir: Path, classes: tuple[str, ...]) -> tuple[Any, dict[str, Any]]:
    """Refit the run's fuser on every out-of-fold branch probability of its experiment.

    The fusion experiment's ``audio``/``video`` test predictions give, for every clip,
    probabilities from branch models that never saw it (one fold per clip under the
    speaker protocol): exactly what a served branch model produces for a new person.
    """
    import yaml

    from pipeline.research import store
    from pipeline.research.fusion_runs import _aligned
    from pipeline.serve.fusion import LateFusion

    protocol, folds = _protocol_folds(fusion_dir)
    config = yaml.safe_load((fusion_dir / folds[0] / "config.yaml").read_text(encoding="utf-8")) or {}
    name = str(config.get("fuser") or fusion_dir.name)
    exp_dir = fusion_dir.parent
    frames = {}
    for b in ("audio", "video"):
        preds = store.load_predictions(exp_dir, b)
        if preds.empty:
            raise BundleError(f"{exp_dir} has no {b} predictions to refit the fuser on")
        frames[b] = preds.loc[preds["fold"].astype(str).str.startswith(protocol + "-")]
    pa, pv, y, _ = _aligned(frames, classes)
    fuser = LateFusion(name, classes=classes, random_state=0).fit(pa, pv, y)
    metrics = run_metrics(fusion_dir, protocol, folds)
    info = {"metrics": metrics, "protocol": protocol, "source": portable_path(fusion_dir),
            "serving": f"{name} refit on the out-of-fold audio and video probabilities of all "
                       f"{len(y)} clips ({protocol} protocol)"}
    return fuser, info


def never_worse(fusion_dir: Path, fuser: Any, classes: tuple[str, ...]) -> tuple[Any, dict[str, Any]]:
    """Keep the fuser only if it beats the better single branch on held-out clips.

    Compares, in the fusion experiment's ``summary.csv`` (the same out-of-fold clips for
    every row), the fuser's mean UAR with the ``audio`` and ``video`` rows'. When the
    fuser is not strictly better, a :class:`pipeline.serve.fusion.SingleBranch` of the better
    branch serves instead, and the returned info says so.
    """
    import pandas as pd

    from pipeline.serve.fusion import SingleBranch

    summary = fusion_dir.parent / "summary.csv"
    if not summary.is_file():
        return fuser, {}
    frame = pd.read_csv(summary)
    protocol = _protocol_folds(fusion_dir)[0]
    rows = frame.loc[frame["protocol"] == protocol].set_index("variant")
    needed = [fusion_dir.name, "audio", "video"]
    if not all(n in rows.index for n in needed):
        return fuser, {}
    score = {n: float(rows.loc[n, "uar_mean"]) for n in needed}
    best = max(("audio", "video"), key=lambda b: score[b])
    check = {"held_out_uar": {k: round(v, 4) for k, v in score.items()}, "protocol": protocol}
    if score[fusion_dir.name] > score[best]:
        return fuser, {"never_worse": {**check, "kept": True}}
    reason = "fusion did not help on held-out clips"
    log.warning("%s: %s UAR %.3f <= %s alone %.3f; the bundle answers with %s alone",
                fusion_dir.name, fusion_dir.name, score[fusion_dir.name], best, score[best], best)
    return SingleBranch(best, classes, reason), {"never_worse": {**check, "kept": False, "serving": best}}


def reliability_fusion(audio: BranchModel, video: BranchModel, classes: tuple[str, ...]) -> Any:
    """A :class:`pipeline.serve.fusion.ReliabilityFusion` weighted by each branch's held-out UAR
    (mean over its run's folds, as exported in its metrics)."""
    from pipeline.serve.fusion import ReliabilityFusion, reliability_weights

    ua, uv = (float(b.metrics.get("uar_mean", 0.0)) for b in (audio, video))
    wa, _ = reliability_weights(ua, uv, len(classes))
    basis = (f"held-out UAR above chance (1/{len(classes)}): audio {ua:.3f} ({audio.metrics.get('protocol', '?')}), "
             f"video {uv:.3f} ({video.metrics.get('protocol', '?')})")
    return ReliabilityFusion(wa, classes, basis)


def export_bundle(audio_run: str | os.PathLike[str] | None, video_run: str | os.PathLike[str] | None,
                  fusion_run: str | os.PathLike[str] | None = None, *, out: str | os.PathLike[str] | None = None,
                  name: str = "demo", fusion_rule: str | None = None,
                  card: str | os.PathLike[str] | None = None,
                  video_bundle: str | os.PathLike[str] | None = None,
                  audio_bundle: str | os.PathLike[str] | None = None,
                  audio_calibrated: dict[str, str | os.PathLike[str]] | None = None) -> Path:
    """Export finished runs (``runs/<experiment>/<variant>`` folders) as a bundle.

    Each branch serves one fold model (see :func:`pick_fold`) and carries the mean +-
    std metrics of its run's folds. The fused answer: a learned fuser refit as
    :func:`_fusion_from_run` says, kept only if it beats the better branch on held-out
    clips (:func:`never_worse`); or, with ``fusion_rule="reliability"`` (branches from
    different corpora, no paired clips), :func:`reliability_fusion`. ``card``: a model
    card YAML (:mod:`pipeline.research.cards`) rendered into the bundle's ``MODEL_CARD.md``.
    ``video_bundle``: take the video branch as it is from an existing bundle (its model
    file and record) instead of a run; ``audio_bundle`` the same for the audio branch (with
    its speaker-normalised models, temperatures and reference). ``audio_calibrated``: calibration mode ->
    run variant whose ``all-0`` model answers speaker-normalised features
    (:func:`pipeline.research.voice_export.voice_extras`: with it, the temperatures
    fitted on held-out corpora and the training features' reference).
    Returns the bundle folder (``bundles/<name>`` by default).
    """
    from pipeline.core import paths
    from pipeline.research.cards import load_card_info

    if not audio_run and not video_run and not video_bundle and not audio_bundle:
        raise BundleError("export needs at least --audio or --video (a runs/<experiment>/<variant> folder)")
    if video_run and video_bundle:
        raise BundleError("give either --video (a run) or --video-from-bundle, not both")
    if audio_run and audio_bundle:
        raise BundleError("give either --audio (a run) or --audio-from-bundle, not both")
    branches: dict[str, BranchModel | None] = {}
    for branch, run in (("audio", audio_run), ("video", video_run)):
        if run:
            run = Path(run)
            if not run.is_dir():
                raise BundleError(f"run folder not found: {run}")
            branches[branch] = _branch_from_run(run, branch)
        else:
            branches[branch] = None
    if video_bundle:
        branches["video"] = branch_from_bundle(Path(video_bundle), "video")
    if audio_bundle:
        branches["audio"] = branch_from_bundle(Path(audio_bundle), "audio")
    if audio_calibrated is not None and branches["audio"] is not None:
        from pipeline.research.voice_export import voice_extras

        folders = {m: Path(d) for m, d in audio_calibrated.items()}
        voice_extras(branches["audio"], Path(str(audio_run)), folders,
                     {m: variant_metrics(d) for m, d in folders.items()})
    classes = shared_classes(*(b.params.classes for b in branches.values() if b is not None))
    fuser, extra = None, {}
    if fusion_run and fusion_rule:
        raise BundleError("give either a fusion run or a fusion rule, not both")
    if fusion_run:
        if not (branches["audio"] and branches["video"]):
            raise BundleError("a fusion model needs both an audio and a video run")
        if not Path(fusion_run).is_dir():
            raise BundleError(f"run folder not found: {fusion_run}")
        fuser, info = _fusion_from_run(Path(fusion_run), classes)
        fuser, check = never_worse(Path(fusion_run), fuser, classes)
        extra["fusion"] = {**info, **check}
        if check.get("never_worse", {}).get("kept") is False:
            extra["fusion"]["serving"] = f"{fuser.branch} alone: {fuser.reason} ({info.get('serving', '')})"
    elif fusion_rule:
        if fusion_rule != "reliability":
            raise BundleError(f"unknown fusion rule {fusion_rule!r}; the only rule is 'reliability'")
        if not (branches["audio"] and branches["video"]):
            raise BundleError("a fusion rule needs both an audio and a video run")
        fuser = reliability_fusion(branches["audio"], branches["video"], classes)
        extra["fusion"] = {"serving": f"weighted mean of the branches' probabilities; weights from "
                                      f"{fuser.basis}", "metrics": {}}
    detector = (branches["video"].info.get("detector") if branches["video"] else None) or "mtcnn"
    extra["detector"] = detector
    target = Path(out) if out else paths.bundles_dir() / name
    return write_bundle(target, name=name, audio=branches["audio"], video=branches["video"],
                        fusion=fuser, extra=extra,
                        card_info=load_card_info(card) if card else None)
