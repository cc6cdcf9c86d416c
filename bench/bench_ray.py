"""Benchmark the Ray executor: a spec's wall time local vs Ray, and Ray's start-up overhead.

    python bench/bench_ray.py [--spec configs/quick_audio.yaml] [--root DIR] [--actors 8]
                              [--repeats 3] [--out bench/results/ray.json]

1. Corpus: ``--root``, else an audio-only synthetic corpus (``--actors``, seed 7, the
   demo's) generated into a temporary folder.
2. Features: every variant's features are extracted once into a fresh cache (timed),
   so both executors below start from the same warm cache and time only what differs:
   planning, training, evaluation, writing the store, and (Ray) start-up and dispatch.
3. ``python -m pipeline run SPEC`` with ``--executor local``, then ``--executor ray``
   (a local Ray instance, one task per (variant, fold), 1 CPU per task), each into a
   fresh results store; wall time of the whole command. Per-fold training seconds come
   from each fold's ``metrics.json``.
4. Ray start-up overhead, ``--repeats`` cold starts in fresh processes: ``import ray``,
   ``ray.init`` (the executor's local instance), the first task's round trip (worker
   start-up) and ``ray.shutdown``.
5. A paper estimate of the report's full grid (``configs/audio.yaml`` and
   ``configs/video.yaml``, both protocols) on 1, 8 and 32 workers from per-fold times:
   this run's audio folds and the README's measured LRCN folds, scaled to RAVDESS.

Network rule: every command that starts Ray (and, for symmetry, the local run) runs in
a fresh network namespace with only loopback up (``unshare -n``); Ray is bound to
127.0.0.1 without a dashboard or usage reporting. Without the namespace the benchmark
stops and says why. The machine may be shared: the 1-minute load average is recorded
before and after each figure. Writes ``bench/results/ray.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: Assumptions of the paper estimate (documented in docs/experiments.md).
GRID = {
    "folds_per_variant": 6 + 5,  # speaker protocol (6 folds) + random protocol (5 seeds)
    "ravdess_takes": 2452,  # speech 1440 + song 1012 performances (24 actors)
    "train_fraction": 0.8,  # the report's 80/10/10 (speaker folds: 18-20 of 24 actors)
    "keras_epochs": 60,  # expected epochs run of 100 with early stopping (patience 10)
    "quick_audio_epochs": 60,  # quick_audio's epoch cap (early stopping, patience 8)
    "quick_train_rows": 220,  # quick specs, 8 actors, 4 folds: 5 training actors x 44 takes
    # README, "Synthetic corpus" table: quick_video lrcn, --set protocol.folds=4
    # --set training.epochs=20: 4 folds in 15 min on 2 cores, 15 frames per clip,
    # 5 training actors (220 clips) per fold.
    "lrcn_measured_fold_s": 15 * 60 / 4,
    "lrcn_measured_epochs": 20,
    "lrcn_measured_train_rows": 220,
    "lrcn_measured_frames": 15,
    "lrcn_report_frames": 30,
    "video_variants": 23,  # configs/video.yaml: all LRCN / ConvLSTM (Keras)
    "audio_keras_variants": 17,  # configs/audio.yaml: CNN variants (incl. 2 parallel CNN-transformers)
    "audio_sklearn_variants": 7,  # best, 4 SVM kernels, MLP, eGeMAPS SVM
}


def machine_load() -> float:
    return round(os.getloadavg()[0], 2)


def namespace_problem() -> str | None:
    """Why a loopback-only network namespace cannot be made (None when it can)."""
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"`{tool}` not found"
    try:
        probe = subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up && ip -o link show up"],
                               capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return str(err)
    if probe.returncode:
        return (probe.stderr.strip().splitlines() or ["unshare -n failed"])[-1]
    up = [line for line in probe.stdout.splitlines() if line.strip()]
    return None if len(up) == 1 and ": lo:" in up[0] else f"more than loopback is up: {up}"


def in_namespace(argv: list[str], env: dict[str, str], timeout: float) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``argv`` inside ``unshare -n`` with loopback up; (result, wall seconds)."""
    started = time.perf_counter()
    proc = subprocess.run(["unshare", "-n", "sh", "-c", f"ip link set lo up && exec {shlex.join(argv)}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    return proc, time.perf_counter() - started


def base_env(work: Path, cache: Path) -> dict[str, str]:
    (work / "home").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "PYTHONPATH")}
    env.update({"AVE_CACHE": str(cache), "HOME": str(work / "home"), "RAY_TMPDIR": str(work / "ray"),
                "RAY_USAGE_STATS_ENABLED": "0", "TF_CPP_MIN_LOG_LEVEL": "2"})
    (work / "ray").mkdir(exist_ok=True)
    return env


