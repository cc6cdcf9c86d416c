"""``analyze(clip, bundle) -> Analysis``: the one prediction path (CLI and dashboard).

It runs exactly the preprocessing the models were trained with, read from the bundle:
``media.load_audio`` at the audio branch's sample rate -> ``audio.featurize`` with its
saved :class:`~pipeline.preprocessing.Preprocessing` and feature kind;
``video.clip_frames`` with the video branch's parameters (a landmark CSV when one is
given, else a face detector on a few frames, interpolated between them). Each branch
answers or abstains with a plain reason (``silent audio``, ``no audio track``,
``no face``, ``no video track``); the fused answer falls back to whichever branch
answered and says so.

Clips longer than one analysis window (``offset + duration`` plus half a window of
slack) are cut into consecutive windows of ``duration`` seconds; every window gets an
audio, video and fused answer (the ``timeline``) and the clip-level answers average
the windows where a branch answered.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from pipeline.analysis import OK, Analysis, BranchResult, TimelineWindow
from pipeline.preprocessing import Preprocessing

log = logging.getLogger(__name__)

#: Longest clip analysed (seconds); longer uploads are cut here, and the analysis says so.
MAX_SECONDS: float = 300.0
#: Width (pixels, longer side) of the frames kept for display.
DISPLAY_SIDE: int = 320

SILENT = "silent audio"
NO_AUDIO = "no audio track"
NO_VIDEO = "no video track"
NO_MODEL = "no model in the bundle"


@contextmanager
def _timer(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start


# --------------------------------------------------------------------------- windows
def windows(duration: float, params: Preprocessing) -> list[tuple[float, float]]:
    """Analysis windows (start, end) in seconds for a clip of ``duration`` seconds.

    A clip up to ``offset + 1.5 * duration`` s is one window, exactly the training
    crop (``offset`` .. ``offset + duration``). Longer clips are cut from 0 s into
    consecutive windows of ``params.duration``; a last piece shorter than half a window
    joins nothing and is dropped.
    """
    span = params.duration
    if duration <= params.offset + 1.5 * span:
        return [(params.offset, params.offset + span)]
    starts = np.arange(0.0, max(duration - 0.5 * span, 0.0) + 1e-9, span)
    return [(float(s), float(min(s + span, duration))) for s in starts]


def _window_params(params: Preprocessing, start: float) -> Preprocessing:
    """The same preprocessing with the analysis window moved to ``start`` seconds."""
    return dataclasses.replace(params, offset=float(start))


def _probabilities(classes: Sequence[str], proba: np.ndarray) -> dict[str, float]:
    return {c: float(p) for c, p in zip(classes, proba)}


def _mean_result(results: Sequence[BranchResult], classes: Sequence[str]) -> BranchResult:
    """Average the answering windows; abstain with the first reason when none answered."""
    ok = [r for r in results if r.ok]
    if not ok:
        return BranchResult(results[0].status if results else NO_MODEL, {}, results[0].detail if results else "")
    mean = np.mean([[r.probabilities[c] for c in classes] for r in ok], axis=0)
    detail = f"mean of {len(ok)} of {len(results)} windows"
    return BranchResult(OK, _probabilities(classes, mean), detail)


# --------------------------------------------------------------------------- audio
@dataclasses.dataclass
class _AudioOut:
    waveform: np.ndarray | None
    per_window: list[BranchResult]
    mfcc: np.ndarray | None = None
    mfcc_times: np.ndarray | None = None


def _audio(src: Any, bundle: Any, spans: list[tuple[float, float]], single: bool,
           timings: dict[str, float]) -> _AudioOut:
    """Decode, check for silence, featurize each window and predict."""
    from pipeline import audio as audio_mod
    from pipeline.media import MediaError, load_audio

    branch = bundle.audio
    if branch is None:
        return _AudioOut(None, [BranchResult(NO_MODEL)] * len(spans))
    params = branch.params
    with _timer(timings, "decode_audio"):
        try:
            y = load_audio(src, params.sample_rate, max_seconds=MAX_SECONDS)
        except MediaError as err:
            if "no audio track" in str(err) or "holds no samples" in str(err):
                return _AudioOut(None, [BranchResult(NO_AUDIO)] * len(spans))
            raise
    with _timer(timings, "features_audio"):
        mfcc_params = params if single else dataclasses.replace(params, offset=0.0,
                                                                 duration=max(len(y) / params.sample_rate, 0.1))
        mfcc = audio_mod.featurize(y, mfcc_params, "mfcc_matrix")
        mfcc_t = audio_mod.mfcc_times(mfcc.shape[1], mfcc_params)
        if audio_mod.is_silent(y):
            return _AudioOut(y, [BranchResult(SILENT, {}, "no part of the clip is louder than -45 dBFS")] * len(spans),
                             mfcc, mfcc_t)
        feats, silent = [], []
        for start, _ in spans:
            wp = params if single else _window_params(params, start)
            segment = audio_mod.window(y, wp)
            silent.append(audio_mod.is_silent(segment))
            feats.append(audio_mod.featurize(y, wp, branch.input_kind))
    with _timer(timings, "predict_audio"):
        proba = branch.predict_proba(np.stack(feats))
    results = [BranchResult(SILENT, {}, "this window is silent") if s
               else BranchResult(OK, _probabilities(bundle.classes, p)) for p, s in zip(proba, silent)]
    return _AudioOut(y, results, mfcc, mfcc_t)


# --------------------------------------------------------------------------- video
@dataclasses.dataclass
class _VideoOut:
    per_window: list[BranchResult]
    sample: Any = None  # video.VideoSample shown for the clip


def _window_samples(src: Any, params: Preprocessing, spans: list[tuple[float, float]],
                    landmarks_path: str | None, detector: Any, every: int) -> list[Any]:
    """One :class:`pipeline.video.VideoSample` per window of a long clip, from a single
    decode: frames evenly spaced in time inside each window, then the very face step of
    :func:`pipeline.video.clip_frames` (:func:`pipeline.video.sample_from_frames`)."""
    from pipeline import media, video

    n, size = params.n_frames, params.crop_size
    info = media.probe(src)
    stream = video.limit_seconds(media.iter_frames(src, max_side=DISPLAY_SIDE), MAX_SECONDS)
    kept, _ = video.thin_evenly(stream, cap=4 * n * len(spans))
    kept.sort(key=lambda item: item[0])
    times = np.array([t for t, _ in kept], dtype=float)
    out = []
    for start, end in spans:
        inside = np.flatnonzero((times >= start) & (times < end))
        if len(inside) == 0:
            out.append(video.failed_sample(video.NO_FRAMES, size, f"no frames between {start:.1f} and {end:.1f} s"))
            continue
        chosen = inside[video.pick_even(times[inside], n)]
        frames = np.stack([kept[i][1] for i in chosen])
        out.append(video.sample_from_frames(
            frames, times[chosen], params, video_size=(info.width, info.height),
            landmarks_path=landmarks_path, detector=detector, every=every, n_decoded=len(kept)))
    return out


def _display_sample(samples: list[Any], n: int) -> Any:
    """n frames evenly picked from all windows' samples, for showing a long clip."""
    from pipeline import video

    rows = [(s, i) for s in samples for i in range(len(s.times))]
    if not rows:
        return samples[0]
    pick = np.unique(np.linspace(0, len(rows) - 1, n).round().astype(int))
    chosen = [rows[k] for k in pick]
    crops = [s.crops[i] for s, i in chosen if len(s.crops)]
    size = samples[0].crops.shape[1] if samples[0].crops.ndim == 4 else 64
    return video.VideoSample(
        frames=np.stack([s.frames[i] for s, i in chosen]), times=np.array([s.times[i] for s, i in chosen]),
        boxes=[s.boxes[i] for s, i in chosen],
        crops=np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8),
        frames_with_face=sum(s.boxes[i] is not None for s, i in chosen),
        status=video.OK if any(s.ok for s in samples) else samples[0].status, method=samples[0].method)


