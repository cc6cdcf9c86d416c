"""``analyze(clip, bundle) -> Analysis``: the one prediction path (CLI and dashboard).

It runs exactly the preprocessing the models were trained with, read from the bundle:
``media.load_audio`` at the audio branch's sample rate -> ``audio.featurize`` with its
saved :class:`~pipeline.core.preprocessing.Preprocessing` and feature kind;
``video.clip_frames`` with the video branch's parameters (a landmark CSV when one is
given, else a face detector on a few frames, interpolated between them). Each branch
answers or abstains with a plain reason (``silent audio``, ``no audio track``,
``no face``, ``no video track``, ``too short: 0.3 s of speech, at least 1.0 s
needed``); the fused answer falls back to whichever branch answered and says so. Each
answer carries its model's held-out calibration (ECE) and a "sure"/"not sure" word
(:func:`pipeline.serve.analysis.confidence_word`). Files longer than :data:`MAX_SECONDS`
are cut there: ``analysed_seconds`` and ``notes`` say so.

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

from pipeline.serve.analysis import OK, STILL_IMAGE, Analysis, BranchResult, TimelineWindow
from pipeline.core import settings
from pipeline.core.preprocessing import Preprocessing

log = logging.getLogger(__name__)

#: Default of :data:`MAX_SECONDS`: five minutes keeps one analysis around a minute of
#: work on 2 cores and the decoded sound of a long upload within ~50 MB.
DEFAULT_MAX_SECONDS: float = 300.0


def max_seconds_setting(environ: Any = None) -> float:
    """The length cap in seconds: ``AVE_MAX_SECONDS`` when set to a positive number,
    else :data:`DEFAULT_MAX_SECONDS`."""
    return settings.positive_seconds("AVE_MAX_SECONDS", DEFAULT_MAX_SECONDS, environ)


#: Longest stretch of a clip analysed (seconds; the setting ``AVE_MAX_SECONDS``, read at
#: import, default 300). Longer uploads are cut here and the analysis says so:
#: ``analysed_seconds`` beside ``duration``, a sentence in ``notes``.
MAX_SECONDS: float = max_seconds_setting()
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


def clip_windows(clip: Any, bundle: Any, first: Any) -> tuple[list[tuple[float, float]], bool, Any]:
    """The analysis windows of a decoded clip (a :class:`pipeline.core.media.Media`), whether
    it is read as one window, and Silero's per-frame scores when they were computed.

    A clip within one window (:func:`windows`) is that one window, exactly the training
    crop. A longer one with sound is read in windows that follow its speech
    (:func:`pipeline.serve.windows.speech_windows`, on the bundle's voice activity:
    Silero VAD or the level), so no sentence is cut in two; stretches without speech get
    windows too when the clip has pictures. Without sound, or without any voice, the
    fixed grid of :func:`windows`.
    """
    duration = min(clip.duration, MAX_SECONDS)
    grid = windows(duration, first.params)
    if len(grid) == 1 or bundle.audio is None or clip.waveform is None:
        return grid, len(grid) == 1, None
    from pipeline.core import audio as audio_mod
    from pipeline.serve.windows import speech_windows

    params = bundle.audio.params
    scores = None
    if params.voice_activity == "vad":
        from pipeline.core import vad

        scores = vad.speech_probabilities(clip.waveform, params.sample_rate)  # once per clip
    voice = audio_mod.voice_activity(clip.waveform, params.sample_rate,
                                     "vad" if scores is not None else None, probabilities=scores)
    spans = speech_windows(voice.segments, duration, first.params.duration, cover_gaps=clip.info.has_video,
                           min_voice_s=audio_mod.min_speech_seconds(params))
    return (spans or grid), False, scores


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
    notes = list(dict.fromkeys(n for r in ok for n in r.notes))  # a window's doubt is the clip's
    return BranchResult(OK, _probabilities(classes, mean), detail, notes=notes, normalisation=ok[0].normalisation)


# --------------------------------------------------------------------------- audio
@dataclasses.dataclass
class _AudioOut:
    waveform: np.ndarray | None
    per_window: list[BranchResult]
    mfcc: np.ndarray | None = None
    mfcc_times: np.ndarray | None = None
    notes: list[str] = dataclasses.field(default_factory=list)


def _audio(clip: Any, bundle: Any, spans: list[tuple[float, float]], single: bool,
           timings: dict[str, float], calibration: Any = None, scores: np.ndarray | None = None) -> _AudioOut:
    """The audio branch on the clip's decoded sound (``clip``: a :class:`pipeline.core.media.Media`):
    check for silence (or, for a bundle that listens for a voice, Silero VAD: one scoring
    of the whole clip serves the "no speech" check and every window's "too short"),
    featurize each window and predict. A window holding less speech than
    :func:`pipeline.core.audio.min_speech_seconds` abstains ("too short")."""
    from pipeline.core import audio as audio_mod
    from pipeline.core.media import MediaError

    branch = bundle.audio
    if branch is None:
        return _AudioOut(None, [BranchResult(NO_MODEL)] * len(spans))
    if clip.waveform is None:
        if "holds no samples" in clip.audio_error:  # a track shorter than one sample at the model's rate
            short = audio_mod.too_short(0.0, audio_mod.min_speech_seconds(branch.params))
            return _AudioOut(None, [BranchResult(short, {}, "the audio track holds no sound")] * len(spans))
        if not clip.audio_error or "no audio track" in clip.audio_error:
            return _AudioOut(None, [BranchResult(NO_AUDIO)] * len(spans))
        raise MediaError(clip.audio_error)
    params = branch.params
    sr = params.sample_rate
    y, notes = clip.waveform, list(clip.notes)
    gated = params.voice_activity == "vad"  # the bundle listens for a voice, not for loudness
    with _timer(timings, "features_audio"):
        mfcc_params = params if single else dataclasses.replace(params, offset=0.0,
                                                                 duration=max(len(y) / sr, 0.1))
        mfcc = audio_mod.featurize(y, mfcc_params, "mfcc_matrix")
        mfcc_t = audio_mod.mfcc_times(mfcc.shape[1], mfcc_params)
    if gated:
        with _timer(timings, "vad_audio"):
            from pipeline.core import vad

            if scores is None:  # once per clip: the costly part of Silero
                scores = vad.speech_probabilities(y, sr)
            reason = audio_mod.no_speech_reason(y, sr, probabilities=scores)
        if reason:
            return _AudioOut(y, [BranchResult(audio_mod.NO_SPEECH, {}, reason)] * len(spans), mfcc, mfcc_t, notes)
    elif audio_mod.is_silent(y):
        return _AudioOut(y, [BranchResult(SILENT, {}, "no part of the clip is louder than -45 dBFS")] * len(spans),
                         mfcc, mfcc_t, notes)
    with _timer(timings, "features_audio"):
        feats, silent, short, pieces = [], [], [], []
        needed = audio_mod.min_speech_seconds(params)
        voice = audio_mod.voice_activity(y, sr, "vad" if gated else None, probabilities=scores)
        in_clip = voice.seconds()
        for start, end in spans:
            wp = params if single else _window_params(params, start)
            heard = voice.seconds(*audio_mod.window_span(y, wp))
            # a short clip is "too short" (what it holds in all), even where the window
            # starting at the offset caught none of it; a pause in a long clip is silent
            said = in_clip if single and in_clip < needed else heard
            silent.append(not gated and audio_mod.is_silent(audio_mod.window(y, wp)) and not (single and heard < needed))
            short.append(audio_mod.too_short(said, needed) if heard < needed else "")
            if single:
                pieces.append(y)
            else:  # the window's own sound (functionals summarise what they are given)
                piece = y[int(round(start * sr)):int(round(end * sr))]
                pieces.append(piece if piece.size else y[:1])
            if silent[-1] or short[-1]:  # abstains: its features would never be read
                feats.append(None)
            else:
                feats.append(audio_mod.featurize(y if single else pieces[-1],
                                                 params if single else _window_params(params, 0.0), branch.input_kind))
        size = int(np.prod(audio_mod.feature_shape(params, branch.input_kind)))
        feats = [np.zeros(size, np.float32) if f is None else f for f in feats]
    with _timer(timings, "predict_audio"):
        from pipeline.serve.speaker import answer_windows

        heard = [not s and not t for s, t in zip(silent, short)]
        vad_of = None if scores is None else [_vad_slice(scores, a, b, single) for a, b in spans]
        answers = answer_windows(branch, np.stack(feats), pieces, heard, calibration, probabilities=vad_of)
    results = [BranchResult(SILENT, {}, "this window is silent") if s
               else BranchResult(t, {}, "the rest of the analysis window holds no voice (silence or padding)") if t
               else BranchResult(OK, _probabilities(params.classes, w.proba), notes=w.notes,
                                 normalisation=w.normalisation, conditions=w.conditions,
                                 model_input=w.features, model_mode=w.mode)
               for w, s, t in zip(answers, silent, short)]
    return _AudioOut(y, results, mfcc, mfcc_t, notes)


def _vad_slice(scores: np.ndarray, start: float, end: float, single: bool) -> np.ndarray:
    """Silero's per-frame scores of the clip cut to one window (all of them for a clip
    answered as one window)."""
    from pipeline.core.vad import FRAME_S

    return scores if single else scores[int(start / FRAME_S):int(np.ceil(end / FRAME_S))]


def answer_sound(y: np.ndarray, bundle: Any, *, offset: float | None = None,
                 calibration: Any = None) -> BranchResult:
    """The audio branch's answer for sound already decoded: ``y`` mono float32 at the
    audio model's rate (drift removed, as :func:`pipeline.core.media.decode` gives it), one
    window. The Live page's audio answer: the same checks (silence, Silero's "no
    speech", "too short"), features and model as a clip's. ``offset``: where the
    window starts (default the model's own; the Live page listens from 0 s).
    ``calibration``: the speaker's calm-voice statistics
    (:func:`pipeline.serve.speaker.calibrate_to_voice`), when they calibrated."""
    from pipeline.core.media import Media, MediaInfo

    import copy

    if bundle.audio is None:
        return BranchResult(NO_MODEL)
    view = bundle
    if offset is not None:  # the same models, seen with the window moved (shallow copies)
        view, branch = copy.copy(bundle), copy.copy(bundle.audio)
        branch.params = dataclasses.replace(branch.params, offset=float(offset))
        view.audio = branch
    params = view.audio.params
    y = np.asarray(y, np.float32).reshape(-1)
    clip = Media(name="live sound", info=MediaInfo(has_audio=True, has_video=False,
                                                   duration=y.size / params.sample_rate),
                 waveform=y, sample_rate=params.sample_rate)
    result = _audio(clip, view, [(params.offset, params.offset + params.duration)], True, {},
                    calibration).per_window[0]
    if result.ok:  # "sure" as for a clip's answer: discounted by the held-out ECE
        result.calibration = branch_calibration(bundle, "audio")
    return result


def answer_faces(crops: np.ndarray, bundle: Any) -> BranchResult:
    """The video branch's answer for face crops already cut (n, size, size, 3) uint8 RGB,
    as a clip's window is answered (:func:`predict_crops`): the Live page's video answer."""
    branch = bundle.video
    if branch is None:
        return BranchResult(NO_MODEL)
    proba = predict_crops(branch, [np.asarray(crops, np.uint8)])[0]
    result = BranchResult(OK, _probabilities(branch.params.classes, proba), f"{len(crops)} face crops")
    result.calibration = branch_calibration(bundle, "video")
    return result


# --------------------------------------------------------------------------- video
@dataclasses.dataclass
class _VideoOut:
    per_window: list[BranchResult]
    sample: Any = None  # video.VideoSample shown for the clip
    faces_seen: int = 0  # most faces in view in any window (one is followed)
    notes: list[str] = dataclasses.field(default_factory=list)


class _VideoPlan:
    """The video branch's side of the one decode: a :class:`pipeline.core.video.WindowSampler`
    that keeps only the frames each window needs, feeding a
    :class:`pipeline.core.video.WindowFaces` that finds faces a few windows at a time.

    Faces are found in a worker thread while the decoder goes on (both cores busy).
    Memory: the sampler holds at most one window's frames (``n_frames``) while decoding,
    the face step at most ``batch`` windows of them or
    :data:`pipeline.core.video.PENDING_BYTES` (64 MB) per batch, and up to
    :data:`pipeline.core.video.BATCHES_WAITING` batches wait for the worker (frames arrive at
    :data:`pipeline.core.video.FRAME_SIDE`, 960 px, for small faces); afterwards each
    window keeps its crops, boxes and times, and ``ceil(n_frames / windows)`` frames (at
    least one, shrunk to :data:`DISPLAY_SIDE`) for the display: whatever the clip's
    length, frames never take more than about 100 MB.
    """

    def __init__(self, bundle: Any, spans: list[tuple[float, float]] | None, single: bool, info: Any,
                 first: Any, landmarks_path: str | None, detector: Any, every: int) -> None:
        from pipeline.core import video as video_mod

        branch = bundle.video
        params = branch.params
        if detector is None and not (landmarks_path or branch.full_frame):
            detector = bundle.face_detector()
        n_windows = len(spans) if spans is not None else max(1, int(MAX_SECONDS // first.params.duration))
        display = None if single else max(1, -(-params.n_frames // n_windows))
        self.branch = branch
        self.proba: dict[int, np.ndarray] = {}  # id(sample) -> its (C,) answer
        self.predict_seconds = 0.0
        self.faces = video_mod.WindowFaces(params, display=display, video_size=(info.width, info.height),
                                           landmarks_path=landmarks_path, detector=detector,
                                           full_frame=branch.full_frame, every=every, display_side=DISPLAY_SIDE,
                                           background=True, then=self.predict)
        step = 1.0 / info.video_fps if info.video_fps > 0 else 1 / 30.0
        if single:
            seconds = min(info.video_duration or info.duration, MAX_SECONDS)
            plan: list[tuple[float, float]] | None = [(0.0, seconds)]
        else:
            plan = spans
        # One decoder thread when the audio branch works beside the decoder and the face
        # worker: FFmpeg's frame threads then only take turns with them on the cores
        # (measured, bench clips: 4 s 0.34 -> 0.31 s, 5 min 18.2 -> 17.6 s; the same for
        # the phone clip). Without sound, FFmpeg uses a thread per core.
        threads = 1 if info.has_audio and bundle.audio is not None else None
        self.sampler = video_mod.WindowSampler(
            params.n_frames, plan, single=single, span=first.params.duration,
            single_until=first.params.offset + 1.5 * first.params.duration, step=step, on_window=self.faces,
            decoder_threads=threads)

    def predict(self, samples: list[Any]) -> None:
        """The face model's answers for one batch of windows with usable faces, in the
        face worker while the decoder goes on (one call for the batch:
        :func:`predict_crops`), kept in :attr:`proba`."""
        usable = [s for s in samples if s.ok and id(s) not in self.proba]
        if usable:
            start = time.perf_counter()
            for s, p in zip(usable, predict_crops(self.branch, [s.crops for s in usable])):
                self.proba[id(s)] = p
            self.predict_seconds += time.perf_counter() - start


def _frame_side(bundle: Any, landmarks_path: str | None) -> int:
    """Longer side of the decoded frames: finer (:data:`pipeline.core.video.FRAME_SIDE`)
    when a face finder will look at them, so a small face in a large frame is found and
    cropped from enough pixels; the display size otherwise. Frames are shown at
    :data:`DISPLAY_SIDE` either way."""
    from pipeline.core import video as video_mod

    branch = bundle.video
    finder = branch is not None and not landmarks_path and not branch.full_frame
    return video_mod.FRAME_SIDE if finder else DISPLAY_SIDE


def _video(clip: Any, plan: _VideoPlan | None, bundle: Any, spans: list[tuple[float, float]], single: bool,
           timings: dict[str, float]) -> _VideoOut:
    """Finish the video branch once the clip is decoded: the last windows' faces (each
    batch answered by the face model as it is made, :meth:`_VideoPlan.predict`), then
    every window's result; abstain without a usable face."""
    from pipeline.core import video as video_mod

    branch = bundle.video
    if branch is None:
        return _VideoOut([BranchResult(NO_MODEL)] * len(spans))
    if plan is None or not clip.info.has_video:
        return _VideoOut([BranchResult(NO_VIDEO)] * len(spans))
    params, size = branch.params, branch.params.crop_size
    failed = None
    if clip.video_error:
        failed = video_mod.failed_sample(video_mod.UNDECODABLE, size, clip.video_error)
    elif clip.n_frames == 0:
        failed = video_mod.failed_sample(video_mod.NO_FRAMES, size, f"{clip.name}: the decoder produced no frames")
    elif clip.still:  # one picture beside the sound (a poster frame): not a moving face
        failed = video_mod.failed_sample(video_mod.NO_VIDEO, size, video_mod.STILL_DETAIL, n_decoded=1)
    if failed is None:
        if single and clip.n_frames < params.n_frames:
            plan.faces.face_kw["notes"] = [f"the clip has only {clip.n_frames} frames; frames were "
                                           f"repeated evenly to make {params.n_frames}"]
        plan.faces.face_kw["n_decoded"] = clip.n_frames if single else None
        plan.sampler.finish(spans)
        plan.faces.flush()
    timings["faces"] = plan.faces.seconds  # during the decode (a few windows at a time) and after
    if failed is not None:
        samples = [failed] * len(spans)
    else:
        found = plan.faces.samples
        samples = [found.get(0 if single else k) or video_mod.failed_sample(
            video_mod.NO_FRAMES, size, f"no frames between {s:.1f} and {e:.1f} s") for k, (s, e) in enumerate(spans)]
    display = samples[0] if single or failed is not None else _display_sample(samples, params.n_frames)
    usable = [i for i, s in enumerate(samples) if s.ok]
    by_index: dict[int, np.ndarray] = {}
    if usable:  # (answered batch by batch in the face worker: _VideoPlan.predict)
        by_index = {i: plan.proba[id(samples[i])] for i in usable}
        timings["predict_video"] = plan.predict_seconds
    results: list[BranchResult] = []
    for i, s in enumerate(samples):
        note = f"face in {s.frames_with_face} of {len(s.times)} frames" if not branch.full_frame else "whole frames"
        note += f"; {s.faces_note}" if s.faces_note else ""
        short = video_mod.too_short(s, params) if i in by_index and branch.input_kind != "faces" else ""
        if i in by_index and not short:
            results.append(BranchResult(OK, _probabilities(params.classes, by_index[i]), note,
                                        notes=list(s.face_notes)))
        elif short:
            results.append(BranchResult(short, {}, note))
        else:
            results.append(BranchResult(s.status, {}, s.detail or note))
    most = max(samples, key=lambda s: s.faces_seen)
    return _VideoOut(results, display, most.faces_seen, [most.faces_note] if most.faces_note else [])


