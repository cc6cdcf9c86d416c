"""How long the dashboard's Analyze page takes for a 4-second clip, models already loaded.

The target (SPEC section 7): under 2 s on 2 CPU cores. Loads the bundle once (like the
dashboard's ``cache_resource``), warms up librosa and the models with one call, then
times ``pipeline.inference.analyze`` on the same clip ``--repeats`` times, from the
file's bytes (what an upload hands over). Writes ``bench/results/bench_analyze.json``.

    python bench/bench_analyze.py [--bundle bundles/demo] [--clip some.mp4] [--repeats 5]

Without ``--clip`` it renders one 4-second-ish audio-visual take of the synthetic corpus.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TARGET_SECONDS = 2.0


def synthetic_clip(folder: Path, seconds: float = 4.0) -> Path:
    """A ``seconds``-long audio-visual clip: one happy, strong-intensity take of synthetic
    actor 1 (a voice and a drawn face, ~3.5 s) padded with its last frame and silence."""
    from pipeline.synth.corpus import generate

    generate(folder, n_actors=1, seed=7, emotions=["happy"], progress=False, n_jobs=1)
    take = sorted(folder.glob("Actor_*/01-01-03-02-*.mp4"))[0]
    return pad_clip(take, folder / f"{take.stem}-{seconds:g}s.mp4", seconds)


def pad_clip(src: Path, out: Path, seconds: float, fps: int = 30, rate: int = 48000) -> Path:
    """Re-encode ``src`` as an mp4 (H.264 + AAC) of exactly ``seconds``: frames are
    repeated from the last one, audio is padded with silence (or cut)."""
    import av
    import numpy as np

    from pipeline.media import iter_frames, load_audio

    frames = [rgb for _, rgb in iter_frames(src)]
    n_frames = int(round(seconds * fps))
    frames = (frames + [frames[-1]] * n_frames)[:n_frames]
    y = load_audio(src, rate)
    y = np.pad(y, (0, max(0, int(seconds * rate) - y.size)))[: int(seconds * rate)]
    height, width = frames[0].shape[:2]
    with av.open(str(out), "w") as container:
        video = container.add_stream("h264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=rate)
        audio.layout = "mono"
        for rgb in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(video.encode())
        for start in range(0, y.size, 1024):
            frame = av.AudioFrame.from_ndarray(y[None, start:start + 1024].astype(np.float32),
                                               format="fltp", layout="mono")
            frame.rate = rate
            container.mux(audio.encode(frame))
        container.mux(audio.encode())
    return out


def time_analyze(data: bytes, bundle: object, detector: object, repeats: int) -> dict:
    """One warm-up call (numba kernels, detector and model graphs), then ``repeats`` timed
    calls of ``analyze`` on the clip's bytes; seconds, per stage medians, the answer."""
    from pipeline.inference import analyze

    t0 = time.perf_counter()
    first = analyze(data, bundle, detector)
    warm_s = time.perf_counter() - t0
    runs, stages = [], []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        result = analyze(data, bundle, detector)
        runs.append(time.perf_counter() - t0)
        stages.append(result.timings)
    median = statistics.median(runs)
    return {
        "first_call_s": round(warm_s, 3), "repeats": len(runs), "median_s": round(median, 3),
        "min_s": round(min(runs), 3), "max_s": round(max(runs), 3),
        "meets_target": median < TARGET_SECONDS,
        "median_stage_s": {k: round(statistics.median(s.get(k, 0.0) for s in stages), 3) for k in stages[0]},
        "answer": {"audio": first.audio.status, "video": first.video.status,
                   "fused": first.fused.winner[0] if first.fused.winner else first.fused.status,
                   "frames_with_face": first.frames_with_face},
    }


def main(argv: list[str] | None = None) -> int:
    from pipeline import paths

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default=str(paths.default_bundle()))
    parser.add_argument("--clip", help="clip to analyse (default: a synthetic take)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_analyze.json"))
    args = parser.parse_args(argv)

    from pipeline.bundle import BundleError, load_bundle
    from pipeline.faces import HaarDetector
    from pipeline.media import probe

    try:
        t0 = time.perf_counter()
        bundle = load_bundle(args.bundle)
        load_s = time.perf_counter() - t0
    except BundleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(args.clip) if args.clip else synthetic_clip(Path(tmp) / "synthetic")
        data = clip.read_bytes()
        info = probe(data)
        detectors = {"bundle": None, "haar": HaarDetector()} if bundle.video else {"none": None}
        timed = {name: time_analyze(data, bundle, det, args.repeats) for name, det in detectors.items()}
    report = {
        "benchmark": "analyze one clip after the models are loaded (the Analyze page's call)",
        "clip": clip.name if args.clip else f"synthetic {clip.name}",
        "clip_seconds": round(info.duration, 2), "has_video": info.has_video, "has_audio": info.has_audio,
        "bundle": bundle.id, "bundle_detector": getattr(bundle.face_detector(), "name", "?") if bundle.video else None,
        "load_bundle_s": round(load_s, 3), "target_s": TARGET_SECONDS,
        "by_face_detector": timed,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