def _video(src: Any, bundle: Any, spans: list[tuple[float, float]], single: bool, has_video: bool,
           landmarks_path: str | None, detector: Any, timings: dict[str, float],
           every: int = 5) -> _VideoOut:
    """Sample frames, crop faces and predict, per window; abstain without a face.

    The face detector runs on every ``every``-th sampled frame only and boxes are
    interpolated between (MTCNN on 6 of 30 frames keeps a clip around a second)."""
    from pipeline import video as video_mod

    branch = bundle.video
    if branch is None:
        return _VideoOut([BranchResult(NO_MODEL)] * len(spans))
    if not has_video:
        return _VideoOut([BranchResult(NO_VIDEO)] * len(spans))
    params = branch.params
    if detector is None and not (landmarks_path or branch.full_frame):
        detector = bundle.face_detector()
    with _timer(timings, "faces"):
        if single or branch.full_frame:
            samples = [video_mod.clip_frames(src, params, landmarks_path=landmarks_path, detector=detector,
                                             full_frame=branch.full_frame, every=every,
                                             display_side=DISPLAY_SIDE, max_seconds=MAX_SECONDS)]
            samples = samples * len(spans)
            display = samples[0]
        else:
            if detector is None:
                detector = bundle.face_detector()
            samples = _window_samples(src, params, spans, landmarks_path, detector, every)
            display = _display_sample(samples, params.n_frames)
    usable = [i for i, s in enumerate(samples) if s.ok]
    by_index: dict[int, np.ndarray] = {}
    if usable:
        with _timer(timings, "predict_video"):
            distinct = sorted({id(samples[i]): i for i in usable}.values())
            proba = branch.predict_proba(np.stack([np.asarray(samples[i].crops, np.uint8) for i in distinct]))
            first = dict(zip((id(samples[i]) for i in distinct), proba))
            by_index = {i: first[id(samples[i])] for i in usable}
    results: list[BranchResult] = []
    for i, s in enumerate(samples):
        note = f"face in {s.frames_with_face} of {len(s.times)} frames" if not branch.full_frame else "whole frames"
        if i in by_index:
            results.append(BranchResult(OK, _probabilities(bundle.classes, by_index[i]), note))
        else:
            results.append(BranchResult(s.status, {}, s.detail or note))
    return _VideoOut(results, display)