def _display_sample(samples: list[Any], n: int) -> Any:
    """n frames evenly picked from the frames the windows kept for showing a long clip."""
    from pipeline.core import video

    rows = []  # (sample, position in sample.frames, index into times / boxes / crops)
    for s in samples:
        index = s.display_index if s.display_index is not None else np.arange(len(s.frames))
        rows += [(s, pos, int(i)) for pos, i in enumerate(index)]
    if not rows:
        return samples[0]
    pick = np.unique(np.linspace(0, len(rows) - 1, n).round().astype(int))
    chosen = [rows[k] for k in pick]
    crops = [s.crops[i] for s, _, i in chosen if len(s.crops)]
    size = next((s.crops.shape[1] for s in samples if s.crops.ndim == 4 and len(s.crops)), 64)
    shape = chosen[0][0].frames[chosen[0][1]].shape
    return video.VideoSample(
        frames=np.stack([s.frames[pos] if s.frames[pos].shape == shape else video._fit(s.frames[pos], shape)
                         for s, pos, _ in chosen]),
        times=np.array([s.times[i] for s, _, i in chosen]),
        boxes=[s.boxes[i] if i < len(s.boxes) else None for s, _, i in chosen],
        crops=np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8),
        frames_with_face=sum(i < len(s.boxes) and s.boxes[i] is not None for s, _, i in chosen),
        status=video.OK if any(s.ok for s in samples) else samples[0].status, method=samples[0].method)


