"""``make demo`` / ``python -m pipeline demo``: from nothing to a working bundle.

Steps, each skipped when its result is already there (so a rerun takes seconds):

1. generate the synthetic corpus into ``data`` unless it is complete;
2. run the quick experiment specs (``configs/quick_audio.yaml``, the ``faces`` variant of
   ``quick_video.yaml``, ``quick_fusion.yaml``) into ``runs``; finished folds are
   skipped, and the fusion spec reuses the audio and video folds those already ran;
3. export the fusion experiment's audio and video models and its best fuser (highest
   mean UAR under the speaker protocol) as the ``demo`` bundle at
   :func:`pipeline.core.paths.demo_bundle` (``bundles/demo``), selectable in the dashboard as
   the synthetic method demo beside the real bundle that answers by default.

Step times are written to ``<runs>/demo_timings.json``.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from pipeline.core import paths

log = logging.getLogger(__name__)

#: (spec file, variants to run or None for all). Only the per-frame face model of
#: quick_video runs: the fusion spec reuses its folds; the LRCN, ConvLSTM and the CNN
#: variant are ablation rows for `python -m pipeline run configs/quick_video.yaml`.
QUICK_SPECS: tuple[tuple[str, tuple[str, ...] | None], ...] = (
    ("quick_audio.yaml", None), ("quick_video.yaml", ("faces",)), ("quick_fusion.yaml", None))
FUSION_SPEC = "quick_fusion.yaml"


def configs_dir() -> Path:
    """The project's ``configs/`` folder (next to the package, else the working dir)."""
    beside = Path(__file__).resolve().parents[2] / "configs"
    return beside if beside.is_dir() else Path("configs")


def corpus_complete(root: Path, n_actors: int) -> bool:
    """True when the synthetic corpus marker exists and every take's video is there."""
    from pipeline.core.synth.corpus import take_grid

    marker = root / "SYNTHETIC.json"
    if not marker.is_file():
        return False
    try:
        meta = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    if int(meta.get("n_actors", -1)) != int(n_actors):
        return False
    return len(list(root.glob("Actor_*/01-*.mp4"))) >= len(take_grid(n_actors))


def best_fuser(summary_csv: Path, protocol: str = "speaker") -> str:
    """The fusion variant (``fusion_*`` or ``rule_*``) with the highest mean UAR, ties
    broken by accuracy, under ``protocol``."""
    import pandas as pd

    frame = pd.read_csv(summary_csv)
    rows = frame.loc[frame["variant"].str.match(r"^(fusion|rule)_") & (frame["protocol"] == protocol)]
    if rows.empty:
        raise ValueError(f"{summary_csv} has no fusion rows for the {protocol} protocol")
    rows = rows.sort_values(["uar_mean", "accuracy_mean"], ascending=False)
    return str(rows.iloc[0]["variant"])


def _bundle_fresh(bundle: Path, sources: list[Path]) -> bool:
    meta = bundle / "bundle.json"
    return meta.is_file() and all(meta.stat().st_mtime >= s.stat().st_mtime for s in sources if s.exists())


def run_demo(data: str | Path | None = None, runs: str | Path | None = None, n_actors: int = 8,
             seed: int = 7, *, bundle: str | Path | None = None, progress: bool = True) -> str:
    """Synthetic corpus -> quick audio, video and fusion runs -> demo bundle.

    Returns a few lines saying where everything is and how long each step took.
    """
    from pipeline.research.export import export_bundle
    from pipeline.research.experiments import load_spec, run_spec
    from pipeline.core.synth.corpus import generate

    data = Path(data) if data else paths.data_dir() / "synthetic"
    runs = Path(runs) if runs else paths.runs_dir()
    bundle = Path(bundle) if bundle else paths.demo_bundle()
    timings: dict[str, float] = {}
    lines: list[str] = []

    started = time.perf_counter()
    if corpus_complete(data, n_actors):
        lines.append(f"corpus: {data} (already there)")
    else:
        summary = generate(data, n_actors=n_actors, seed=seed, progress=progress)
        lines.append(f"corpus: {data} ({summary.describe().splitlines()[-1].strip()})")
    timings["synth"] = time.perf_counter() - started

    overrides = [f"corpus.root={data}"]
    fusion_name = ""
    for spec_name, only in QUICK_SPECS:
        spec_path = configs_dir() / spec_name
        if not spec_path.is_file():
            log.info("no %s: step skipped", spec_path)
            continue
        started = time.perf_counter()
        run_spec(spec_path, overrides=overrides, only=list(only) if only else None, out=runs, progress=progress)
        name = str(load_spec(spec_path).get("name", spec_path.stem))
        timings[name] = time.perf_counter() - started
        lines.append(f"runs:   {runs / name} ({timings[name]:.0f} s)")
        if spec_name == FUSION_SPEC:
            fusion_name = name
    if not fusion_name:
        raise FileNotFoundError(f"{configs_dir() / FUSION_SPEC} is missing: the demo needs it")

    exp_dir = runs / fusion_name
    started = time.perf_counter()
    summary_csv = exp_dir / "summary.csv"
    fuser = best_fuser(summary_csv)
    if _bundle_fresh(bundle, list(exp_dir.glob("*/*/metrics.json"))):
        lines.append(f"bundle: {bundle} (already up to date)")
    else:
        export_bundle(exp_dir / "audio", exp_dir / "video", exp_dir / fuser, out=bundle, name=bundle.name)
        lines.append(f"bundle: {bundle} (audio + video + {fuser})")
    timings["export"] = time.perf_counter() - started
    timings["total"] = sum(timings.values())
    runs.mkdir(parents=True, exist_ok=True)
    (runs / "demo_timings.json").write_text(json.dumps({k: round(v, 1) for k, v in timings.items()}, indent=2))

    from pipeline.research.store import format_summary, summarise

    lines += ["", f"{fusion_name} (synthetic corpus, not real people):", format_summary(summarise(exp_dir)), "",
              f"done in {timings['total']:.0f} s; try: {_python()} -m pipeline predict "
              f"{next(iter(sorted(data.glob('Actor_*/01-*.mp4'))), 'CLIP')}"]
    return "\n".join(lines)


def _python() -> str:
    """How to call this interpreter from here (``.venv/bin/python`` under ``make demo``)."""
    import os
    import sys

    try:
        return min(os.path.relpath(sys.executable), sys.executable, key=len)
    except ValueError:  # another drive (Windows)
        return sys.executable
