"""What ``bundles/real`` says for each of the 24 RAVDESS stills (one frame per actor,
mostly calm/neutral faces; emotion unknown). Writes ``bench/results/real_stills.json``.

    python bench/real_stills.py [--bundle bundles/real] [--root ../shared/data/ravdess-faces]
"""
from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, write_result  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default="bundles/real")
    parser.add_argument("--root", default=os.environ.get("AVE_SHARED_DATA", "../shared/data") + "/ravdess-faces")
    args = parser.parse_args(argv)
    from pipeline.serve.bundle import load_bundle
    from pipeline.serve.inference import analyze

    bundle = load_bundle(args.bundle)
    rows = []
    for still in sorted(Path(args.root).glob("Actor_*.png")):
        result = analyze(still, bundle)
        top = result.video.winner
        rows.append({"still": still.name, "status": result.video.status,
                     "top": top[0] if top else None, "p": round(top[1], 3) if top else None,
                     "probabilities": {k: round(v, 3) for k, v in result.video.probabilities.items()}})
        print(f"{still.name}: {result.video.status} {top[0] if top else ''} {top[1] if top else 0:.0%}")
    tops = Counter(r["top"] for r in rows if r["top"])
    print("top emotions:", dict(tops))
    write_result("real_stills", {"bundle": bundle.id, "stills": rows, "top_counts": dict(tops), "machine": machine()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