def predict_crops(branch: Any, crops: Sequence[np.ndarray]) -> list[np.ndarray]:
    """(C,) clip probabilities of a video branch for each clip's face crops.

    ``crops``: per clip, (n, h, w, 3) uint8 RGB. A per-frame face model (input kind
    ``faces``) sees every frame through :func:`pipeline.core.video.face_input` and its
    per-frame probabilities are pooled (:func:`pipeline.core.video.pool_frames`); a clip
    model (LRCN, ConvLSTM) sees its ``n_frames`` crops at once, a shorter clip (a still
    image is one frame) repeated evenly to that length.
    """
    from pipeline.core import video as video_mod

    params = branch.params
    if branch.input_kind == "faces":
        inputs = [video_mod.face_input(c, params) for c in crops]
        frame_proba = branch.predict_proba(np.concatenate(inputs))
        edges = np.cumsum([0] + [len(x) for x in inputs])
        return [video_mod.pool_frames(frame_proba[a:b]) for a, b in zip(edges[:-1], edges[1:])]
    batch = []
    for c in crops:
        c = np.asarray(c, np.uint8)
        if len(c) != params.n_frames:
            c = c[np.linspace(0, len(c) - 1, params.n_frames).round().astype(int)]
        batch.append(c)
    return list(branch.predict_proba(np.stack(batch)))


