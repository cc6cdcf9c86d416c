"""``python -m pipeline evaluate``: score a saved bundle on any indexed corpus.

The way a researcher checks a model on data it never saw (cross-corpus; a run on data
the bundle's models were trained on is flagged in-sample, :func:`in_sample`): index the
corpus (:mod:`pipeline.core.corpora`), keep the clips whose emotion the bundle can name
(others are skipped and counted), compute each branch's input with the very functions
serving uses (:func:`pipeline.research.features.compute`, cached on disk and run in parallel),
predict with the bundle's models (per-frame face models pooled by :func:`pipeline.core.video.pool_frames`),
fuse with the bundle's fuser, and score (:func:`pipeline.research.evaluation.evaluate`).

The run is written to the results store as
``<out>/evaluate/<bundle>-<corpus>-<branch>[-actors]/eval-N/`` (a new N each run) (``config.yaml``,
``metrics.json``, ``predictions.csv``), which the Results page lists under its
cross-corpus heading.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.core.corpora.manifest import actor_key, sorted_actors

log = logging.getLogger(__name__)

BRANCHES: tuple[str, ...] = ("audio", "video", "fused")
#: Experiment folder (under the results store root) that holds evaluate runs.


class EvaluateError(ValueError):
    """A bundle, corpus, root or option that cannot be evaluated, with a one-line reason."""


@dataclass
class EvaluationResult:
    """What ``evaluate`` measured: counts, metrics and where the run was written."""

    corpus: str
    root: str
    branch: str
    bundle: str
    labels: list[str]
    n: int
    skipped: dict[str, int]
    metrics: dict[str, Any]
    seconds: float
    run_dir: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)
    #: Why these clips are not unseen by the bundle ("" when they are): :func:`in_sample`.
    in_sample: str = ""
    #: The voice's per-speaker normalisation (``none``, ``neutral``, ``session``).
    calibration: str = "none"

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object (fractions in [0, 1])."""
        m = self.metrics
        return {
            "bundle": self.bundle, "corpus": self.corpus, "root": self.root, "branch": self.branch,
            "in_sample": bool(self.in_sample), "in_sample_reason": self.in_sample,
            "calibration": self.calibration,
            "labels": self.labels, "n": self.n, "skipped": self.skipped,
            "accuracy": m.get("accuracy"), "uar": m.get("uar"), "macro_f1": m.get("macro_f1"),
            "ece": m.get("ece"), "per_class_recall": m.get("per_class_recall", {}),
            "confusion": m.get("confusion"), "seconds": round(self.seconds, 2),
            "clips_per_second": round(self.n / self.seconds, 2) if self.seconds > 0 else None,
            "timings": {k: round(v, 2) for k, v in self.timings.items()},
            "run": str(self.run_dir) if self.run_dir else None,
        }


def parse_actors(text: str | None) -> set[str] | None:
    """``"17-24"``, ``"1,3,5"`` or ``"01-04,DC"`` -> a set of actor ids; numbers are
    matched with or without leading zeros (None: every actor). Raises EvaluateError."""
    if not text:
        return None
    out: set[str] = set()
    for part in (p.strip() for p in text.split(",") if p.strip()):
        match = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        if match:
            lo, hi = int(match.group(1)), int(match.group(2))
            if lo > hi:
                raise EvaluateError(f"bad actor range {part!r}: the first number is larger")
            out.update(str(i) for i in range(lo, hi + 1))
        elif part.isdigit():
            out.add(str(int(part)))
        elif re.fullmatch(r"[\w.+-]+", part) and part not in (".", ".."):
            out.add(part)
        else:  # the list names the results folder too: no path parts
            raise EvaluateError(f"bad actor id {part!r}: use letters, digits, '-', '_' or '.'")
    return out


def _skip_key(branch: str, reason: str, path: str) -> str:
    """How a clip left out while scoring is counted: calibration reasons as they are
    (the takes used to calibrate under one key), failures by :func:`failure_reason`."""
    if reason.startswith("calibration: "):
        return reason
    if reason.startswith("calibration takes"):
        return "calibration takes"
    return f"{branch} failed: {failure_reason(reason, path)}"


def failure_reason(reason: str, path: str) -> str:
    """One clip's failure as a reason that clips share: the clip's own file name taken
    out (so 40 damaged files count as one reason, not 40), its first line, at most 100
    characters."""
    text = str(reason)
    if path:
        text = text.replace(str(path), "").replace(Path(str(path)).name, "")
    text = (text.strip().splitlines() or [""])[0].strip(" :")
    return (text[:97] + "...") if len(text) > 100 else (text or "unknown error")


