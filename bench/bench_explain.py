"""What explanations cost (issue 22): seconds to analyse a 4 s clip with the real bundle,
then to explain it, on this machine; written to ``bench/results/bench_explain.json``.

Protocol: the bundle loaded and warmed once (one analysis and one explanation that are
not counted: TensorFlow builds its graphs on first use), then ``--repeats`` rounds of
``analyze`` then ``explain`` (valence/arousal, cue-group contributions, Grad-CAM on every
shown crop, per-frame answers) and, separately, the pitch/loudness contours the page
draws. Medians are reported with the ratio explain / analyse; the goal is < 30 %. The
clip is :func:`bench_analyze.make_clip` (a RAVDESS face panned and zoomed, RAVDESS speech).

    python bench/bench_explain.py [--bundle bundles/real] [--repeats 5] [--seconds 4]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default=str(HERE.parent / "bundles" / "real"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--out", default=str(HERE / "results" / "bench_explain.json"))
    args = parser.parse_args()

    from pipeline.core.native import load_before_tensorflow

    load_before_tensorflow()
    import bench_analyze

    from pipeline.serve import explain as explain_mod, inference
    from pipeline.serve.bundle import load_bundle

    clip = bench_analyze.make_clip(args.seconds, bench_analyze.bench_dir() / f"clip_{args.seconds}s.mp4")
    bundle = load_bundle(args.bundle)
    warm = inference.analyze(str(clip), bundle)
    explain_mod.explain(warm, bundle)
    analyse_s, explain_s, contour_s, no_heat_s = [], [], [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        analysis = inference.analyze(str(clip), bundle)
        analyse_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        explain_mod.explain(analysis, bundle)
        explain_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        explain_mod.explain(analysis, bundle, heatmaps=False)
        no_heat_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        explain_mod.contours(analysis.waveform, analysis.sample_rate)
        contour_s.append(time.perf_counter() - t)
    med = statistics.median
    result = {
        "clip_seconds": args.seconds, "bundle": analysis.bundle.get("id"), "repeats": args.repeats,
        "cpus": os.cpu_count(), "analyse_s": round(med(analyse_s), 3), "explain_s": round(med(explain_s), 3),
        "explain_without_heatmaps_s": round(med(no_heat_s), 3), "contours_s": round(med(contour_s), 3),
        "explain_over_analyse": round(med(explain_s) / med(analyse_s), 3),
        "explain_and_contours_over_analyse": round((med(explain_s) + med(contour_s)) / med(analyse_s), 3),
        "goal": "explain < 0.30 x analyse",
        "all": {"analyse_s": [round(x, 3) for x in analyse_s], "explain_s": [round(x, 3) for x in explain_s],
                "contours_s": [round(x, 3) for x in contour_s]},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".part")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