# --------------------------------------------------------------------------- fusion
def fuse(bundle: Any, a: BranchResult, v: BranchResult) -> BranchResult:
    """The fused answer of one window (or one live moment) from the two branch answers:
    the bundle's fuser, falling back to the branch that answered (:func:`_fuse`)."""
    return _fuse(bundle, a, v)


def _fuse(bundle: Any, a: BranchResult, v: BranchResult) -> BranchResult:
    """Fused answer for one window, falling back to the branch that answered.

    Fusion runs over ``bundle.classes``, the emotions both branches name: each
    branch's probabilities are restricted to them and renormalised first.
    """
    classes = bundle.classes

    def over_shared(result: BranchResult) -> np.ndarray | None:
        if not result.ok:
            return None
        p = np.array([result.probabilities.get(c, 0.0) for c in classes], dtype=np.float64)
        return p / p.sum() if p.sum() > 0 else np.full(len(classes), 1.0 / len(classes))

    pa, pv = over_shared(a), over_shared(v)
    if bundle.fusion is None:
        if pa is not None and pv is not None:
            return BranchResult(OK, _probabilities(classes, (pa + pv) / 2.0), "mean of both branches (no fusion model)")
        from pipeline.serve.fusion import LateFusion

        answer = LateFusion("rule_mean").fuse(pa, pv, a.status, v.status)
    else:
        answer = bundle.fusion.fuse(pa, pv, a.status, v.status)
    if answer.probabilities is None:
        return BranchResult(answer.status, {}, "")
    notes = [n for r in (a, v) if r.ok for n in r.notes]  # a branch's doubt about its input stays
    return BranchResult(OK, _probabilities(classes, answer.probabilities), answer.source, notes=notes)