def in_sample(bundle: Any, branches: list[str], corpus: str, root: Path, frame: pd.DataFrame) -> str:
    """Why the selected clips are not unseen by the bundle's models, or "" when nothing
    says they were seen: a branch's ``trained_on`` (written by ``export``) names this
    corpus and either some of the selected actors or, for a corpus without actors
    (image sets), the same folder (last two parts of the path). A corpus the model
    trained on whole (``also``) counts by its actors when the bundle lists them, so a
    copy of its clips in another folder is still in-sample."""
    reasons = []
    actors = set(frame["actor"].map(actor_key))
    for name in branches:
        seen = ((bundle.meta.get("models") or {}).get(name) or {}).get("trained_on") or {}
        also = [a for a in seen.get("also") or [] if a.get("corpus") == corpus]
        if also and also[0].get("actors"):
            overlap = sorted_actors(actors & set(also[0]["actors"]))
            if overlap:
                reasons.append(f"the {name} model was trained on every clip of {len(overlap)} of these speakers "
                               f"({', '.join(overlap[:8])}{' ...' if len(overlap) > 8 else ''})")
            continue
        if also and "/".join(root.resolve().parts[-2:]) == also[0].get("root"):
            reasons.append(f"the {name} model was trained on all of {also[0]['root']}")
            continue
        if seen.get("corpus") != corpus:
            continue
        if seen.get("actors"):
            overlap = sorted_actors(actors & set(seen["actors"]))
            if overlap:
                reasons.append(f"the {name} model was trained on {len(overlap)} of these actors "
                               f"({', '.join(overlap[:8])}{' ...' if len(overlap) > 8 else ''})")
        elif seen.get("root") and "/".join(root.resolve().parts[-2:]) == seen["root"]:
            reasons.append(f"the {name} model was trained on {seen['root']} (most of these clips)")
    return "; ".join(reasons)


