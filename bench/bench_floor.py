"""Serving speed against the decode floor (issue 20): on the same clips, in the same run,

- ``floor_all_s``: PyAV decoding the whole file once, every video frame and the sound,
  threaded (``thread_type="AUTO"``), nothing converted: the least any analysis costs;
- ``floor_sampled_s``: :func:`pipeline.core.media.decode` with the analysis's own
  :class:`pipeline.core.video.WindowSampler` (the frames the windows need, converted at
  detection size) and the sound at the bundle's rate, but no faces, features or models:
  the decode the analysis does;
- ``before``: ``pipeline.serve.inference.analyze`` of a frozen copy of the tree as it was
  before this work (``git archive`` of :data:`BEFORE_COMMIT`, extracted once under
  ``$AVE_BENCH_DIR/legacy-<commit>``, run with the same venv);
- ``new``: ``analyze`` of this tree;

each after the bundle is loaded and one warm-up call on the 4 s clip, in a fresh
interpreter per clip and code (memory figures do not leak): median, min and max wall
time over ``--repeats`` calls, CPU time, peak resident memory (VmHWM reset before the
call) and peak private memory (RssAnon sampled every 20 ms: without the mapped library
files), stage times, and the ratios new / floor and new / before; the winners (clip and
every window) of before and new, and how often they agree. ``cli`` times
``python -m pipeline predict --json`` from a cold interpreter (start-up included) on the
4 s and 5 min clips and on a folder of ten copies of the 4 s clip (one call), and its
refusal of an empty file and of a text file. The 1-minute
load average is recorded beside every figure (the machine is shared: compare ratios
measured in the same run, not absolute seconds across runs).

Clips (made once, cached under ``$AVE_BENCH_DIR/clips``, shared with
``bench/bench_analyze.py``): 4 s, 60 s and 5 min of 1280 x 720 30 fps H.264 + AAC, a real
RAVDESS face panned and zoomed with real RAVDESS speech; and a 20 s 1920 x 1080 "phone"
clip stored landscape with a display rotation of -90 degrees (shown portrait), like a
phone held upright.

    python bench/bench_floor.py                       # all clips, short repeats
    python bench/bench_floor.py --clips 4,60 --repeats 3 --skip-before
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if "--child" not in sys.argv and str(REPO) not in sys.path:
    # the parent, run as a script: ``bench`` importable from this checkout (a child gets
    # the measured tree on PYTHONPATH, which must not be shadowed)
    sys.path.insert(0, str(REPO))

from bench import bench_analyze as clips  # noqa: E402  (clip making, shared with bench_analyze)
from bench.common import machine, write_result  # noqa: E402

#: The commit the "before" figures run: main just before issue 20's work.
BEFORE_COMMIT = "46957c9"
CLIPS: tuple[str, ...] = ("4", "60", "300", "phone")
PHONE_SECONDS = 20
PHONE_SIZE = (1920, 1080)  # stored landscape; shown 1080 x 1920 (rotation -90)
#: Issue 20's goals (2 cores, bundle loaded): seconds, ratios, MB.
GOALS = {"clip_300s_s": 15.0, "clip_300s_over_floor": 1.5, "cli_300s_over_floor": 2.0,
         "phone_over_floor": 2.0, "clip_4s_s": 0.3, "cli_cold_4s_s": 4.0, "refusal_s": 1.0,
         "peak_rss_300s_mb": 1024}


# --------------------------------------------------------------------------- clips
def phone_clip() -> Path:
    """The 20 s 1080p phone clip (module docstring), made once."""
    import av
    import cv2
    import numpy as np

    out = clips.bench_dir() / "clips" / f"phone_{PHONE_SECONDS}s_1080p_rot.mp4"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    face = cv2.cvtColor(cv2.imread(str(clips.shared_data() / "ravdess-faces" / "Actor_01.png")), cv2.COLOR_BGR2RGB)
    shown_w, shown_h = PHONE_SIZE[1], PHONE_SIZE[0]  # portrait as the viewer sees it
    h, w = face.shape[:2]
    base = max(shown_w / w, shown_h / h) * 0.8
    y = clips._speech(PHONE_SECONDS)
    rate = clips.AUDIO_RATE
    tmp = out.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as container:
        video = container.add_stream("libx264", rate=clips.FPS)
        video.width, video.height, video.pix_fmt = PHONE_SIZE[0], PHONE_SIZE[1], "yuv420p"
        video.options = {"preset": "veryfast", "crf": "23"}
        video.set_display_rotation(-90)  # shown turned 90 degrees clockwise
        audio = container.add_stream("aac", rate=rate)
        audio.layout = "mono"
        for k in range(PHONE_SECONDS * clips.FPS):
            t = k / clips.FPS
            zoom = base * (1.0 + 0.1 * (1 - np.cos(2 * np.pi * t / 7.0)))
            cx = w / 2 + 0.05 * w * np.sin(2 * np.pi * t / 11.0)
            m = np.float32([[zoom, 0, shown_w / 2 - zoom * cx], [0, zoom, shown_h / 2 - zoom * h / 2]])
            upright = cv2.warpAffine(face, m, (shown_w, shown_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            stored = np.ascontiguousarray(np.rot90(upright, k=1))  # turned back 90 degrees counter-clockwise
            container.mux(video.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")))
        container.mux(video.encode())
        for start in range(0, y.size, 1024):
            frame = av.AudioFrame.from_ndarray(y[None, start:start + 1024], format="fltp", layout="mono")
            frame.rate = rate
            container.mux(audio.encode(frame))
        container.mux(audio.encode())
    os.replace(tmp, out)
    return out


def clip_file(name: str) -> Path:
    return phone_clip() if name == "phone" else clips.make_clip(int(name), clips.clip_path(int(name)))


def before_tree() -> Path:
    """The frozen copy of the code before this work (``git archive`` of
    :data:`BEFORE_COMMIT`), extracted once."""
    out = clips.bench_dir().resolve() / f"legacy-{BEFORE_COMMIT}"
    if (out / "pipeline" / "serve" / "inference.py").is_file():
        return out
    part = out.with_name(out.name + ".part")
    part.mkdir(parents=True, exist_ok=True)
    archive = part / "tree.tar"
    subprocess.run(["git", "-C", str(REPO), "archive", "-o", str(archive), BEFORE_COMMIT,
                    "pipeline", "models", "bench"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(part, filter="data")
    archive.unlink()
    os.replace(part, out)
    return out


# --------------------------------------------------------------------------- child side
def _spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "n": len(values)}


def floor_all(clip: str) -> float:
    """Seconds to decode every frame of every audio and video stream once (threaded)."""
    import av

    t0 = time.perf_counter()
    with av.open(clip) as container:
        streams = [s for s in container.streams if s.type in ("audio", "video")]
        for s in streams:
            s.thread_type = "AUTO"
        for _ in container.decode(*streams):
            pass
    return time.perf_counter() - t0


def floor_sampled(clip: str, bundle: Any) -> float:
    """Seconds for the analysis's own decode (sound + the frames its windows keep, converted
    at detection size), with nothing done to them."""
    from pipeline.core import media, video as video_mod
    from pipeline.serve import inference

    first = bundle.audio or bundle.video
    rate = bundle.audio.params.sample_rate if bundle.audio is not None else None
    params = (bundle.video or first).params

    def plan(m: Any) -> Any:
        spans = inference.windows(min(m.duration, inference.MAX_SECONDS), first.params)
        single = len(spans) == 1
        step = 1.0 / m.info.video_fps if m.info.video_fps > 0 else 1 / 30.0
        seconds = min(m.info.video_duration or m.info.duration, inference.MAX_SECONDS)
        return video_mod.WindowSampler(params.n_frames, [(0.0, seconds)] if single else spans, single=single,
                                       span=first.params.duration, step=step,
                                       single_until=first.params.offset + 1.5 * first.params.duration,
                                       on_window=lambda *a: None)

    t0 = time.perf_counter()
    media.decode(clip, sample_rate=rate, max_seconds=inference.MAX_SECONDS,
                 max_side=inference._frame_side(bundle, None), plan=plan)
    return time.perf_counter() - t0


def _winners(result: Any) -> dict[str, Any]:
    def win(r: Any) -> str:
        return r.winner[0] if getattr(r, "winner", None) else r.status

    return {"clip": {"audio": win(result.audio), "video": win(result.video), "fused": win(result.fused)},
            "windows": [{"audio": win(w.audio), "video": win(w.video), "fused": win(w.fused)}
                        for w in (result.timeline or [])]}


class _AnonPeak:
    """The highest ``RssAnon`` (the process's private memory: heaps, arrays, model
    weights; not the shared-library pages that ``VmHWM`` also counts: TensorFlow's import
    alone maps ~515 MB of them) sampled every 20 ms while the ``with`` block runs, in MB."""

    def __enter__(self) -> "_AnonPeak":
        import threading

        self.mb, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while True:
            self.mb = max(self.mb, round(clips._status_kb("RssAnon") / 1024))
            if self._stop.wait(0.02):
                return

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.mb = max(self.mb, round(clips._status_kb("RssAnon") / 1024))


def run_clip(bundle_dir: str, clip: str, warm_clip: str, repeats: int, with_floor: bool) -> dict[str, Any]:
    """In the child: load the bundle, warm up, then (optionally) the two floors and the
    analysis, alternating, ``repeats`` times."""
    from pipeline.serve.bundle import load_bundle
    from pipeline.serve.inference import analyze

    t0 = time.perf_counter()
    bundle = load_bundle(bundle_dir)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    analyze(warm_clip, bundle)
    warm_s = time.perf_counter() - t0
    walls, cpus, peaks, anon, loads, f_all, f_sampled = [], [], [], [], [], [], []
    result, stages = None, {}
    for _ in range(max(1, repeats)):
        if with_floor:
            f_all.append(floor_all(clip))
            f_sampled.append(floor_sampled(clip, bundle))
        loads.append(round(os.getloadavg()[0], 2))
        reset = clips._reset_peak()
        with _AnonPeak() as private:
            t0, c0 = time.perf_counter(), time.process_time()
            result = analyze(clip, bundle)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        anon.append(private.mb)
        peaks.append(round(clips._status_kb("VmHWM") / 1024) if reset else None)
        stages = {k: round(v, 3) for k, v in result.timings.items()}
    out: dict[str, Any] = {
        "load_bundle_s": round(load_s, 3), "warm_up_s": round(warm_s, 3), "wall_s": _spread(walls),
        "cpu_s_median": round(statistics.median(cpus), 3), "peak_rss_mb": max((p for p in peaks if p), default=None),
        "peak_private_mb": max(anon), "rss_file_mb_after": round(clips._status_kb("RssFile") / 1024),
        "stages_s_last": stages, "load_avg_1min": loads, "clip_seconds": round(float(result.duration), 2),
        "winners": _winners(result), "machine": machine(),
    }
    if with_floor:
        out["floor_all_s"] = _spread(f_all)
        out["floor_sampled_s"] = _spread(f_sampled)
    return out


# --------------------------------------------------------------------------- parent side
def _child(tree: Path, args: list[str], timeout: float = 3600) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree), "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", *args]
    proc = subprocess.run(cmd, cwd=str(tree), env=env, capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
        return {"error": f"exit {proc.returncode}", "stderr_tail": tail}
    return json.loads(lines[-1])


def cli_wall(args: list[str], repeats: int) -> dict[str, Any]:
    """Wall seconds of ``python -m pipeline <args>`` from a cold interpreter, and its exit code."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    walls, code, loads = [], None, []
    for _ in range(max(1, repeats)):
        loads.append(round(os.getloadavg()[0], 2))
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=str(REPO), env=env,
                              capture_output=True, text=True, timeout=1800)
        walls.append(time.perf_counter() - t0)
        code = proc.returncode
    return {"wall_s": _spread(walls), "exit_code": code, "load_avg_1min": loads,
            "stderr_last_line": (proc.stderr.strip().splitlines() or [""])[-1][:300]}


