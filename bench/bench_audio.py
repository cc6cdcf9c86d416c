"""Benchmark the audio front end: decode + featurize time per clip, per feature kind.

On real RAVDESS speech when ``AVE_SHARED_DATA`` points at a folder holding
``ravdess-speech/`` (the first ``--limit`` files), else on a synthetic 4 s voiced clip
generated here (decoded from in-memory WAV bytes, the upload path). Writes
``bench/results/audio.json``: milliseconds per clip (median, p90) and clips/s for the
decode and for each kind, plus the one-off numba warm-up time. Single process, so
clips/s is per core.

    AVE_SHARED_DATA=../shared/data python bench/bench_audio.py [--limit 40]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import time
import wave
from pathlib import Path

import numpy as np

from pipeline.core import audio, media
from pipeline.core.preprocessing import Preprocessing


def synthetic_wav(seconds: float = 4.0, sr: int = 48_000, seed: int = 0) -> bytes:
    """A voiced test clip (harmonic stack with a pitch glide), 16-bit WAV bytes."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * np.cumsum(150.0 * (1 + 0.1 * np.sin(2 * np.pi * 0.5 * t))) / sr
    y = sum(np.sin(k * phase) / k for k in range(1, 12)) * 0.5 * (1 - np.cos(2 * np.pi * 3 * t))
    y = 0.2 * y + 1e-3 * rng.standard_normal(t.size)
    pcm = (np.clip(y, -1, 1) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def sources(limit: int) -> tuple[str, list]:
    """('real', paths) from AVE_SHARED_DATA, else ('synthetic', [wav bytes] * limit)."""
    root = os.environ.get("AVE_SHARED_DATA")
    if root:
        paths = sorted(Path(root).glob("ravdess-speech/Actor_*/*.wav"))[:limit]
        if paths:
            return "real RAVDESS speech", paths
    return "synthetic 4 s clip", [synthetic_wav()] * limit


def summarise(ms: list[float]) -> dict[str, float]:
    arr = np.asarray(ms)
    return {"ms_median": round(float(np.median(arr)), 2), "ms_p90": round(float(np.percentile(arr, 90)), 2),
            "clips_per_s": round(1000.0 / float(arr.mean()), 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=40, help="clips to time (default 40)")
    parser.add_argument("--out", default="bench/results/audio.json")
    args = parser.parse_args(argv)
    params = Preprocessing()
    data, srcs = sources(max(1, args.limit))

    t0 = time.perf_counter()
    audio.warm_up(params)
    warm = time.perf_counter() - t0
    for kind in ("egemaps", "compare"):  # first openSMILE call loads its config
        audio.featurize(np.zeros(params.sample_rate, np.float32) + 1e-3, params, kind)

    from tqdm import tqdm

    timings: dict[str, list[float]] = {"decode": [], **{k: [] for k in audio.FEATURE_KINDS}}
    seconds_of_audio = 0.0
    for src in tqdm(srcs, desc="clips", unit="clip"):
        t = time.perf_counter()
        y = media.load_audio(src, params.sample_rate)
        timings["decode"].append(1000 * (time.perf_counter() - t))
        seconds_of_audio += y.size / params.sample_rate
        for kind in audio.FEATURE_KINDS:
            t = time.perf_counter()
            audio.featurize(y, params, kind)
            timings[kind].append(1000 * (time.perf_counter() - t))
    result = {
        "benchmark": "audio decode + featurize", "data": data, "n_clips": len(srcs),
        "mean_clip_seconds": round(seconds_of_audio / len(srcs), 2),
        "sample_rate": params.sample_rate, "numba_warm_up_s": round(warm, 2),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "processor": platform.machine(),
                    "load_average_1min": round(os.getloadavg()[0], 2)},
        "timings": {k: summarise(v) for k, v in timings.items()},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(out)
    print(json.dumps(result["timings"], indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
