"""Benchmark the feature cache: clips/s of audio feature extraction, first vs cached run.

    python bench/bench_features.py [--root DIR] [--kinds mfcc_mean mfcc_stats] [--jobs 2]

``--root`` defaults to ``$AVE_SHARED_DATA/ravdess-speech`` (the six real RAVDESS
actors, 360 wavs). Each kind is extracted twice into a fresh temporary cache: the first
run decodes, resamples and featurizes every clip in ``--jobs`` processes (worker start-up
and librosa's numba compilation included, as a user would see it); the second only
hashes-index lookups and reads ``.npy`` files. The machine may be shared: the 1-minute
load average is recorded. Writes ``bench/results/features.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _default_root() -> Path | None:
    shared = os.environ.get("AVE_SHARED_DATA")
    return Path(shared) / "ravdess-speech" if shared else None


def bench_kind(manifest, kind: str, params, cache: Path, n_jobs: int) -> dict:
    """Time a cold and a warm extraction of one kind; check they agree."""
    from pipeline.research import features

    started = time.perf_counter()
    cold = features.extract(manifest, kind, params, cache, n_jobs=n_jobs, progress=False)
    cold_s = time.perf_counter() - started
    started = time.perf_counter()
    warm = features.extract(manifest, kind, params, cache, n_jobs=n_jobs, progress=False)
    warm_s = time.perf_counter() - started
    if not np.array_equal(cold, warm):
        raise SystemExit(f"{kind}: cached features differ from the computed ones")
    n = len(manifest)
    return {"kind": kind, "clips": n, "shape": list(cold.shape[1:]),
            "first_run_s": round(cold_s, 2), "first_run_clips_per_s": round(n / cold_s, 1),
            "cached_run_s": round(warm_s, 3), "cached_run_clips_per_s": round(n / warm_s, 1),
            "speedup": round(cold_s / warm_s, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=_default_root(),
                        help="RAVDESS-layout folder (default $AVE_SHARED_DATA/ravdess-speech)")
    parser.add_argument("--kinds", nargs="+", default=["mfcc_mean", "mfcc_stats"])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "features.json")
    args = parser.parse_args(argv)
    if args.root is None or not args.root.is_dir():
        print("error: no corpus: pass --root or set AVE_SHARED_DATA", file=sys.stderr)
        return 2

    from pipeline.core.corpora import scan
    from pipeline.core.preprocessing import Preprocessing

    manifest, _ = scan("ravdess", args.root)
    params = Preprocessing()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-features-") as cache:
        for kind in args.kinds:
            row = bench_kind(manifest, kind, params, Path(cache), args.jobs)
            rows.append(row)
            print(f"{kind:12s} {row['clips']} clips: first run {row['first_run_s']:.1f} s "
                  f"({row['first_run_clips_per_s']} clips/s), cached {row['cached_run_s']:.2f} s "
                  f"({row['cached_run_clips_per_s']} clips/s), x{row['speedup']}")
    report = {"corpus": os.path.relpath(args.root), "n_jobs": args.jobs, "cpu_count": os.cpu_count(),  # relative: no machine path
              "load_avg_1min": round(os.getloadavg()[0], 2), "python": platform.python_version(),
              "note": "first run includes worker start-up and librosa/numba warm-up; shared machine",
              "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