def _agreement(before: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    wb, wn = before.get("winners") or {}, new.get("winners") or {}
    out: dict[str, Any] = {"clip_same": wb.get("clip") == wn.get("clip")}
    rows_b, rows_n = wb.get("windows") or [], wn.get("windows") or []
    if rows_b and len(rows_b) == len(rows_n):
        for key in ("audio", "video", "fused"):
            same = sum(a[key] == b[key] for a, b in zip(rows_b, rows_n))
            out[f"windows_same_{key}"] = f"{same}/{len(rows_b)}"
    return out


def _ratio(a: Any, b: Any) -> float | None:
    try:
        return round(float(a) / float(b), 2) if float(b) else None
    except (TypeError, ValueError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default=str(REPO / "bundles" / "real"))
    parser.add_argument("--clips", default=",".join(CLIPS), help="4, 60, 300 (seconds) and/or phone")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per clip and code, 4 s, 60 s and phone clips")
    parser.add_argument("--long-repeats", type=int, default=1, help="timed calls for the 5 min clip (short by default)")
    parser.add_argument("--skip-before", action="store_true", help="do not run the frozen 'before' copy")
    parser.add_argument("--skip-cli", action="store_true")
    parser.add_argument("--out", default="bench_floor", help="name under bench/results/")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:  # one job in a fresh interpreter, one JSON line
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        bundle_dir, clip, warm, repeats, with_floor = args.child
        print(json.dumps(run_clip(bundle_dir, clip, warm, int(repeats), with_floor == "1"), default=float), flush=True)
        return 0

    names = [c.strip() for c in args.clips.split(",") if c.strip()]
    warm = str(clip_file("4").resolve())
    files = {name: str(clip_file(name).resolve()) for name in names}
    legacy = None if args.skip_before else before_tree()
    report: dict[str, Any] = {"bundle": args.bundle, "before_commit": BEFORE_COMMIT, "repeats": args.repeats,
                              "long_repeats": args.long_repeats,
                              "goals": GOALS, "machine_at_start": machine(), "clips": {}}
    for name in names:
        row: dict[str, Any] = {"file": Path(files[name]).name}
        repeats = str(args.long_repeats if name == "300" else args.repeats)
        row["new"] = _child(REPO, [args.bundle, files[name], warm, repeats, "1"])
        if legacy is not None:
            row["before"] = _child(legacy, [args.bundle, files[name], warm, repeats, "0"])
        new, before = row["new"], row.get("before") or {}
        if "wall_s" in new:
            med = new["wall_s"]["median"]
            row["new_over_floor_all"] = _ratio(med, new["floor_all_s"]["median"])
            row["new_over_floor_sampled"] = _ratio(med, new["floor_sampled_s"]["median"])
            if "wall_s" in before:
                row["new_over_before"] = _ratio(med, before["wall_s"]["median"])
                row["agreement"] = _agreement(before, new)
        report["clips"][name] = row
        write_result(args.out, report)  # kept clip by clip: a long run stopped early still tells
        print(f"{name}: {json.dumps({k: v for k, v in row.items() if k not in ('new', 'before')})}", flush=True)
    if not args.skip_cli:
        cli: dict[str, Any] = {}
        for name in ("4", "300"):
            if name in files:
                cli[f"predict_json_{name}"] = cli_wall(["predict", "--json", "--bundle", args.bundle, files[name]], 1)
        if "4" in files:  # a folder of ten 4 s clips in one call: the models load once
            many = clips.bench_dir() / "many"
            many.mkdir(parents=True, exist_ok=True)
            for k in range(10):
                target = many / f"take{k:02d}.mp4"
                if not target.exists():
                    target.write_bytes(Path(files["4"]).read_bytes())
            cli["predict_json_4_x10_folder"] = cli_wall(["predict", "--json", "--bundle", args.bundle, str(many)], 1)
        tmp = clips.bench_dir() / "refuse"
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / "empty.mp4").write_bytes(b"")
        (tmp / "notes.mp4").write_text("this is not a video\n" * 20)
        for label in ("empty", "notes"):
            cli[f"refuse_{label}"] = cli_wall(["predict", "--bundle", args.bundle, str(tmp / f"{label}.mp4")], 2)
        if "300" in files and "wall_s" in report["clips"]["300"].get("new", {}):
            cli["predict_json_300_over_floor_all"] = _ratio(
                cli["predict_json_300"]["wall_s"]["median"], report["clips"]["300"]["new"]["floor_all_s"]["median"])
        report["cli"] = cli
        print(f"cli: {json.dumps(cli)}", flush=True)
    report["machine_at_end"] = machine()
    print(write_result(args.out, report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