# --------------------------------------------------------------------------- analyze
def _classes(branch: Any, bundle: Any) -> tuple[str, ...]:
    """The emotions a branch names (its own label set), else the bundle's."""
    return branch.params.classes if branch is not None else bundle.classes


def _analyze_image(src: Any, bundle: Any, detector: Any, timings: dict[str, float], name: str,
                   t_start: float) -> Analysis:
    """A still image as a one-frame clip: the face branch answers, audio abstains."""
    from pipeline.core import video as video_mod

    audio_res = BranchResult(NO_AUDIO, {}, STILL_IMAGE)
    branch, sample = bundle.video, None
    if branch is None:
        video_res = BranchResult(NO_MODEL)
    else:
        if detector is None and not branch.full_frame:
            detector = bundle.face_detector()
        with _timer(timings, "faces"):
            sample = (video_mod.image_sample(src, branch.params, detector=detector, check_small=True)
                      if not branch.full_frame
                      else video_mod.image_sample(src, branch.params, detector=None))
        if sample.ok:
            with _timer(timings, "predict_video"):
                proba = predict_crops(branch, [sample.crops])[0]
            video_res = BranchResult(OK, _probabilities(branch.params.classes, proba),
                                     f"{STILL_IMAGE}: {sample.detail}" if sample.detail else STILL_IMAGE,
                                     notes=list(sample.face_notes))
        elif sample.status == video_mod.NOT_READABLE:  # bad input, as for a clip: said, not answered
            from pipeline.core.media import MediaError

            raise MediaError(sample.detail)
        else:
            video_res = BranchResult(sample.status, {}, sample.detail)
    with _timer(timings, "fuse"):
        fused_res = _fuse(bundle, audio_res, video_res)
    calibrate(bundle, audio_res, video_res, fused_res)
    timings["total"] = time.perf_counter() - t_start
    return Analysis(
        source=name, duration=0.0, sample_rate=0, audio=audio_res, video=video_res, fused=fused_res,
        frames=None if sample is None else sample.frames, frame_times=None if sample is None else sample.times,
        boxes=[] if sample is None else list(sample.boxes), crops=None if sample is None else sample.crops,
        frames_with_face=0 if sample is None else int(sample.frames_with_face),
        faces_seen=0 if sample is None else int(sample.faces_seen),
        notes=[sample.faces_note] if sample is not None and sample.faces_note else [],
        timings=timings, bundle=bundle.summary(), still_image=True)