# --------------------------------------------------------------------------- steps
def warm_cache(spec: Path, overrides: list[str], cache: Path) -> dict[str, Any]:
    """Extract every variant's features once into ``cache`` (timed)."""
    from pipeline.research import experiments

    base = experiments.resolve(experiments.load_spec(spec), overrides)
    load = machine_load()
    started = time.perf_counter()
    kinds = []
    for variant in experiments.variant_specs(base):
        manifest = experiments.load_manifest_for(variant)
        experiments.features_for(variant, manifest, cache_dir=cache, progress=False)
        kinds.append(experiments.feature_kind(variant))
    return {"seconds": round(time.perf_counter() - started, 1), "kinds": sorted(set(kinds)),
            "clips": int(len(manifest)), "load_avg_1min_before": load, "load_avg_1min_after": machine_load()}


def run_spec(executor: str, spec: Path, overrides: list[str], out: Path, env: dict[str, str]) -> dict[str, Any]:
    """``python -m pipeline run`` with one executor; wall time and per-fold seconds."""
    argv = [sys.executable, "-m", "pipeline", "run", str(spec), "--out", str(out), "-q", "--executor", executor]
    for item in overrides:
        argv += ["--set", item]
    load = machine_load()
    proc, wall = in_namespace(argv, env, timeout=3600)
    if proc.returncode:
        raise SystemExit(f"{executor} run failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    folds: dict[str, list[float]] = {}
    rows: dict[str, list[int]] = {}
    for path in sorted(out.glob("*/*/*/metrics.json")):
        metrics = json.loads(path.read_text(encoding="utf-8"))
        folds.setdefault(metrics["variant"], []).append(float(metrics["seconds"]))
        rows.setdefault(metrics["variant"], []).append(int(metrics["n_train_rows"]))
    summary = {row["variant"]: round(float(row["accuracy_mean"]), 4)
               for row in _csv_rows(next(out.glob("*/summary.csv")))}
    return {"executor": executor, "wall_s": round(wall, 1), "load_avg_1min_before": load,
            "load_avg_1min_after": machine_load(), "fold_seconds": folds, "train_rows": rows,
            "accuracy_mean": summary}


def _csv_rows(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def startup_probe() -> None:
    """(Runs inside the namespace.) One cold Ray start: print timings as JSON."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    import ray

    timings["import_s"] = time.perf_counter() - started
    from pipeline.research import ray_executor

    mark = time.perf_counter()
    ray_executor.start(num_cpus=2)
    timings["init_s"] = time.perf_counter() - mark

    @ray.remote(num_cpus=1)
    def ping(x: int) -> int:
        return x

    mark = time.perf_counter()
    ray.get(ping.remote(1))
    timings["first_task_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    ray.get([ping.remote(i) for i in range(20)])
    timings["twenty_tasks_warm_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    ray.shutdown()
    timings["shutdown_s"] = time.perf_counter() - mark
    timings["total_s"] = time.perf_counter() - started
    print(json.dumps({k: round(v, 3) for k, v in timings.items()}))


def startup(env: dict[str, str], repeats: int) -> dict[str, Any]:
    rows = []
    for _ in range(repeats):
        load = machine_load()
        proc, wall = in_namespace([sys.executable, __file__, "--startup-probe"], env, timeout=300)
        if proc.returncode:
            raise SystemExit(f"Ray start-up probe failed: {proc.stderr.strip()[-2000:]}")
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        row.update({"process_wall_s": round(wall, 2), "load_avg_1min_before": load,
                    "load_avg_1min_after": machine_load()})
        rows.append(row)
    keys = ("import_s", "init_s", "first_task_s", "shutdown_s", "total_s")
    median = {k: round(sorted(r[k] for r in rows)[len(rows) // 2], 2) for k in keys}
    return {"repeats": rows, "median": median}


# --------------------------------------------------------------------------- estimate
def paper_estimate(audio_fold_s: dict[str, float], train_rows: float | None = None) -> dict[str, Any]:
    """Wall time of the report's full grid on 1, 8 and 32 workers (one task at a time
    per worker, workers like this 2-core machine), from per-fold times scaled by the
    training clips (and epochs, frames) of RAVDESS speech + song: Keras folds linearly
    in clips x epochs (x frames for the LRCN), kernel SVMs quadratically in clips."""
    g = GRID
    train = g["ravdess_takes"] * g["train_fraction"]
    clips = train / (train_rows or g["quick_train_rows"])
    cnn = audio_fold_s["cnn"] * clips * g["keras_epochs"] / g["quick_audio_epochs"]
    svm = audio_fold_s["svm"] * clips ** 2
    lrcn = (g["lrcn_measured_fold_s"] * train / g["lrcn_measured_train_rows"]
            * g["keras_epochs"] / g["lrcn_measured_epochs"]
            * g["lrcn_report_frames"] / g["lrcn_measured_frames"])
    n = g["folds_per_variant"]
    tasks = ([lrcn] * g["video_variants"] * n + [cnn] * g["audio_keras_variants"] * n
             + [svm] * g["audio_sklearn_variants"] * n)
    total = sum(tasks)
    out: dict[str, Any] = {
        "per_fold_s": {"audio_cnn": round(cnn), "svm": round(svm, 1), "lrcn": round(lrcn)},
        "tasks": len(tasks), "total_task_hours": round(total / 3600, 1), "workers": {}}
    for workers in (1, 8, 32):
        # longest-first onto the least loaded worker (what a queue of equal tasks gives)
        loads = [0.0] * workers
        for t in sorted(tasks, reverse=True):
            loads[loads.index(min(loads))] += t
        wall = max(loads)
        out["workers"][str(workers)] = {"hours": round(wall / 3600, 1), "days": round(wall / 86400, 2),
                                        "lower_bound_hours": round(max(total / workers, max(tasks)) / 3600, 1)}
    out["assumptions"] = {**g, "ravdess_train_rows": round(train), "measured_train_rows": train_rows
                          or g["quick_train_rows"]}
    return out


def estimate_from(path: Path) -> int:
    """Recompute the paper estimate of a written report (assumptions edited) in place."""
    report = json.loads(path.read_text(encoding="utf-8"))
    rows = report["runs"]["local"].get("train_rows", {}).get("cnn")
    report["paper_estimate"] = paper_estimate(report["per_fold_s_local"], sum(rows) / len(rows) if rows else None)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for workers, row in report["paper_estimate"]["workers"].items():
        print(f"report grid on {workers:>2s} worker(s): {row['hours']} h ({row['days']} days)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=ROOT / "configs" / "quick_audio.yaml")
    parser.add_argument("--root", type=Path, default=None, help="corpus (default: generate one)")
    parser.add_argument("--actors", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="cold Ray starts to time")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ray.json")
    parser.add_argument("--estimate-from", type=Path, default=None, metavar="JSON",
                        help="only recompute the paper estimate of a written report, in place")
    parser.add_argument("--startup-probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.startup_probe:
        startup_probe()
        return 0
    if args.estimate_from:
        return estimate_from(args.estimate_from)
    problem = namespace_problem()
    if problem:
        print(f"error: cannot make a loopback-only network namespace for Ray ({problem})", file=sys.stderr)
        return 2

    report: dict[str, Any] = {"benchmark": "Ray executor vs local executor", "spec": str(args.spec),
                              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                          "platform": platform.platform(),
                                          "load_avg_1min_at_start": machine_load()},
                              "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with tempfile.TemporaryDirectory(prefix="bench-ray-", dir="/tmp") as tmp:
        work = Path(tmp)
        root = args.root
        if root is None:
            from pipeline.core.synth.corpus import generate

            root = work / "synthetic"
            started = time.perf_counter()
            generate(root, n_actors=args.actors, seed=7, audio_only=True, progress=False)
            report["corpus_generation_s"] = round(time.perf_counter() - started, 1)
        report["corpus"] = "synthetic audio-only, seed 7" if args.root is None else str(root)
        overrides = [f"corpus.root={root}"]
        cache = work / "cache"
        env = base_env(work, cache)
        report["features_once"] = warm_cache(args.spec, overrides, cache)
        print(f"features extracted once: {report['features_once']['seconds']} s", flush=True)
        runs = {}
        for executor in ("local", "ray"):
            runs[executor] = run_spec(executor, args.spec, overrides, work / f"runs-{executor}", env)
            print(f"{executor:5s}: {runs[executor]['wall_s']} s wall (load {runs[executor]['load_avg_1min_before']}"
                  f" -> {runs[executor]['load_avg_1min_after']})", flush=True)
        if runs["local"]["accuracy_mean"] != runs["ray"]["accuracy_mean"]:
            print(f"note: accuracies differ: {runs['local']['accuracy_mean']} vs {runs['ray']['accuracy_mean']}"
                  " (Keras on CPU is not bit-reproducible across processes/threads)", flush=True)
        report["runs"] = runs
        report["ray_vs_local_wall_ratio"] = round(runs["ray"]["wall_s"] / runs["local"]["wall_s"], 2)
        report["startup"] = startup(env, args.repeats)
        print(f"Ray start-up (median of {args.repeats}): {report['startup']['median']}", flush=True)
    per_fold = {v: sum(s) / len(s) for v, s in runs["local"]["fold_seconds"].items()}
    report["per_fold_s_local"] = {v: round(s, 2) for v, s in per_fold.items()}
    if {"cnn", "svm"} <= set(per_fold):
        rows = runs["local"]["train_rows"]["cnn"]
        report["paper_estimate"] = paper_estimate(per_fold, sum(rows) / len(rows))
        for workers, row in report["paper_estimate"]["workers"].items():
            print(f"report grid on {workers:>2s} worker(s): {row['hours']} h ({row['days']} days)")
    report["machine"]["load_avg_1min_at_end"] = machine_load()
    report["note"] = ("shared 2-core machine: other jobs ran alongside; wall times include Python and "
                      "TensorFlow start-up; features were cached before either run")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
