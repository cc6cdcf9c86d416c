"""How fast the serving path answers: ``analyze`` on 4 s, 60 s and 5 min clips, the
bundle load, the dashboard's first render and first answer, and the Live page.

Figures (each beside the machine's load average, ``bench.common.machine``):

- ``load_bundle_s``: loading the bundle (what the dashboard's ``cache_resource`` does once);
- per clip (4 s, 60 s and 5 min of 1280 x 720, 30 fps H.264 + AAC): wall time of
  ``pipeline.serve.inference.analyze`` on the file's bytes (what an upload hands over) after the
  bundle is loaded and one warm-up call; the CPU time of the process over the call (all
  threads: the figure the machine's load changes least; ``cpu_audio_branch_s`` is the
  audio branch's share, ``cpu_rest_s`` the decoding, faces, video model and fusion);
  its stages grouped as probe, decode, faces, features, predict, fuse (``timings_raw``
  keeps the names the code reported; stages that run side by side overlap); the peak
  resident memory during the call (``/proc/self/status`` VmHWM, reset just before it) and
  the resident memory before it, how many times the file was opened (``av.open`` calls)
  and how many analysis windows each branch answered;
- ``dashboard``: Streamlit ``AppTest`` of ``dashboard/app.py``: the first render of the
  Analyze page, then the first answer after uploading the 4 s clip (includes loading
  the bundle, which the page does on first use);
- ``live``: the Live page's per-frame work (find the face, crop, buffer, draw) as frames
  per second on 640 x 360 frames with its Haar detector, and the latency of one answer
  (:func:`dashboard.live_engine.predict` on 3 s of sound and a full crop buffer).

Each measurement runs in a fresh interpreter (one per clip), so memory figures do not
leak between clips. ``--tree`` measures another copy of the code with the same venv (the
"before" figures were taken on a copy of the tree made before issue 12); ``--label``
names the run inside ``bench/results/bench_analyze.json``, which keeps the other labels
and reports after/before ratios where both used the same bundle.

The clips are made once under ``$AVE_BENCH_DIR`` (default ``<cache>/bench``, the feature
cache root of :func:`pipeline.core.paths.cache_dir`) from real
material: a RAVDESS actor's still (``$AVE_SHARED_DATA/ravdess-faces``) panned and zoomed
over time, and RAVDESS speech (``ravdess-speech``, silences trimmed) concatenated. Without
a bundle at ``--bundle`` (default :func:`pipeline.core.paths.default_bundle`), a stand-in of the
real bundle's shape is built there and said so: ComParE functionals + linear SVM fitted
on 28 RAVDESS clips at 16 kHz with the Silero VAD gate, an untrained ``face_cnn`` on
48 x 48 grey crops (15 frames a window, MTCNN), reliability-weighted fusion; its answers
mean nothing, its costs are the real bundle's.

    python bench/bench_analyze.py                                  # after, all figures
    python bench/bench_analyze.py --tree ../copy-before-a-change --label before
    python bench/bench_analyze.py --bundle bundles/real --clips 4,300 --skip-dashboard
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CLIP_SECONDS: tuple[int, ...] = (4, 60, 300)
FPS = 30
SIZE = (1280, 720)
AUDIO_RATE = 48000
#: Goals of issue 12 (2 cores, bundle loaded): seconds for the 4 s and the 5 min clip, MB.
GOALS = {"clip_4s_s": 0.5, "clip_300s_s": 15.0, "peak_rss_mb": 1536}
STAGES = {"probe": ("probe",), "decode": ("decode", "decode_audio", "decode_video"),
          "faces": ("faces",), "features": ("features_audio", "features_video", "vad_audio"),
          "predict": ("predict_audio", "predict_video"), "fuse": ("fuse",)}


def bench_dir() -> Path:
    """Where the generated clips and a stand-in bundle live (``AVE_BENCH_DIR``, default
    ``<cache>/bench``; made once, reused)."""
    from pipeline.core import paths

    return Path(os.environ.get("AVE_BENCH_DIR", str(paths.cache_dir() / "bench")))


def shared_data() -> Path:
    return Path(os.environ.get("AVE_SHARED_DATA", str(REPO.parent / "shared" / "data")))


# --------------------------------------------------------------------------- clips
def _speech(seconds: float) -> "Any":
    """Real RAVDESS speech, leading/trailing silence trimmed, takes joined with 0.25 s
    pauses, mono float32 at :data:`AUDIO_RATE`, exactly ``seconds`` long."""
    import librosa
    import numpy as np
    import soundfile

    files = sorted(p for p in (shared_data() / "ravdess-speech").rglob("*") if p.suffix in (".wav", ".flac"))
    if not files:
        raise SystemExit(f"no RAVDESS speech under {shared_data()} (set AVE_SHARED_DATA)")
    need, parts, total, i = int(seconds * AUDIO_RATE), [], 0, 0
    pause = np.zeros(int(0.25 * AUDIO_RATE), np.float32)
    while total < need:
        y, sr = soundfile.read(str(files[(i * 7) % len(files)]), dtype="float32", always_2d=True)
        y = y.mean(axis=1)
        if sr != AUDIO_RATE:
            y = librosa.resample(y, orig_sr=sr, target_sr=AUDIO_RATE)
        y, _ = librosa.effects.trim(y, top_db=30)
        parts += [y.astype(np.float32), pause]
        total += y.size + pause.size
        i += 1
    return np.concatenate(parts)[:need]


def make_clip(seconds: int, out: Path) -> Path:
    """A ``seconds``-long 1280 x 720 30 fps H.264 + AAC mp4 of a real face panned and
    zoomed over time with real speech (see the module docstring)."""
    import av
    import cv2
    import numpy as np

    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    face = cv2.cvtColor(cv2.imread(str(shared_data() / "ravdess-faces" / "Actor_01.png")), cv2.COLOR_BGR2RGB)
    h, w = face.shape[:2]
    base = max(SIZE[0] / w, SIZE[1] / h)
    y = _speech(seconds)
    tmp = out.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        video.options = {"preset": "veryfast", "crf": "23"}
        audio = container.add_stream("aac", rate=AUDIO_RATE)
        audio.layout = "mono"
        for k in range(seconds * FPS):
            t = k / FPS
            zoom = base * (1.0 + 0.15 * (1 - np.cos(2 * np.pi * t / 7.0)))  # slow zoom in and out
            cx = w / 2 + 0.06 * w * np.sin(2 * np.pi * t / 11.0)  # slow pan
            cy = h / 2 + 0.04 * h * np.sin(2 * np.pi * t / 13.0)
            m = np.float32([[zoom, 0, SIZE[0] / 2 - zoom * cx], [0, zoom, SIZE[1] / 2 - zoom * cy]])
            rgb = cv2.warpAffine(face, m, SIZE, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            container.mux(video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(video.encode())
        for start in range(0, y.size, 1024):
            frame = av.AudioFrame.from_ndarray(y[None, start:start + 1024], format="fltp", layout="mono")
            frame.rate = AUDIO_RATE
            container.mux(audio.encode(frame))
        container.mux(audio.encode())
    os.replace(tmp, out)
    return out


def clip_path(seconds: int) -> Path:
    return bench_dir() / "clips" / f"av_{seconds}s_720p.mp4"


# --------------------------------------------------------------------------- stand-in bundle
SEVEN_CODES = {"01": "neutral", "03": "happy", "04": "sad", "05": "angry", "06": "fearful",
               "07": "disgust", "08": "surprised"}


def build_standin(out: Path) -> None:
    """The stand-in bundle (module docstring), written with the measured tree's own
    :func:`pipeline.research.export.write_bundle`."""
    import numpy as np

    import models
    from pipeline.core import audio as audio_mod
    from pipeline.research.export import write_bundle
    from pipeline.serve.bundle import BranchModel
    from pipeline.serve.fusion import ReliabilityFusion
    from pipeline.core.media import load_audio
    from pipeline.core.preprocessing import Preprocessing

    a_params = Preprocessing(sample_rate=16000, labels="seven", voice_activity="vad")
    v_params = Preprocessing(crop_size=48, color="gray", labels="seven", n_frames=15, crop_margin=0.0)
    classes = a_params.classes
    x, y = [], []
    root = shared_data() / "ravdess-speech"
    for code, emotion in SEVEN_CODES.items():
        files = sorted(p for p in root.rglob(f"03-01-{code}-*") if p.suffix in (".wav", ".flac"))[:4]
        for f in files:
            x.append(audio_mod.featurize(load_audio(f, 16000), a_params, "compare"))
            y.append(classes.index(emotion))
    svm = models.build("svm_linear", (6373,), len(classes), C=1e-3).fit(np.array(x), np.array(y))
    cnn = models.build("face_cnn", (48, 48, 1), len(classes))
    ua, uv = 0.57, 0.60
    write_bundle(out, name="standin",
                 audio=BranchModel("audio", "svm_linear", "sklearn", "compare", a_params, svm,
                                   metrics={"uar_mean": ua, "accuracy_mean": 0.58, "protocol": "speaker"}),
                 video=BranchModel("video", "face_cnn", "keras", "faces", v_params, cnn,
                                   metrics={"uar_mean": uv, "accuracy_mean": 0.6, "protocol": "holdout"}),
                 fusion=ReliabilityFusion(0.45, classes, "stand-in weights"),
                 extra={"detector": "mtcnn", "standin": "bench/bench_analyze.py: answers mean nothing"})


# --------------------------------------------------------------------------- child side
def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _count_opens() -> list[int]:
    import av

    counter = [0]
    original = av.open

    def counting(*args: Any, **kwargs: Any) -> Any:
        counter[0] += 1
        return original(*args, **kwargs)

    av.open = counting
    return counter


def _grouped(timings: dict[str, float]) -> dict[str, float]:
    return {g: round(sum(timings.get(k, 0.0) for k in keys), 3) for g, keys in STAGES.items()}


def _windows(result: Any) -> dict[str, int]:
    rows = result.timeline or []
    if not rows:
        return {"windows": 1, "audio": int(result.audio.ok), "video": int(result.video.ok),
                "fused": int(result.fused.ok)}
    return {"windows": len(rows), "audio": sum(w.audio.ok for w in rows),
            "video": sum(w.video.ok for w in rows), "fused": sum(w.fused.ok for w in rows)}


def _machine() -> dict[str, Any]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_common_file", HERE / "common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.machine()


def run_analyze(bundle_dir: str, clip: str, warm_clip: str, repeats: int) -> dict[str, Any]:
    """In the child: load the bundle, warm up on the short clip, time ``analyze``."""
    opens = _count_opens()
    import pipeline.serve.inference as inference_mod
    from pipeline.serve.bundle import load_bundle
    from pipeline.serve.inference import analyze

    # CPU of the audio branch's own work, in whichever thread it runs (the code
    # before issue 12 ran it in the caller's thread, after it in a second one)
    branch_cpu = {"audio": 0.0}
    real_audio = inference_mod._audio

    def timed_audio(*args: Any, **kwargs: Any) -> Any:
        c0 = time.thread_time()
        try:
            return real_audio(*args, **kwargs)
        finally:
            branch_cpu["audio"] += time.thread_time() - c0

    inference_mod._audio = timed_audio

    t0 = time.perf_counter()
    bundle = load_bundle(bundle_dir)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    analyze(Path(warm_clip).read_bytes(), bundle)
    warm_s = time.perf_counter() - t0
    data = Path(clip).read_bytes()
    runs, results = [], []
    for _ in range(max(1, repeats)):
        rss_before = _status_kb("VmRSS")
        reset = _reset_peak()
        opens[0] = 0
        branch_cpu["audio"] = 0.0
        load = _machine()
        t0, c0 = time.perf_counter(), time.process_time()
        result = analyze(data, bundle)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        runs.append({"wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                     "cpu_audio_branch_s": round(branch_cpu["audio"], 3),
                     "cpu_rest_s": round(cpu - branch_cpu["audio"], 3), "opens": opens[0], "rss_before_mb": round(rss_before / 1024),
                     "peak_rss_mb": round(_status_kb("VmHWM") / 1024), "peak_is_this_call": reset,
                     "load_avg_1min": load["load_avg_1min"], "stages_s": _grouped(result.timings),
                     "timings_raw": {k: round(v, 3) for k, v in result.timings.items()}})
        results.append(result)
        del result
    best = min(runs, key=lambda r: r["wall_s"])
    median = statistics.median(r["wall_s"] for r in runs)
    last = results[-1]
    return {
        "clip": Path(clip).name, "clip_seconds": round(float(last.duration), 2),
        "analysed_seconds": round(float(getattr(last, "analysed_seconds", last.duration) or last.duration), 2),
        "load_bundle_s": round(load_s, 3), "warm_up_call_s": round(warm_s, 3),
        "repeats": len(runs), "wall_s_median": round(median, 3), "wall_s_min": best["wall_s"],
        "cpu_s_median": round(statistics.median(r["cpu_s"] for r in runs), 3),
        "cpu_audio_branch_s": runs[len(runs) // 2]["cpu_audio_branch_s"],
        "cpu_rest_s": runs[len(runs) // 2]["cpu_rest_s"],
        "stages_s": runs[len(runs) // 2]["stages_s"], "timings_raw": runs[len(runs) // 2]["timings_raw"],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs), "rss_before_mb": runs[0]["rss_before_mb"],
        "file_opens_per_call": max(r["opens"] for r in runs), "answered": _windows(last),
        "answer": {"audio": last.audio.status, "video": last.video.status,
                   "fused": last.fused.winner[0] if last.fused.winner else last.fused.status},
        "runs": runs, "machine": _machine(), "bundle": bundle.id,
        "detector": getattr(bundle.face_detector(), "name", "?") if bundle.video is not None else None,
    }


def run_live(bundle_dir: str, clip: str, n_frames: int = 90, repeats: int = 5) -> dict[str, Any]:
    """In the child: the Live page's per-frame callback work and one answer's latency."""
    import av

    from dashboard import live_engine
    from pipeline.serve.bundle import load_bundle
    from pipeline.core.faces import HaarDetector
    from pipeline.core.media import load_audio

    bundle = load_bundle(bundle_dir)
    params = (bundle.video or bundle.audio).params
    rate = bundle.audio.params.sample_rate if bundle.audio is not None else params.sample_rate
    frames = []
    with av.open(clip) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24", width=640, height=360))
            if len(frames) >= n_frames:
                break
    detector = HaarDetector()
    holder = live_engine.LiveHolder(n_crops=params.n_frames, sample_rate=rate)
    per_frame, found = [], 0
    for rgb in frames:
        t0 = time.perf_counter()
        box, crop = live_engine.face_crop(rgb, detector, params.crop_size, params.crop_margin)
        holder.push_frame(box, crop)
        found += box is not None
        _, answer = holder.overlay()
        live_engine.annotate(rgb, box, live_engine.label_of(answer.video), holder.fps())
        per_frame.append(time.perf_counter() - t0)
    holder.push_audio(load_audio(clip, rate)[: int(3.0 * rate)])
    latencies, error, answer = [], "", None
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        try:
            answer = live_engine.predict(bundle, holder)
        except Exception as err:  # the "before" live path could not feed a per-frame face model
            error = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
            break
        latencies.append(time.perf_counter() - t0)
    latencies = latencies[1:]  # the first call builds graphs
    median_frame = statistics.median(per_frame)
    return {
        "frames": len(frames), "frame_size": "640x360", "detector": "haar",
        "callback_ms_median": round(1000 * median_frame, 2), "fps_capacity": round(1.0 / median_frame, 1),
        "frames_with_face": found,
        "answer_latency_s_median": round(statistics.median(latencies), 3) if latencies else None,
        "answer": None if answer is None else {"audio": answer.audio.status, "video": answer.video.status,
                                               "fused": answer.fused.winner[0] if answer.fused.winner
                                               else answer.fused.status},
        "error": error, "machine": _machine(),
    }


def run_dashboard(app: str, bundle_dir: str, clip: str) -> dict[str, Any]:
    """In the child: AppTest of the app: first render, then the first answer to an upload."""
    import streamlit_webrtc
    from types import SimpleNamespace

    streamlit_webrtc.webrtc_streamer = lambda key, **kw: SimpleNamespace(  # no browser here
        state=SimpleNamespace(playing=False), video_processor=None)
    os.environ["AVE_BUNDLE"] = bundle_dir
    from streamlit.testing.v1 import AppTest

    load = _machine()
    at = AppTest.from_file(app, default_timeout=900)
    t0 = time.perf_counter()
    at.run()
    first_render = time.perf_counter() - t0
    ok_render = not at.exception
    t0 = time.perf_counter()
    at.file_uploader(key="upload").set_value((Path(clip).name, Path(clip).read_bytes(), "video/mp4")).run()
    first_answer = time.perf_counter() - t0
    texts = [str(e.value) for kind in ("success", "warning", "markdown") for e in getattr(at, kind)]
    answered = any("leans towards" in t or "comes across as" in t for t in texts)
    t0 = time.perf_counter()
    at.run()  # a rerun (a slider moved): the answer comes from the page's cache
    rerun = time.perf_counter() - t0
    return {"first_render_s": round(first_render, 3), "render_ok": ok_render,
            "first_answer_after_upload_s": round(first_answer, 3),
            "answered": answered and not at.exception, "exception": [str(e.value)[:300] for e in at.exception],
            "rerun_after_answer_s": round(rerun, 3), "clip": Path(clip).name, "load_before": load,
            "machine": _machine(), "note": "Streamlit AppTest (no browser); the first answer includes "
                                           "loading the bundle, which the page does on first use"}


# --------------------------------------------------------------------------- parent side
def _child(tree: Path, args: list[str], timeout: float = 3600) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree), "TF_CPP_MIN_LOG_LEVEL": "2",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", *args]
    proc = subprocess.run(cmd, cwd=str(tree), env=env, capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
        return {"error": f"exit {proc.returncode}", "stderr_tail": tail}
    return json.loads(lines[-1])


def _ratio(after: Any, before: Any) -> float | None:
    try:
        return round(float(after) / float(before), 3) if float(before) else None
    except (TypeError, ValueError):
        return None


def ratios(report: dict[str, Any]) -> dict[str, Any]:
    """after / before for every figure both labels measured with the same bundle."""
    runs = report.get("runs", {})
    before, after = runs.get("before"), runs.get("after")
    if not before or not after:
        return {}
    if before.get("bundle") != after.get("bundle"):
        return {"note": f"before used bundle {before.get('bundle')}, after {after.get('bundle')}: not compared"}
    out: dict[str, Any] = {"load_bundle_s": _ratio(after.get("load_bundle_s"), before.get("load_bundle_s"))}
    for name, a in (after.get("clips") or {}).items():
        b = (before.get("clips") or {}).get(name) or {}
        if "error" in a or "error" in b or not b:
            continue
        out[name] = {"wall_s": _ratio(a["wall_s_median"], b["wall_s_median"]),
                     "cpu_s": _ratio(a.get("cpu_s_median"), b.get("cpu_s_median")),
                     "peak_rss_mb": _ratio(a["peak_rss_mb"], b["peak_rss_mb"]),
                     "file_opens": f"{b['file_opens_per_call']} -> {a['file_opens_per_call']}"}
    da, db = after.get("dashboard") or {}, before.get("dashboard") or {}
    if "first_render_s" in da and "first_render_s" in db:
        out["dashboard"] = {k: _ratio(da[k], db[k]) for k in ("first_render_s", "first_answer_after_upload_s")}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", help="bundle folder (default: pipeline.core.paths.default_bundle(), "
                                         "else a stand-in built under $AVE_BENCH_DIR)")
    parser.add_argument("--tree", default=str(REPO), help="copy of the code to measure (default: this one)")
    parser.add_argument("--label", default="after", help="name of this run in the JSON (before, after, ...)")
    parser.add_argument("--clips", default=",".join(map(str, CLIP_SECONDS)), help="clip lengths in seconds")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls for the 4 s clip (1 for longer)")
    parser.add_argument("--skip-dashboard", action="store_true")
    parser.add_argument("--skip-live", action="store_true")
    parser.add_argument("--out", default=str(HERE / "results" / "bench_analyze.json"))
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:  # inside a measuring interpreter: one job, one JSON line
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from pipeline.core.native import load_before_tensorflow

        load_before_tensorflow()
        kind, *rest = args.child
        if kind == "standin":
            build_standin(Path(rest[0]))
            out: dict[str, Any] = {"built": rest[0]}
        elif kind == "analyze":
            out = run_analyze(rest[0], rest[1], rest[2], int(rest[3]))
        elif kind == "live":
            out = run_live(rest[0], rest[1])
        else:
            out = run_dashboard(rest[0], rest[1], rest[2])
        print(json.dumps(out, default=float), flush=True)
        return 0

    tree = Path(args.tree).resolve()
    if args.bundle:
        bundle_dir = Path(args.bundle).resolve()
    else:
        sys.path.insert(0, str(tree))
        from pipeline.core import paths

        bundle_dir = paths.default_bundle().resolve()
    kind = "given"
    if not (bundle_dir / "bundle.json").is_file():
        if args.bundle:
            print(f"error: no bundle at {bundle_dir}", file=sys.stderr)
            return 2
        bundle_dir = bench_dir() / "standin_bundle"
        kind = "stand-in (no real bundle here: same models and features as bundles/real, untrained video)"
        if not (bundle_dir / "bundle.json").is_file():
            print(f"building the stand-in bundle at {bundle_dir}", flush=True)
            built = _child(tree, ["standin", str(bundle_dir)])
            if "error" in built:
                print(json.dumps(built, indent=2), file=sys.stderr)
                return 1
    seconds = [int(s) for s in args.clips.split(",") if s.strip()]
    print(f"clips {seconds} under {bench_dir() / 'clips'} (made once)", flush=True)
    clips = {s: make_clip(s, clip_path(s)) for s in sorted(set(seconds) | {4})}
    warm = str(clips[4])

    def shown(path: Path) -> str:  # no machine's folders in the committed JSON
        return "this checkout" if path == REPO else (path.name if path.is_absolute() else str(path))

    run: dict[str, Any] = {"tree": shown(tree), "bundle_dir": shown(bundle_dir), "bundle_kind": kind,
                           "machine_at_start": _machine(), "clips": {}}
    for s in seconds:
        print(f"analyze {s} s clip ...", flush=True)
        result = _child(tree, ["analyze", str(bundle_dir), str(clips[s]), warm, str(args.repeats if s <= 10 else 1)])
        run["clips"][f"{s}s"] = result
        run.setdefault("bundle", result.get("bundle"))
        run.setdefault("load_bundle_s", result.get("load_bundle_s"))
        print(json.dumps({k: result.get(k) for k in ("wall_s_median", "cpu_s_median", "stages_s", "peak_rss_mb",
                                                      "file_opens_per_call", "answered", "error")}), flush=True)
    if not args.skip_live:
        print("live page ...", flush=True)
        run["live"] = _child(tree, ["live", str(bundle_dir), warm])
        print(json.dumps(run["live"]), flush=True)
    if not args.skip_dashboard:
        print("dashboard (AppTest) ...", flush=True)
        run["dashboard"] = _child(tree, ["dashboard", str(tree / "dashboard" / "app.py"), str(bundle_dir), warm])
        print(json.dumps(run["dashboard"]), flush=True)
    out_path = Path(args.out)
    report: dict[str, Any] = {}
    if out_path.is_file():
        try:
            report = json.loads(out_path.read_text())
        except json.JSONDecodeError:
            report = {}
    if "runs" not in report:
        report = {"runs": {}}
    report["benchmark"] = ("pipeline.serve.inference.analyze on 4 s / 60 s / 5 min 720p AV clips, bundle load, "
                           "dashboard first render and first answer, Live page fps and latency")
    report["goals"] = GOALS
    previous = report["runs"].get(args.label) or {}
    if previous.get("bundle") == run.get("bundle"):  # a partial rerun keeps the other figures
        run["clips"] = {**(previous.get("clips") or {}), **run["clips"]}
        for key in ("live", "dashboard"):
            if key not in run and key in previous:
                run[key] = previous[key]
    report["runs"][args.label] = run
    c4, c300 = run["clips"].get("4s", {}), run["clips"].get("300s", {})
    run["goals"] = {
        "clip_4s_under_0.5s": c4.get("wall_s_median", 1e9) < GOALS["clip_4s_s"] if c4 else None,
        "clip_300s_under_15s": c300.get("wall_s_median", 1e9) < GOALS["clip_300s_s"] if c300 else None,
        "every_300s_window_answered": (c300.get("answered", {}).get("fused") == c300.get("answered", {}).get("windows"))
        if c300 else None,
        "peak_under_1.5GB": all(c.get("peak_rss_mb", 1e9) < GOALS["peak_rss_mb"] for c in run["clips"].values()),
    }

    report["ratios_after_over_before"] = ratios(report)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=2, default=float) + "\n")
    os.replace(tmp, out_path)
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
