"""Video branch speed: decode + detect + crop, face detection on the RAVDESS stills, and
the video models' inference time for one clip. Writes ``bench/results/video.json``.

The clip is a 1280 x 720, 30 fps, 3.5 s pan/zoom over a real RAVDESS still when
``AVE_SHARED_DATA`` names the shared data folder (else a synthetic drawn face, which
MTCNN may not find). Timings are wall-clock medians on this machine; other processes
sharing the CPU inflate them, so the JSON records the load average at start and end
and, beside each wall time, the CPU time the process used (steadier on a busy box).

    AVE_SHARED_DATA=/path/to/shared/data python bench/bench_video.py
"""
from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

def _timed_cpu(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """Median wall seconds, median CPU seconds of this process (all its threads), and
    the last result of ``repeat`` calls. On a shared, busy machine the CPU time is the
    steadier figure: it is roughly what the call takes on an idle core."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def _still(shared: Path | None) -> tuple[np.ndarray, str]:
    import cv2

    if shared is not None:
        path = shared / "ravdess-faces" / "Actor_01.png"
        if path.is_file():
            return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB), f"real still {path.name}"
    image = np.full((224, 398, 3), 235, np.uint8)  # a drawn face: a fallback, not a real test
    cv2.ellipse(image, (199, 110), (55, 72), 0, 0, 360, (190, 150, 130), -1)
    for x in (177, 221):
        cv2.circle(image, (x, 95), 7, (40, 30, 30), -1)
    cv2.ellipse(image, (199, 145), (20, 8), 0, 0, 180, (120, 40, 40), 3)
    return image, "synthetic drawn face"


def make_clip(still: np.ndarray, path: Path, seconds: float = 3.5, fps: int = 30) -> Path:
    """A 1280 x 720 h264 clip panning and zooming slowly over ``still``."""
    import av
    import cv2

    big = cv2.resize(still, (1280, 720), interpolation=cv2.INTER_CUBIC)
    n = int(seconds * fps)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        for i in range(n):
            zoom, dx = 1 + 0.15 * i / n, 40 * np.sin(i / 15)
            warp = np.float32([[zoom, 0, dx - (zoom - 1) * 640], [0, zoom, -(zoom - 1) * 360]])
            frame = av.VideoFrame.from_ndarray(cv2.warpAffine(big, warp, (1280, 720)), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def bench_stills(shared: Path | None, detectors: dict[str, Any]) -> dict[str, Any]:
    """How many of the 24 RAVDESS stills each detector finds, and ms per image."""
    import cv2

    stills = sorted((shared / "ravdess-faces").glob("Actor_*.png")) if shared else []
    if not stills:
        return {"skipped": "AVE_SHARED_DATA not set"}
    images = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in stills]
    out: dict[str, Any] = {"n_images": len(images), "image_size": list(images[0].shape[1::-1])}
    for name, detector in detectors.items():
        detector.detect(images[0])  # load / warm up
        found, times, cpus = 0, [], []
        for image in images:
            start, cpu = time.perf_counter(), time.process_time()
            found += bool(detector.detect(image))
            times.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu)
        out[name] = {"found": found, "ms_per_image": round(1000 * statistics.median(times), 1),
                     "cpu_ms_per_image": round(1000 * statistics.median(cpus), 1)}
        print(f"stills: {name} found {found}/{len(images)} faces, {out[name]['ms_per_image']} ms "
              f"({out[name]['cpu_ms_per_image']} CPU ms) per image")
    return out


def bench_clip(clip: Path, detectors: dict[str, Any], repeat: int) -> dict[str, Any]:
    """Seconds per clip and frames/s for decode only, and decode + detect + crop."""
    from pipeline.core import media, video
    from pipeline.core.preprocessing import Preprocessing

    params = Preprocessing()
    info = media.probe(clip)
    n_frames = info.n_video_frames
    out: dict[str, Any] = {"video": f"{info.width}x{info.height}, {info.video_fps:g} fps, {n_frames} frames",
                           "sampled_frames": params.n_frames}
    seconds, cpu, _ = _timed_cpu(lambda: video.sample_frames(clip, params.n_frames), repeat)
    out["decode_only"] = {"s_per_clip": round(seconds, 3), "cpu_s_per_clip": round(cpu, 3),
                          "decoded_frames_per_s": round(n_frames / seconds, 1)}
    print(f"clip: decode + sample {seconds:.3f} s, {cpu:.3f} CPU s ({n_frames / seconds:.0f} decoded frames/s)")
    for name, detector in detectors.items():
        for every in (1, 3):
            seconds, cpu, sample = _timed_cpu(
                lambda: video.clip_frames(clip, params, detector=detector, every=every), repeat)
            key = f"{name}_every{every}"
            out[key] = {"s_per_clip": round(seconds, 3), "cpu_s_per_clip": round(cpu, 3),
                        "decoded_frames_per_s": round(n_frames / seconds, 1),
                        "sampled_frames_per_s": round(params.n_frames / seconds, 1),
                        "status": sample.status, "frames_with_face": sample.frames_with_face}
            print(f"clip: decode + {name} on every {every} of {params.n_frames} frames + crop: "
                  f"{seconds:.3f} s, {cpu:.3f} CPU s ({n_frames / seconds:.0f} decoded frames/s), {sample.status}, "
                  f"face in {sample.frames_with_face}/{params.n_frames}")
    return out


def bench_models(repeat: int) -> dict[str, Any]:
    """Inference time of one 30 x 64 x 64 x 3 clip (batch of 1) per video model."""
    import models

    out: dict[str, Any] = {}
    clip = np.random.default_rng(0).integers(0, 256, (1, 30, 64, 64, 3)).astype(np.uint8)
    for name in ("lrcn", "convlstm"):
        model = models.build(name, clip.shape[1:], 6)
        model.predict(clip, verbose=0)  # trace once
        seconds, cpu, _ = _timed_cpu(lambda: model.predict(clip, verbose=0), repeat)
        out[name] = {"params": int(model.count_params()), "predict_ms": round(1000 * seconds, 1),
                     "predict_cpu_ms": round(1000 * cpu, 1)}
        print(f"model: {name} ({model.count_params():,} parameters) one clip: "
              f"predict {1000 * seconds:.1f} ms ({1000 * cpu:.1f} CPU ms)")
    return out


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    from pipeline.core import faces

    shared_env = os.environ.get("AVE_SHARED_DATA")
    shared = Path(shared_env) if shared_env and Path(shared_env).is_dir() else None
    repeat = int(os.environ.get("BENCH_REPEAT", "3"))
    start = time.perf_counter()
    mtcnn = faces.MtcnnDetector()
    mtcnn.detect(np.zeros((64, 64, 3), np.uint8))
    load_s = time.perf_counter() - start
    detectors = {"haar": faces.HaarDetector(), "mtcnn": mtcnn}
    still, source = _still(shared)
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                           "processor": platform.processor() or platform.machine(),
                                           "load_average_1min_at_start": round(os.getloadavg()[0], 2)},
                               "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "clip_source": source, "mtcnn_load_s": round(load_s, 2)}
    results["stills"] = bench_stills(shared, detectors)
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(still, Path(tmp) / "bench.mp4")
        results["clip"] = bench_clip(clip, detectors, repeat)
    results["models"] = bench_models(max(5, repeat))
    results["machine"]["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    out = Path(__file__).parent / "results" / "video.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(results, indent=2) + "\n")
    tmp_out.replace(out)
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
