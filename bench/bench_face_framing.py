"""Faces at every size and framing (issue 19): what the finer pass, the whole-picture
views and the face checks cost, and how often they are right on real faces.

1. Detection time per frame, before (frames at 320 px, one pass) and after (frames
   decoded at ``video.FRAME_SIDE``, the first pass at 320 px, the slower passes only
   where it found nothing, :func:`pipeline.core.faces.detect_many`), on a 1280 x 720
   and a 3840 x 2160 frame: a face of normal size, a small face (head 180 px of the
   frame's width, scaled with the frame), and no face. Six key frames per call, as a
   window's track does.
2. On the 24 RAVDESS stills: found upright; turned 180 degrees (turned upright, or the
   abstention); a grey and a blue rectangle over the lower half of the face (noted);
   false "hidden" notes on the plain stills.
3. FER2013 faces (48 x 48, the face model's own input) answered as faces, and
   non-faces (noise, flat, blocky, ramps) refused, through ``video.image_sample``.

CPU seconds of the process beside wall seconds (the 2-core box is shared).

    AVE_SHARED_DATA=/path/to/shared/data python bench/bench_face_framing.py
"""
from __future__ import annotations

import glob
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.common import machine, write_result  # noqa: E402


def _timed(fn, repeat: int = 3):
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), out


def main() -> None:
    import cv2

    from pipeline.core import face_checks, faces, video
    from pipeline.core.preprocessing import Preprocessing

    shared = Path(os.environ.get("AVE_SHARED_DATA", ""))
    if not (shared / "ravdess-faces").is_dir():
        raise SystemExit("set AVE_SHARED_DATA to the shared data folder")
    detector = faces.MtcnnDetector()
    stills = sorted(glob.glob(str(shared / "ravdess-faces" / "*.png")))
    rgb0 = cv2.cvtColor(cv2.imread(stills[0]), cv2.COLOR_BGR2RGB)
    detector.detect(rgb0)  # load the networks outside the timings
    box0 = faces.choose_face(detector.detect(rgb0), (rgb0.shape[1], rgb0.shape[0]))
    cx, cy = box0.center
    side = int(max(box0.width, box0.height) * 1.5)
    head = rgb0[max(0, int(cy - side / 2)):int(cy + side / 2), max(0, int(cx - side / 2)):int(cx + side / 2)]
    result: dict = {"machine_start": machine(), "detection": []}

    # 1. detection cost per frame
    for width, height in ((1280, 720), (3840, 2160)):
        for case in ("normal face", "small face", "no face"):
            frame = np.full((height, width, 3), (90, 110, 100), np.uint8)
            if case != "no face":
                size = int(width * (0.25 if case == "normal face" else 180 / 3840))
                x, y = int(width * 0.6), int(height * 0.5)
                frame[y:y + size, x:x + size] = cv2.resize(head, (size, size), interpolation=cv2.INTER_AREA)
            before_frames = [faces.downscaled(frame, 320)[0]] * 6
            after_frames = [faces.downscaled(frame, video.FRAME_SIDE)[0]] * 6
            wb, cb, fb = _timed(lambda: faces.detect_many(detector, before_frames, 320, rescue=False))
            wa, ca, fa = _timed(lambda: faces.detect_many(detector, after_frames, 320))
            row = {"frame": f"{width}x{height}", "case": case, "key_frames": 6,
                   "before_found": sum(bool(f) for f in fb), "after_found": sum(bool(f) for f in fa),
                   "before_wall_ms_per_frame": round(1000 * wb / 6, 1), "before_cpu_ms_per_frame": round(1000 * cb / 6, 1),
                   "after_wall_ms_per_frame": round(1000 * wa / 6, 1), "after_cpu_ms_per_frame": round(1000 * ca / 6, 1)}
            print(row, flush=True)
            result["detection"].append(row)

    # 2. the 24 stills: upright, turned, masked
    params = Preprocessing(crop_size=48, color="gray", labels="seven", n_frames=1, crop_margin=0.15)
    counts = {"stills": 0, "upright_found": 0, "upside_down_turned_upright": 0, "upside_down_abstained": 0,
              "upside_down_answered_unturned": 0, "plain_with_hidden_note": 0,
              "masked_grey_noted": 0, "masked_blue_noted": 0, "masked_found": 0}
    for path in stills:
        rgb = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        box = faces.choose_face(detector.detect(rgb), (rgb.shape[1], rgb.shape[0]))
        counts["stills"] += 1
        plain = video.sample_from_frames(rgb[None], np.zeros(1), params, detector=detector, every=1)
        counts["upright_found"] += plain.ok
        counts["plain_with_hidden_note"] += any(n in plain.face_notes for n in
                                                (face_checks.LOWER_HIDDEN, face_checks.EYES_HIDDEN))
        flipped = video.sample_from_frames(np.ascontiguousarray(rgb[::-1, ::-1])[None], np.zeros(1), params,
                                           detector=detector, every=1)
        if flipped.ok and flipped.turn == 180:
            counts["upside_down_turned_upright"] += 1
        elif flipped.ok:
            counts["upside_down_answered_unturned"] += 1
        else:
            counts["upside_down_abstained"] += 1
        if box is None:
            continue
        for colour, key in (((150, 150, 150), "masked_grey_noted"), ((120, 170, 220), "masked_blue_noted")):
            masked = rgb.copy()
            masked[int(box.y0 + 0.55 * box.height):int(box.y1 + 0.05 * box.height), int(box.x0):int(box.x1)] = colour
            sample = video.sample_from_frames(masked[None], np.zeros(1), params, detector=detector, every=1)
            counts["masked_found"] += sample.ok
            counts[key] += face_checks.LOWER_HIDDEN in sample.face_notes
    result["ravdess_stills"] = counts
    print(counts, flush=True)

    # 3. FER2013 faces and non-faces through the still-image path
    rng = np.random.default_rng(5)
    fer = []
    for folder in sorted(glob.glob(str(shared / "fer2013" / "train" / "*"))):
        files = sorted(glob.glob(folder + "/*.jpg"))
        fer += list(rng.choice(files, 20, replace=False))
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "bench_face_framing"
    tmp.mkdir(exist_ok=True)
    negatives = [rng.integers(0, 256, (48, 48, 3), dtype=np.uint8) for _ in range(10)]
    negatives += [np.full((48, 48, 3), v, np.uint8) for v in range(0, 256, 64)]
    negatives += [cv2.resize(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), (48, 48),
                             interpolation=cv2.INTER_NEAREST) for _ in range(6)]
    neg_paths = []
    for i, img in enumerate(negatives):
        neg_paths.append(tmp / f"neg{i}.png")
        cv2.imwrite(str(neg_paths[-1]), img)
    start = time.perf_counter()
    fer_ok = sum(video.image_sample(p, params, detector=detector, check_small=True).ok for p in fer)
    fer_s = time.perf_counter() - start
    neg_ok = sum(video.image_sample(p, params, detector=detector, check_small=True).ok for p in neg_paths)
    result["fer2013"] = {"faces": len(fer), "answered": fer_ok, "non_faces": len(neg_paths),
                         "non_faces_answered": neg_ok, "wall_s_per_image": round(fer_s / len(fer), 3)}
    print(result["fer2013"], flush=True)
    result["machine_end"] = machine()
    print(write_result("face_framing", result))


if __name__ == "__main__":
    main()
