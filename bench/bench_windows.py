"""Do the windows of a long recording follow its sentences? Speech-aligned windows
(:func:`pipeline.serve.windows.speech_windows`) against the fixed grid of
:func:`pipeline.serve.inference.windows`, on real speech through a bundle.

The recording: 60 s of noise at about -80 dBFS holding 12 RAVDESS sentences of one
actor (``$AVE_SHARED_DATA/ravdess-speech/Actor_03``, every fifth take in name order, each
trimmed to its voice by :func:`pipeline.core.audio.energy_segments`) separated by
pauses drawn uniformly from 0.9-2.7 s (seed 0). A sentence counts as answered when a
window whose audio answered holds at least 1 s of it (all of it, less 10%, when shorter).
This measures windowing, not accuracy: which emotions are named is not scored.

    AVE_SHARED_DATA=../shared/data python bench/bench_windows.py [--bundle bundles/real]

Writes ``bench/results/windows.json``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, write_result  # noqa: E402

SR = 16_000


def recording(root: Path, seconds: float = 60.0, seed: int = 0) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The test recording (mono float32 at :data:`SR`) and each sentence's (start, end) s."""
    import librosa

    from pipeline.core import audio

    files = sorted((root / "ravdess-speech" / "Actor_03").glob("*.wav"))[::5][:12]
    if not files:
        raise SystemExit(f"no RAVDESS speech under {root}/ravdess-speech/Actor_03 (set AVE_SHARED_DATA)")
    rng = np.random.default_rng(seed)
    y = (1e-4 * rng.standard_normal(int(seconds * SR))).astype(np.float32)
    said, t = [], 0.8
    for path in files:
        s, _ = librosa.load(path, sr=SR)
        voice = audio.energy_segments(s, SR)
        piece = s[int(voice[0][0] * SR):int(voice[-1][1] * SR)]
        if t + piece.size / SR > seconds - 1.0:
            break
        y[int(t * SR):int(t * SR) + piece.size] += piece
        said.append((t, t + piece.size / SR))
        t += piece.size / SR + rng.uniform(0.9, 2.7)
    return y, said


def score(result, said: list[tuple[float, float]]) -> dict:
    answered = sum(any(w.audio.ok and min(e, w.end) - max(s, w.start) >= min(1.0, 0.9 * (e - s))
                       for w in result.timeline) for s, e in said)
    return {"sentences": len(said), "sentences_answered": int(answered), "windows": len(result.timeline),
            "windows_answered": int(sum(w.audio.ok for w in result.timeline)),
            "statuses": [(round(w.start, 2), round(w.end, 2), w.audio.status) for w in result.timeline],
            "fused_detail": result.fused.detail}


def main() -> None:
    import soundfile as sf

    from pipeline.core.paths import default_bundle
    from pipeline.serve import inference
    from pipeline.serve.bundle import load_bundle

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default=None, help="bundle folder (default: the default bundle)")
    args = parser.parse_args()
    root = Path(os.environ.get("AVE_SHARED_DATA", "../shared/data"))
    y, said = recording(root)
    bundle = load_bundle(args.bundle or default_bundle())
    out: dict = {"machine": machine(), "bundle": bundle.summary().get("id"), "protocol": __doc__.split("\n\n")[1]}
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "talk.wav"
        sf.write(str(clip), y, SR, subtype="PCM_16")
        began = time.perf_counter()
        out["speech_windows"] = score(inference.analyze(clip, bundle), said)
        out["speech_windows"]["wall_s"] = round(time.perf_counter() - began, 2)

        def grid(media, bundle_, first):
            spans = inference.windows(min(media.duration, inference.MAX_SECONDS), first.params)
            return spans, len(spans) == 1, None

        planned, inference.clip_windows = inference.clip_windows, grid
        try:
            began = time.perf_counter()
            out["fixed_grid"] = score(inference.analyze(clip, bundle), said)
            out["fixed_grid"]["wall_s"] = round(time.perf_counter() - began, 2)
        finally:
            inference.clip_windows = planned
    for name in ("speech_windows", "fixed_grid"):
        r = out[name]
        print(f"{name:15s} sentences answered {r['sentences_answered']}/{r['sentences']}; "
              f"windows answered {r['windows_answered']} of {r['windows']}")
    print(write_result("windows", out))


if __name__ == "__main__":
    main()