# --------------------------------------------------------------------------- fusion
def _fuse(bundle: Any, a: BranchResult, v: BranchResult) -> BranchResult:
    """Fused answer for one window, falling back to the branch that answered."""
    classes = bundle.classes
    pa = np.array([a.probabilities[c] for c in classes]) if a.ok else None
    pv = np.array([v.probabilities[c] for c in classes]) if v.ok else None
    if bundle.fusion is None:
        if pa is not None and pv is not None:
            return BranchResult(OK, _probabilities(classes, (pa + pv) / 2.0), "mean of both branches (no fusion model)")
        from pipeline.fusion import LateFusion

        answer = LateFusion("rule_mean").fuse(pa, pv, a.status, v.status)
    else:
        answer = bundle.fusion.fuse(pa, pv, a.status, v.status)
    if answer.probabilities is None:
        return BranchResult(answer.status, {}, "")
    return BranchResult(OK, _probabilities(classes, answer.probabilities), answer.source)


# --------------------------------------------------------------------------- analyze
def analyze(src: str | os.PathLike[str] | bytes, bundle: Any, detector: Any = None, *,
            landmarks_path: str | None = None) -> Analysis:
    """Hear, see and decide one clip with a loaded bundle.

    ``src``: a path or the file's bytes (any container :mod:`pipeline.media` decodes).
    ``detector``: a :class:`pipeline.faces.FaceDetector` (default: the bundle's, MTCNN
    on every few frames); ``landmarks_path``: an OpenFace CSV for the clip, used instead
    of the detector (corpus samples). Raises :class:`pipeline.media.MediaError` for
    unreadable input; abstentions (silence, no face, missing track) are statuses.
    """
    from pipeline.media import MediaError, probe

    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    name = "uploaded bytes" if isinstance(src, (bytes, bytearray, memoryview)) else str(src)
    with _timer(timings, "probe"):
        info = probe(src)
    if not (info.has_audio or info.has_video):
        raise MediaError(f"{name} holds neither an audio nor a video track")
    first = bundle.audio or bundle.video
    duration = float(info.duration)
    if duration <= 0.0 and info.has_audio and bundle.audio is not None:
        from pipeline.media import load_audio

        duration = len(load_audio(src, 8000, max_seconds=MAX_SECONDS)) / 8000.0
    spans = windows(min(duration, MAX_SECONDS), first.params)
    single = len(spans) == 1

    a = _audio(src, bundle, spans, single, timings) if info.has_audio else \
        _AudioOut(None, [BranchResult(NO_AUDIO if bundle.audio is not None else NO_MODEL)] * len(spans))
    v = _video(src, bundle, spans, single, info.has_video, landmarks_path, detector, timings)
    with _timer(timings, "fuse"):
        fused = [_fuse(bundle, wa, wv) for wa, wv in zip(a.per_window, v.per_window)]
    timeline = [] if single else [TimelineWindow(s, e, wa, wv, wf) for (s, e), wa, wv, wf
                                  in zip(spans, a.per_window, v.per_window, fused)]
    audio_res = a.per_window[0] if single else _mean_result(a.per_window, bundle.classes)
    video_res = v.per_window[0] if single else _mean_result(v.per_window, bundle.classes)
    fused_res = fused[0] if single else _mean_result(fused, bundle.classes)
    if not single and fused_res.ok:
        sources = sorted({f.detail for f in fused if f.ok})
        fused_res.detail = f"{fused_res.detail}; " + ", ".join(sources)
    timings["total"] = time.perf_counter() - t_start
    sample = v.sample
    sr = bundle.audio.params.sample_rate if bundle.audio is not None else 0
    return Analysis(
        source=name, duration=duration, sample_rate=sr,
        audio=audio_res, video=video_res, fused=fused_res,
        waveform=a.waveform, mfcc=a.mfcc, mfcc_times=a.mfcc_times,
        frames=None if sample is None else sample.frames,
        frame_times=None if sample is None else sample.times,
        boxes=[] if sample is None else list(sample.boxes),
        crops=None if sample is None else sample.crops,
        frames_with_face=0 if sample is None else int(sample.frames_with_face),
        timeline=timeline, timings=timings, bundle=bundle.summary(),
    )