def select(manifest: pd.DataFrame, classes: tuple[str, ...], actors: set[str] | None,
           modality: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """Rows the bundle can score, and counts of what was left out and why.

    Emotions are mapped to ``classes`` with :func:`pipeline.core.labels.map_emotion` (RAVDESS
    calm is dropped when the label set lacks it); rows without the branch's
    ``modality`` file and actors outside ``actors`` are left out too.
    """
    from pipeline.core.corpora.manifest import has_modality
    from pipeline.core.labels import map_emotion

    skipped: dict[str, int] = {}
    frame = manifest.copy()
    if actors is not None:
        present = frame["actor"].map(actor_key)
        unknown = sorted_actors(actors - set(present))
        if unknown and not (actors & set(present)):
            have = sorted_actors(set(present))
            raise EvaluateError(f"no actor {', '.join(unknown[:6])}{' ...' if len(unknown) > 6 else ''} in this "
                                f"corpus; its actors: {', '.join(have[:30])}{' ...' if len(have) > 30 else ''}")
        keep = present.isin(actors)
        if (~keep).sum():
            skipped["other actors"] = int((~keep).sum())
        frame = frame.loc[keep]
    mapped = frame["emotion"].map(lambda e: map_emotion(e, classes))
    for emotion, count in frame.loc[mapped.isna(), "emotion"].value_counts().items():
        skipped[f"emotion not in the bundle: {emotion}"] = int(count)
    frame = frame.loc[mapped.notna()].assign(emotion=mapped[mapped.notna()])
    if modality in ("audio", "video"):
        has = has_modality(frame, modality)
        if modality == "audio":
            has = has | has_modality(frame, "video")  # audio inside an AV file
        if (~has).sum():
            skipped[f"no {modality} file"] = int((~has).sum())
        frame = frame.loc[has]
    else:  # fused: both modalities
        has = (has_modality(frame, "audio") | has_modality(frame, "video")) & has_modality(frame, "video")
        if (~has).sum():
            skipped["not audio-visual"] = int((~has).sum())
        frame = frame.loc[has]
    return frame.reset_index(drop=True), skipped


def _branch_proba(branch: Any, frame: pd.DataFrame, cache_dir: Path, n_jobs: int, progress: bool,
                  detector: str | None, calibration: str = "none"
                  ) -> tuple[np.ndarray, pd.DataFrame, list[tuple[str, str]]]:
    """(n, C) probabilities of one branch over ``frame``'s clips (failures left out;
    under ``neutral`` calibration also the calm takes each speaker gave for it)."""
    from pipeline.research import features
    from pipeline.core.video import pool_frames

    kind = branch.input_kind
    if branch.branch == "video" and kind == "frames" and branch.full_frame:
        kind = "frames_full"
    failed: list[tuple[str, str]] = []
    X = features.extract(frame, kind, branch.params, cache_dir, n_jobs=n_jobs, progress=progress,
                         detector=detector if branch.branch == "video" else None, failed=failed)
    kept = features.drop_failed(frame, failed)
    if not len(kept):
        return np.zeros((0, len(branch.params.classes))), kept, failed
    X = np.asarray(X)
    if kind == "faces":  # the cached frames are already the model's input (video.face_input)
        frames = X.reshape(-1, *X.shape[2:])
        per_frame = np.concatenate([branch.predict_proba(frames[i:i + 1024]) for i in range(0, len(frames), 1024)])
        proba = np.stack([pool_frames(p) for p in per_frame.reshape(len(X), X.shape[1], -1)])
    elif calibration != "none" and branch.branch == "audio":
        return _calibrated_proba(branch, X, kept, failed, calibration)
    else:
        proba = np.concatenate([branch.predict_proba(X[i:i + 256]) for i in range(0, len(X), 256)])
    return proba, kept, failed


def _calibrated_proba(branch: Any, X: np.ndarray, kept: pd.DataFrame, failed: list[tuple[str, str]],
                      calibration: str) -> tuple[np.ndarray, pd.DataFrame, list[tuple[str, str]]]:
    """Probabilities with per-speaker normalisation (speakers as the corpus adapter
    names them): ``session`` standardises each speaker's clips by the speaker's other
    clips; ``neutral`` shifts them by the mean of two of the speaker's neutral takes
    (:func:`pipeline.research.splits.neutral_takes`), which are then not scored
    (reported as skipped ``calibration takes``). Labels are never used otherwise."""
    from pipeline.core.calibration import normalise_speakers
    from pipeline.research.splits import neutral_takes

    if calibration not in branch.calibrated:
        raise EvaluateError(f"bundle's voice model has no {calibration!r} calibration (it has: "
                            f"{', '.join(branch.modes())}); use --calibration none")
    flagged = neutral_takes(kept) if calibration == "neutral" else None
    speakers = kept["actor"].astype(str).to_numpy()
    Xn = normalise_speakers(np.asarray(X).reshape(len(X), -1), speakers, calibration, flagged)
    proba = branch.predict_proba(Xn.astype(np.float32), calibration)
    # A clip whose speaker cannot be calibrated is not scored as if it were: in session
    # mode the speaker's only clip, in neutral mode a speaker without calm takes.
    if calibration == "session":
        ids, counts = np.unique(speakers, return_counts=True)
        lost = np.isin(speakers, ids[counts < 2])
        why, drop = "calibration: the speaker's only clip (session needs their other clips)", lost
    else:
        lost = ~np.isin(speakers, np.unique(speakers[flagged]))
        why, drop = "calibration: no calm takes of this speaker", lost | flagged
        failed = failed + [(c, "calibration takes: used to calibrate, not scored") for c in kept.loc[flagged, "clip_id"]]
    failed = failed + [(c, why) for c in kept.loc[lost, "clip_id"]]
    proba, kept = proba[~drop], kept.loc[~drop].reset_index(drop=True)
    return proba, kept, failed


def _restrict(proba: np.ndarray, own: tuple[str, ...], classes: tuple[str, ...]) -> np.ndarray:
    """Columns of ``classes`` from probabilities over ``own``, renormalised."""
    idx = [own.index(c) for c in classes]
    p = np.asarray(proba, dtype=np.float64)[:, idx]
    total = p.sum(axis=1, keepdims=True)
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / len(classes))


def auto_branch(manifest: pd.DataFrame, bundle: Any) -> str:
    """The answer to score when none is named: ``fused`` when the clips are audio-visual
    (a video file each, sound in it) and the bundle has both models; else ``video`` for
    image or silent-video corpora, ``audio`` for sound-only ones."""
    from pipeline.core.corpora.manifest import has_modality

    video = bool(has_modality(manifest, "video").all())
    images = set(manifest["channel"].astype(str)) == {"image"}
    if video and not images and bundle.audio is not None and bundle.video is not None:
        return "fused"
    if video and bundle.video is not None:
        return "video"
    return "audio" if bundle.audio is not None else "video"