def branch_calibration(bundle: Any, name: str) -> dict[str, Any]:
    """The held-out calibration the bundle records for branch ``name`` ("audio" or
    "video"): :func:`pipeline.serve.analysis.calibration_of` of its metrics (ECE,
    accuracy, protocol); empty when none are recorded."""
    from pipeline.serve.analysis import calibration_of

    models = (getattr(bundle, "meta", None) or {}).get("models", {})
    branch = getattr(bundle, name, None)
    return calibration_of(getattr(branch, "metrics", None) or (models.get(name) or {}).get("metrics"))


def calibrate(bundle: Any, audio_res: BranchResult, video_res: BranchResult, fused_res: BranchResult) -> None:
    """Attach to each answering result the held-out calibration of the model behind it
    (:func:`pipeline.serve.analysis.calibration_of` of the bundle's recorded metrics: ECE,
    accuracy, protocol). The fused answer takes the fuser's when both branches
    answered, else that of the one branch it fell back to."""
    from pipeline.serve.analysis import calibration_of

    models = (getattr(bundle, "meta", None) or {}).get("models", {})
    ca, cv = branch_calibration(bundle, "audio"), branch_calibration(bundle, "video")
    if audio_res.ok:
        audio_res.calibration = ca
    if video_res.ok:
        video_res.calibration = cv
    if fused_res.ok:
        both = audio_res.ok and video_res.ok
        fused_res.calibration = (calibration_of((models.get("fusion") or {}).get("metrics")) if both
                                 else dict(ca if audio_res.ok else cv))


def _analysed_seconds(clip: Any, duration: float) -> float:
    """Seconds of the clip the answer covers: its length up to :data:`MAX_SECONDS`, or
    what was decoded when the file holds less than it claims (cut short or damaged: by
    more than :data:`pipeline.core.media.TRUNCATED_SLACK_S`)."""
    from pipeline.core.media import TRUNCATED_SLACK_S

    analysed, decoded = min(duration, MAX_SECONDS), clip.decoded_seconds
    return decoded if 0.0 < decoded < analysed - TRUNCATED_SLACK_S else analysed


