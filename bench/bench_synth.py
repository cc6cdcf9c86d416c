"""Benchmark the synthetic corpus: generation time, and how learnable it is.

    python bench/bench_synth.py [--actors 8] [--seed 7] [--jobs 2] [--out DIR]
                                [--baselines] [--keep]

Times ``pipeline.core.synth.corpus.generate`` for N actors (the load average is recorded,
the machine may be shared), then with ``--baselines`` runs two quick
speaker-independent checks (leave-one-actor-out, 6 classes):

- audio: librosa 40-MFCC mean over the analysis window + standardized RBF SVM;
- video: mean landmark shape (68 points, centred and scaled per frame, averaged over
  the take) + standardized multinomial logistic regression.

Writes ``bench/results/synth.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIX = ("neutral", "calm", "happy", "sad", "angry", "fearful")


def _takes(root: Path, modality: str, ext: str) -> list[tuple[Path, str, str]]:
    """(path, emotion, actor) for the six-class takes of one modality in a RAVDESS tree."""
    from pipeline.core.labels import RAVDESS_EMOTION_CODES

    out = []
    for path in sorted(root.glob(f"Actor_*/{modality}-*.{ext}")):
        parts = path.stem.split("-")
        emotion = RAVDESS_EMOTION_CODES.get(parts[2], "")
        if emotion in SIX:
            out.append((path, emotion, parts[6]))
    return out


def audio_features(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """40-MFCC means over the default analysis window (0.5 s + 3 s at 22.05 kHz)."""
    import librosa

    from pipeline.core.media import load_audio
    from pipeline.core.preprocessing import Preprocessing

    params = Preprocessing()
    rows, labels, groups = [], [], []
    for path, emotion, actor in _takes(root, "03", "wav"):
        y = load_audio(path, params.sample_rate)
        start = int(params.offset * params.sample_rate)
        y = y[start:start + params.window_samples]
        y = np.pad(y, (0, params.window_samples - y.size))
        mfcc = librosa.feature.mfcc(y=y, sr=params.sample_rate, n_mfcc=params.n_mfcc,
                                    n_fft=params.n_fft, hop_length=params.hop_length)
        rows.append(mfcc.mean(axis=1))
        labels.append(emotion)
        groups.append(actor)
    return np.asarray(rows), np.asarray(labels), np.asarray(groups)


def landmark_features(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per take: the 68 landmarks centred on their mean and divided by the inter-ocular
    distance per frame, averaged over frames (136 values) plus their std over frames."""
    import pandas as pd

    rows, labels, groups = [], [], []
    for path, emotion, actor in _takes(root, "01", "csv"):
        frame = pd.read_csv(path, skipinitialspace=True)
        xs = frame[[f"x_{i}" for i in range(68)]].to_numpy()
        ys = frame[[f"y_{i}" for i in range(68)]].to_numpy()
        pts = np.stack([xs, ys], axis=2)  # (frames, 68, 2)
        pts = pts - pts.mean(axis=1, keepdims=True)
        eyes = np.linalg.norm(pts[:, 36:42].mean(1) - pts[:, 42:48].mean(1), axis=1)
        pts = pts / eyes[:, None, None]
        flat = pts.reshape(len(pts), -1)
        rows.append(np.concatenate([flat.mean(0), flat.std(0)]))
        labels.append(emotion)
        groups.append(actor)
    return np.asarray(rows), np.asarray(labels), np.asarray(groups)


def speaker_cv(x: np.ndarray, y: np.ndarray, groups: np.ndarray, model: str) -> dict[str, float]:
    """Leave-one-actor-out accuracy (mean, std over folds) of a standardized classifier."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import LeaveOneGroupOut
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    accs = []
    for train, test in LeaveOneGroupOut().split(x, y, groups):
        clf = SVC(C=10.0) if model == "svm" else LogisticRegression(C=1.0, max_iter=2000)
        pipe = make_pipeline(StandardScaler(), clf).fit(x[train], y[train])
        accs.append(float(np.mean(pipe.predict(x[test]) == y[test])))
    return {"accuracy_mean": float(np.mean(accs)), "accuracy_std": float(np.std(accs)),
            "n_folds": len(accs), "n_clips": int(len(y)), "chance": 1.0 / len(set(y))}


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (the workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actors", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", help="corpus folder (default: a temporary folder)")
    parser.add_argument("--baselines", action="store_true", help="also measure the two baselines")
    parser.add_argument("--keep", action="store_true", help="keep the generated corpus")
    parser.add_argument("--results", default=str(Path(__file__).parent / "results" / "synth.json"))
    args = parser.parse_args(argv)

    from pipeline.core.synth.corpus import GENERATOR_VERSION, generate

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="synth-bench-"))
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    cpu_before = _cpu_seconds()
    summary = generate(out, n_actors=args.actors, seed=args.seed, n_jobs=args.jobs, progress=True)
    seconds = time.perf_counter() - started
    print(summary.describe())
    result: dict[str, object] = {
        "generator_version": GENERATOR_VERSION, "actors": args.actors, "seed": args.seed,
        "jobs": args.jobs, "takes": summary.n_takes, "generated": summary.n_generated,
        "seconds": round(seconds, 2), "cpu_seconds": round(_cpu_seconds() - cpu_before, 1),
        "cpus": os.cpu_count(),
        "load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2),
        "bytes": sum(p.stat().st_size for p in out.rglob("*") if p.is_file()),
    }
    if args.baselines:
        t0 = time.perf_counter()
        result["audio_mfcc_mean_svm_speaker"] = speaker_cv(*audio_features(out), model="svm")
        result["video_landmark_shape_logreg_speaker"] = speaker_cv(*landmark_features(out), model="logreg")
        result["baseline_seconds"] = round(time.perf_counter() - t0, 1)
    if not args.keep and not args.out:
        shutil.rmtree(out, ignore_errors=True)
    path = Path(args.results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