# --------------------------------------------------------------------------- describe
def _line(label: str, result: BranchResult) -> str:
    if not result.ok:
        return f"{label:<7}abstains: {result.status}"
    emotion, p = result.winner or ("?", 0.0)
    ranked = sorted(result.probabilities.items(), key=lambda kv: -kv[1])[1:3]
    rest = ", ".join(f"{k} {v:.0%}" for k, v in ranked)
    detail = f"  [{result.detail}]" if result.detail else ""
    return f"{label:<7}{emotion} ({p:.0%}; then {rest}){detail}"


def describe(analysis: Analysis) -> str:
    """A few plain lines for people: each branch's answer or why it abstained, the
    fused answer and where it came from, the timeline of a long clip, timings."""
    lines = [f"{Path(analysis.source).name if analysis.source != 'uploaded bytes' else analysis.source}: "
             f"{analysis.duration:.1f} s",
             _line("audio", analysis.audio),
             _line("video", analysis.video),
             _line("fused", analysis.fused)]
    if analysis.timeline:
        lines.append("timeline:")
        for w in analysis.timeline:
            top = w.fused.winner
            lines.append(f"  {w.start:5.1f}-{w.end:5.1f} s  "
                         + (f"{top[0]} ({top[1]:.0%})" if top else f"abstains: {w.fused.status}"))
    total = analysis.timings.get("total")
    if total is not None:
        lines.append(f"answered in {total:.2f} s by bundle {analysis.bundle.get('id', '?')}")
    return "\n".join(lines)