def _notes(info: Any, duration: float, known_duration: bool, extra: Sequence[str]) -> list[str]:
    """Plain sentences about what was decided for the user: a cut at the length cap, a
    still picture that is not video, then the branches' own notes (``extra``)."""
    notes: list[str] = []
    if known_duration and duration > MAX_SECONDS:
        notes.append(f"only the first {MAX_SECONDS:g} s of {duration:.1f} s were analysed "
                     f"(the length limit, AVE_MAX_SECONDS, is {MAX_SECONDS:g} s)")
    elif not known_duration and duration >= MAX_SECONDS - 0.5:
        notes.append(f"only the first {MAX_SECONDS:g} s were analysed (the length limit, AVE_MAX_SECONDS); "
                     "the file does not say how long it is, so it may be longer")
    if getattr(info, "still_picture", False) and not info.has_video:
        notes.append("the picture in this file (cover art or a single still frame) is not a face on camera: "
                     "only the sound was analysed")
    return notes + [n for n in extra if n]


def one_blas_thread() -> Any:
    """Limit numpy's BLAS (OpenBLAS or MKL) to one thread, for the whole process, until
    the returned ``threadpoolctl`` limiter is restored (the end of its ``with`` block, or
    never when the result is dropped: what a serving process does once, after loading
    its bundle, for the Live page's answers).

    Why: the audio branch's speech encoder (numpy matrix products) shares the cores with
    the decoder, TensorFlow and OpenCV, each with its own threads; with BLAS's default of
    one thread per core the audio features of a 60 s clip took 21-22 s of wall time on
    2 busy cores, with one thread 13-14 s (``bench/bench_floor.py``). The limit is
    process-wide (BLAS has no per-thread setting), so nested or overlapping limiters all
    set the same value.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def analyze(src: str | os.PathLike[str] | bytes, bundle: Any, detector: Any = None, *,
            landmarks_path: str | None = None, calibration: Any = None) -> Analysis:
    """Hear, see and decide one clip with a loaded bundle.

    ``src``: a path or the file's bytes (any container :mod:`pipeline.core.media` decodes).
    ``detector``: a :class:`pipeline.core.faces.FaceDetector` (default: the bundle's, MTCNN
    on every few frames); ``landmarks_path``: an OpenFace CSV for the clip, used instead
    of the detector (corpus samples). Raises :class:`pipeline.core.media.MediaError` for
    unreadable input; abstentions (silence, no face, missing track) are statuses.

    The file is opened and decoded once (:func:`pipeline.core.media.decode`): the sound
    first, then, while the audio branch works on it in a second thread, the pictures,
    of which only the frames the windows need are converted and kept, their faces
    found a few windows at a time. ``calibration``: a speaker's calm-voice statistics
    (:func:`pipeline.serve.speaker.calibrate_to_voice`); the voice answer says which
    normalisation it used (:mod:`pipeline.serve.speaker`).
    """
    with one_blas_thread():  # restored on return
        return _analyze(src, bundle, detector, landmarks_path=landmarks_path, calibration=calibration)


def _analyze(src: str | os.PathLike[str] | bytes, bundle: Any, detector: Any, *,
             landmarks_path: str | None, calibration: Any) -> Analysis:
    """:func:`analyze` under its thread limits."""
    import threading

    from pipeline.core.media import UPLOADED, MediaError, decode, is_image

    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    name = UPLOADED if isinstance(src, (bytes, bytearray, memoryview)) else str(src)
    if is_image(src):
        return _analyze_image(src, bundle, detector, timings, name, t_start)
    first = bundle.audio or bundle.video
    state: dict[str, Any] = {}

    def plan(clip: Any) -> Any:
        """Called by the decoder once the facts and the sound are in."""
        info = clip.info
        if not (info.has_audio or info.has_video):
            return None
        if clip.duration > 0.0:  # the container's length, else the sound's
            with _timer(timings, "windows"):
                spans, state["single"], state["scores"] = clip_windows(clip, bundle, first)
            state["spans"] = spans
            thread = threading.Thread(target=_run_audio, args=(clip, spans), name="analyze-audio", daemon=True)
            state["audio_thread"] = thread
            thread.start()
        if bundle.video is None or not info.has_video:
            return None
        spans = state.get("spans")
        single = spans is not None and state["single"]
        state["video"] = _VideoPlan(bundle, spans, single, info, first, landmarks_path, detector, every=5)
        return state["video"].sampler

    def _run_audio(clip: Any, spans: list[tuple[float, float]]) -> None:
        try:
            state["audio"] = _audio(clip, bundle, spans, state["single"], timings, calibration,
                                    state.get("scores")) \
                if clip.info.has_audio else \
                _AudioOut(None, [BranchResult(NO_AUDIO if bundle.audio is not None else NO_MODEL)] * len(spans))
        except BaseException as err:  # raised again in the caller's thread
            state["audio_error"] = err

    rate = bundle.audio.params.sample_rate if bundle.audio is not None else None
    clip = decode(src, sample_rate=rate, max_seconds=MAX_SECONDS, max_side=_frame_side(bundle, landmarks_path),
                  plan=plan)
    timings["probe"] = clip.seconds.get("open", 0.0)
    timings["decode_audio"] = clip.seconds.get("audio", 0.0)
    if "video" in clip.seconds:
        timings["decode_video"] = clip.seconds["video"]
    info = clip.info
    if not (info.has_audio or info.has_video):
        if info.still_picture:  # one coded frame (or cover art) and no sound
            raise MediaError(f"{name} holds a single still picture and no sound, not a video: "
                             "save the picture as a photo (jpg or png) to have its face read")
        raise MediaError(f"{name} holds neither an audio nor a video track")
    duration = float(clip.duration)
    known_duration = info.duration > 0.0
    if "spans" not in state:  # the length was known only once the pictures were decoded
        # (the grid: the pictures were sampled on it while the length was unknown)
        state["spans"] = windows(min(duration, MAX_SECONDS), first.params)
        state["single"] = len(state["spans"]) == 1
        _run_audio(clip, state["spans"])
    spans = state["spans"]
    single = state["single"]
    v = _video(clip, state.get("video"), bundle, spans, single, timings)
    if "audio_thread" in state:
        state["audio_thread"].join()
    if "audio_error" in state:
        raise state["audio_error"]
    a = state["audio"]
    with _timer(timings, "fuse"):
        fused = [_fuse(bundle, wa, wv) for wa, wv in zip(a.per_window, v.per_window)]
    timeline = [] if single else [TimelineWindow(s, e, wa, wv, wf) for (s, e), wa, wv, wf
                                  in zip(spans, a.per_window, v.per_window, fused)]
    audio_res = a.per_window[0] if single else _mean_result(a.per_window, _classes(bundle.audio, bundle))
    video_res = v.per_window[0] if single else _mean_result(v.per_window, _classes(bundle.video, bundle))
    fused_res = fused[0] if single else _mean_result(fused, bundle.classes)
    if not single and fused_res.ok:
        from pipeline.serve.windows import fused_detail

        fused_res.detail = fused_detail(fused)
    for wa, wv, wf in zip(a.per_window, v.per_window, fused):  # timeline windows too
        calibrate(bundle, wa, wv, wf)
    calibrate(bundle, audio_res, video_res, fused_res)
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
        analysed_seconds=_analysed_seconds(clip, duration), faces_seen=v.faces_seen,
        # (the audio branch copied the decoder's notes before the pictures were decoded:
        # what the pictures added, such as their ending early, comes from the clip)
        notes=_notes(info, duration, known_duration, list(dict.fromkeys(a.notes + v.notes + clip.notes))),
    )


# --------------------------------------------------------------------------- describe
def _line(label: str, result: BranchResult) -> str:
    if not result.ok:
        return f"{label:<7}abstains: {result.status}"
    emotion, p = result.winner or ("?", 0.0)
    ranked = sorted(result.probabilities.items(), key=lambda kv: -kv[1])[1:3]
    rest = ", ".join(f"{k} {v:.0%}" for k, v in ranked)
    detail = f"  [{result.detail}]" if result.detail else ""
    ece = result.calibration.get("ece")
    sure = ("  NOT SURE" if result.confidence == "not sure" else "") + \
        (f"  (held-out calibration error {ece:.0%})" if ece is not None else "")
    extra = "".join(f"\n{'':<7}{n}" for n in result.notes)
    if result.normalisation:
        extra += f"\n{'':<7}{result.normalisation}"
    return f"{label:<7}{emotion} ({p:.0%}; then {rest}){sure}{detail}{extra}"


def describe(analysis: Analysis) -> str:
    """A few plain lines for people: each branch's answer or why it abstained, the
    fused answer and where it came from, the timeline of a long clip, timings."""
    cut = analysis.analysed < analysis.duration - 1e-6
    from pipeline.core.media import UPLOADED, printable

    shown = analysis.source if analysis.source == UPLOADED else printable(Path(analysis.source).name)
    lines = [f"{shown}: "
             f"{analysis.duration:.1f} s" + (f", of which the first {analysis.analysed:.1f} s were analysed" if cut else ""),
             _line("audio", analysis.audio),
             _line("video", analysis.video),
             _line("fused", analysis.fused)]
    lines += [f"note: {note}" for note in analysis.notes]
    if analysis.timeline:
        lines.append(f"timeline (first {analysis.analysed:.1f} s of {analysis.duration:.1f} s):" if cut else "timeline:")
        for w in analysis.timeline:
            top = w.fused.winner
            lines.append(f"  {w.start:5.1f}-{w.end:5.1f} s  "
                         + (f"{top[0]} ({top[1]:.0%})" if top else f"abstains: {w.fused.status}"))
    total = analysis.timings.get("total")
    if total is not None:
        from pipeline.core.paths import bundle_label

        lines.append(f"answered in {total:.2f} s by bundle {bundle_label(analysis.bundle.get('name', '?'))} "
                     f"[{analysis.bundle.get('id', '?')}]")
    return "\n".join(lines)
