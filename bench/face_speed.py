"""Face model answer time per crop, as served, for each test-time view set.

Times :meth:`pipeline.serve.bundle.BranchModel.predict_proba` (the call the video branch
makes after :func:`pipeline.core.video.face_input`) on one 48 x 48 crop and on a batch
of 15 (one clip window's sampled frames), for the bundle's face model and any other
``model.keras`` given, with each view set of :data:`pipeline.core.face_views.VIEW_SETS`.
Wall-clock and process-CPU medians over ``--repeat`` calls after two warm-up calls; the
machine is shared, so the JSON records the load average beside the figures and the CPU
time is the steadier one. Writes ``bench/results/face_speed.json``.

    python bench/face_speed.py [--bundle bundles/real] [--model NAME=path/model.keras ...]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.common import machine, write_result  # noqa: E402


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    fn(), fn()  # warm-up: graph tracing
    walls, cpus = [], []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default=str(Path(__file__).resolve().parents[1] / "bundles" / "real"))
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--views", default="none,flip,crops,flip_crops")
    args = parser.parse_args(argv)

    import dataclasses

    from pipeline.core.face_views import view_names
    from pipeline.serve.bundle import _load_model, load_bundle

    bundle = load_bundle(args.bundle)
    served = bundle.video
    models = {"bundle": served.loaded()}
    for item in args.model:
        name, _, path = item.partition("=")
        models[name] = _load_model(Path(path), "keras")
    rng = np.random.default_rng(0)
    size, channels = served.params.crop_size, served.params.channels
    crops = {n: rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8) for n in (1, 15)}
    start = machine()
    rows = []
    for name, model in models.items():
        for views in args.views.split(","):
            branch = dataclasses.replace(served, model=model, views=views)
            row: dict[str, Any] = {"model": name, "views": views, "n_views": len(view_names(views))}
            for n, x in crops.items():
                wall, cpu = _timed(lambda: branch.predict_proba(x), args.repeat)
                row[f"batch{n}_ms"] = round(1000 * wall, 2)
                row[f"batch{n}_cpu_ms"] = round(1000 * cpu, 2)
            rows.append(row)
            print(row, flush=True)
    data = {"machine_at_start": start, "machine_at_end": machine(), "bundle": str(bundle.id),
            "repeat": args.repeat, "what": "BranchModel.predict_proba on 48 x 48 greyscale crops (uint8); "
                                          "median wall and process-CPU milliseconds per call",
            "tf_threads": {k: os.environ.get(k, "") for k in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")},
            "rows": rows}
    print(write_result("face_speed", data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