def evaluate_bundle(bundle_path: str | Path, corpus: str, root: str | Path, *, branch: str | None = None,
                    actors: str | None = None, out: str | Path | None = None,
                    cache_dir: str | Path | None = None, n_jobs: int = 2,
                    progress: bool = True, calibration: str = "none") -> EvaluationResult:
    """Score a bundle on an indexed corpus; write the run; return counts and metrics.

    ``branch``: ``audio``, ``video`` or ``fused`` (``fused`` needs both models and
    audio-visual clips); None picks from the corpus (:func:`auto_branch`).
    ``calibration``: the voice's per-speaker normalisation, ``none`` (default),
    ``neutral`` or ``session`` (:func:`_calibrated_proba`; speakers as the corpus
    adapter names them). Raises :class:`EvaluateError` for a bad bundle, corpus, root,
    branch, calibration or an empty selection.
    """
    from pipeline.core.calibration import MODES

    if calibration not in MODES:
        raise EvaluateError(f"unknown calibration {calibration!r}; choose one of: {', '.join(MODES)}")
    from pipeline.core import paths
    from pipeline.serve.bundle import BundleError, load_bundle
    from pipeline.core.corpora import CORPORA, scan
    from pipeline.research.evaluation import evaluate

    started = time.perf_counter()
    timings: dict[str, float] = {}
    if branch in (None, "auto"):
        branch = ""  # decided below, from what the corpus holds
    elif branch not in BRANCHES:
        raise EvaluateError(f"unknown branch {branch!r}; choose one of: {', '.join(BRANCHES)}")
    if corpus not in CORPORA:
        raise EvaluateError(f"unknown corpus {corpus!r}; choose one of: {', '.join(CORPORA)}")
    root = Path(root)
    if not root.is_dir():
        raise EvaluateError(f"corpus folder not found: {root}" if not root.exists()
                            else f"{root} is a file, not a corpus folder")
    try:
        bundle = load_bundle(bundle_path)
    except BundleError as err:
        raise EvaluateError(str(err)) from None
    timings["load_bundle"] = time.perf_counter() - started
    t = time.perf_counter()
    manifest, summary = scan(corpus, root)
    timings["index"] = time.perf_counter() - t
    if manifest.empty:
        raise EvaluateError(f"no {corpus} clips found under {root} ({summary.n_files_seen} files seen)")
    if not branch:
        branch = auto_branch(manifest, bundle)
    models_needed = ["audio", "video"] if branch == "fused" else [branch]
    missing = [b for b in models_needed if getattr(bundle, b) is None]
    if missing:
        raise EvaluateError(f"bundle {bundle.name} has no {' or '.join(missing)} model; "
                            f"choose --branch {'audio' if bundle.audio else 'video'}")
    classes = bundle.classes if branch == "fused" else getattr(bundle, branch).params.classes
    frame, skipped = select(manifest, classes, parse_actors(actors), branch)
    for reason, count in summary.skipped.items():  # what the corpus adapter left out, and why
        skipped[f"not indexed: {reason}"] = count
    if frame.empty:
        raise EvaluateError(f"none of the {len(manifest)} {corpus} clips can be scored by bundle "
                            f"{bundle.name} ({', '.join(f'{k}: {v}' for k, v in skipped.items())})")
    cache = Path(cache_dir) if cache_dir else paths.cache_dir()
    detector = bundle.detector_name
    probas: dict[str, pd.DataFrame] = {}
    for name in models_needed:
        t = time.perf_counter()
        model = getattr(bundle, name)
        proba, kept, failed = _branch_proba(model, frame, cache, n_jobs, progress, detector,
                                            calibration if name == "audio" else "none")
        timings[f"{name}_features_and_predict"] = time.perf_counter() - t
        column = "video_path" if name == "video" else "audio_path"
        files = dict(zip(frame["clip_id"], frame[column])) if column in frame else {}
        for clip_id, reason in failed:
            key = _skip_key(name, reason, files.get(clip_id, ""))
            skipped[key] = skipped.get(key, 0) + 1
        table = pd.DataFrame(_restrict(proba, model.params.classes, classes), columns=list(classes))
        table["clip_id"] = kept["clip_id"].to_numpy()
        probas[name] = table.set_index("clip_id")
    common = sorted(set.intersection(*(set(p.index) for p in probas.values())), key=list(frame["clip_id"]).index)
    if not common:
        raise EvaluateError("no clip could be scored (every clip failed; see the skipped counts)")
    frame = frame.set_index("clip_id").loc[common].reset_index()
    if branch == "fused":
        pa, pv = probas["audio"].loc[common].to_numpy(), probas["video"].loc[common].to_numpy()
        if bundle.fusion is None:
            proba = (pa + pv) / 2.0
        else:
            proba = np.stack([bundle.fusion.fuse(a, v).probabilities for a, v in zip(pa, pv)])
    else:
        proba = probas[branch].loc[common].to_numpy()
    y = frame["emotion"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    metrics = evaluate(y, proba, classes)
    metrics["per_class_recall"] = {c: metrics["report"][c]["recall"] for c in classes
                                   if metrics["report"][c]["support"] > 0}
    seconds = time.perf_counter() - started
    result = EvaluationResult(corpus=corpus, root=str(root), branch=branch, bundle=bundle.name,
                              labels=list(classes), n=int(len(y)), skipped=skipped, metrics=metrics,
                              seconds=seconds, timings=timings,
                              in_sample=in_sample(bundle, models_needed, corpus, root, frame),
                              calibration=calibration if "audio" in models_needed else "none")
    result.run_dir = _write(result, frame, proba, classes, bundle, actors,
                            Path(out) if out else paths.runs_dir())
    return result


def next_run_name(variant_dir: Path) -> str:
    """``eval-N`` with N one above the highest finished or started run in ``variant_dir``
    (``eval-1`` for the first): an evaluation never overwrites an earlier one."""
    taken = [int(p.name.split("-", 1)[1]) for p in variant_dir.glob("eval-*")
             if p.name.split("-", 1)[1].isdigit()] if variant_dir.is_dir() else []
    return f"eval-{max(taken, default=0) + 1}"


def _write(result: EvaluationResult, frame: pd.DataFrame, proba: np.ndarray, classes: tuple[str, ...],
           bundle: Any, actors: str | None, out: Path) -> Path:
    """A new results-store run for this evaluation (atomic; earlier runs kept), plus the
    experiment summary."""
    from pipeline.research import results
    from pipeline.research.store import EVALUATE_EXPERIMENT

    tag = f"-actors{actors.replace(',', '_').replace(' ', '')}" if actors else ""
    tag += f"-{result.calibration}" if result.calibration != "none" else ""
    from pipeline.core.paths import safe_name

    variant = safe_name(f"{bundle.name}-{result.corpus}-{result.branch}{tag}", "the evaluation's name (--actors)")
    fold = next_run_name(out / EVALUATE_EXPERIMENT / variant)
    fold_dir = out / EVALUATE_EXPERIMENT / variant / fold
    preds = pd.DataFrame({"clip_id": frame["clip_id"].to_numpy(), "actor": frame["actor"].astype(str).to_numpy(),
                          "fold": fold, "true": frame["emotion"].to_numpy(),
                          "pred": [classes[i] for i in proba.argmax(axis=1)]})
    for i, c in enumerate(classes):
        preds[f"p_{c}"] = proba[:, i]
    metrics = {**result.metrics, "n_skipped": int(sum(result.skipped.values())), "skipped": result.skipped,
               "fold": fold, "variant": variant, "in_sample": result.in_sample,
               "group": "in-sample" if result.in_sample else "cross-corpus", "protocol": "eval",
               "experiment": EVALUATE_EXPERIMENT, "branch": result.branch, "model": bundle.name,
               "corpus": result.corpus, "bundle_id": bundle.id, "seconds": round(result.seconds, 2),
               "calibration": result.calibration}
    config = {"experiment": EVALUATE_EXPERIMENT, "variant": variant, "fold": fold, "kind": "evaluate",
              "bundle": {"id": bundle.id, "name": bundle.name, "path": str(bundle.path)},
              "corpus": {"name": result.corpus, "root": result.root}, "actors": actors or "all",
              "branch": result.branch, "classes": list(classes), "calibration": result.calibration}
    results.write_fold(fold_dir, config=config, metrics=metrics, predictions=preds)
    results.write_summary(out / EVALUATE_EXPERIMENT)
    return fold_dir
