"""Write the synthetic corpus in the RAVDESS layout: ``generate(out, n_actors, seed)``.

Per actor ``Actor_NN/`` holds the RAVDESS speech grid (8 emotions x 2 intensities,
neutral normal only, x 2 statements x 2 repetitions = 60 takes). Per take:

- ``03-01-EE-II-SS-RR-AA.wav``: 48 kHz mono 16-bit PCM (audio-only, as RAVDESS);
- ``01-01-EE-II-SS-RR-AA.mp4``: the full audio-visual take, H.264 video (160 x 160,
  30 fps) with an AAC audio track of the same voice;
- ``01-01-EE-II-SS-RR-AA.csv``: the face's 68 landmarks per frame in OpenFace 2
  column layout (``frame, timestamp, confidence, success, x_0..x_67, y_0..y_67``).

Every take is a pure function of (seed, actor, take code): the wav and CSV bytes are
identical across runs and worker schedules (the mp4 holds the same frames and audio,
though encoder bytes need not match). Files are written to a temporary name and
renamed, so a take whose files exist is complete and a rerun resumes.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from pipeline.core.labels import EMOTIONS, ravdess_emotion_code
from pipeline.core.synth import face as face_mod
from pipeline.core.synth import profiles
from pipeline.core.synth import voice as voice_mod

log = logging.getLogger(__name__)

GENERATOR_VERSION = "1.0"
FPS = 30
FRAME_SIZE = 160
MARKER = "SYNTHETIC.json"
_INTENSITIES = {"01": "normal", "02": "strong"}


@dataclass(frozen=True)
class TakeSpec:
    """One RAVDESS speech take: actor number, emotion name, intensity/statement/repetition codes."""

    actor: int
    emotion: str
    intensity: str  # "01" normal, "02" strong
    statement: str  # "01", "02"
    repetition: str  # "01", "02"

    def name(self, modality: str) -> str:
        """The 7-part RAVDESS name for a modality code ("01" AV, "02" video, "03" audio)."""
        return "-".join((modality, "01", ravdess_emotion_code(self.emotion), self.intensity,
                         self.statement, self.repetition, f"{self.actor:02d}"))

    def paths(self, root: Path, audio_only: bool) -> dict[str, Path]:
        """Files of this take under ``root/Actor_NN`` ({'wav', 'mp4', 'csv'} or just 'wav')."""
        folder = root / f"Actor_{self.actor:02d}"
        out = {"wav": folder / f"{self.name('03')}.wav"}
        if not audio_only:
            out["mp4"] = folder / f"{self.name('01')}.mp4"
            out["csv"] = folder / f"{self.name('01')}.csv"
        return out


def take_grid(n_actors: int, emotions: list[str] | tuple[str, ...] | None = None) -> list[TakeSpec]:
    """The RAVDESS speech grid for actors 1..n_actors (60 takes each), optionally a subset of emotions."""
    if not isinstance(n_actors, int) or n_actors < 1 or n_actors > 99:
        raise ValueError(f"n_actors must be an integer in 1..99, not {n_actors!r}")
    chosen = tuple(EMOTIONS) if emotions is None else tuple(emotions)
    unknown = [e for e in chosen if e not in EMOTIONS]
    if unknown or not chosen:
        raise ValueError(f"unknown emotions {unknown}; choose from: {', '.join(EMOTIONS)}")
    grid = []
    for actor in range(1, n_actors + 1):
        for emotion in EMOTIONS:
            if emotion not in chosen:
                continue
            for intensity in ("01",) if emotion == "neutral" else ("01", "02"):
                for statement in ("01", "02"):
                    for repetition in ("01", "02"):
                        grid.append(TakeSpec(actor, emotion, intensity, statement, repetition))
    return grid


@dataclass(frozen=True)
class SynthActor:
    """Everything fixed per actor: voice, face, and how they render each emotion
    (expressiveness, a log-normal gain and standard-normal cue offsets per emotion)."""

    number: int
    female: bool
    voice: voice_mod.VoiceActor
    face: face_mod.FaceActor
    expressiveness: float
    gains: dict[str, float]
    offsets: dict[str, dict[str, float]]


def make_actor(seed: int, number: int) -> SynthActor:
    """The actor ``number`` of the corpus with ``seed`` (odd = male, even = female)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(number), 1]))
    female = number % 2 == 0
    voice = voice_mod.random_actor(rng, female)
    face = face_mod.random_actor(rng, female)
    cues = profiles.VOICE_CUES + profiles.FACE_CUES
    gains = {e: float(np.exp(rng.normal(0.0, profiles.RENDITION_LOG_SD))) for e in EMOTIONS}
    offsets = {e: {c: float(rng.standard_normal()) for c in cues} for e in EMOTIONS}
    return SynthActor(number, female, voice, face, float(rng.uniform(0.75, 1.25)), gains, offsets)


def take_seed(seed: int, spec: TakeSpec) -> np.random.SeedSequence:
    """The take's own random stream: depends on (seed, actor, take code) only."""
    return np.random.SeedSequence([int(seed), spec.actor, int(ravdess_emotion_code(spec.emotion)),
                                   int(spec.intensity), int(spec.statement), int(spec.repetition), 2])


def take_cues(actor: SynthActor, spec: TakeSpec, rng: np.random.Generator) -> tuple[dict[str, float], dict[str, float]]:
    """Rendered (voice, face) cues of a take: table row x intensity x actor x take noise."""
    intensity = _INTENSITIES[spec.intensity]
    take_offsets = {c: float(rng.standard_normal()) for c in profiles.VOICE_CUES + profiles.FACE_CUES}
    args = (actor.expressiveness, actor.offsets[spec.emotion], take_offsets, actor.gains[spec.emotion])
    return (profiles.render(profiles.voice_profile(spec.emotion, intensity), *args),
            profiles.render(profiles.face_profile(spec.emotion, intensity), *args))


# --------------------------------------------------------------------------- writers
def _atomic(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path`` (no half-written files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; corpus files are meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """16-bit mono PCM wav, atomically (stdlib ``wave``: byte-identical for equal samples)."""
    import wave

    def write(tmp: str) -> None:
        with wave.open(tmp, "wb") as handle:
            handle.setnchannels(1)
            handle.setsampwidth(2)
            handle.setframerate(sample_rate)
            handle.writeframes(voice_mod.to_pcm16(samples))

    _atomic(path, write)


def landmark_csv(landmarks: np.ndarray, times: np.ndarray, confidence: np.ndarray) -> str:
    """OpenFace 2 layout text: ``frame`` from 1, ``, `` separators, pixels to 3 decimals.

    landmarks: (n, 68, 2) pixel (x, y); times: (n,) s; confidence: (n,) in [0, 1].
    """
    header = ["frame", "timestamp", "confidence", "success"]
    header += [f"x_{i}" for i in range(68)] + [f"y_{i}" for i in range(68)]
    lines = [", ".join(header)]
    for i in range(landmarks.shape[0]):
        values = [str(i + 1), f"{times[i]:.3f}", f"{confidence[i]:.3f}", "1"]
        values += [f"{v:.3f}" for v in landmarks[i, :, 0]] + [f"{v:.3f}" for v in landmarks[i, :, 1]]
        lines.append(", ".join(values))
    return "\n".join(lines) + "\n"


def write_text(path: Path, text: str) -> None:
    """A text file, atomically."""
    _atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_mp4(path: Path, frames: np.ndarray, fps: int, audio: np.ndarray | None, sample_rate: int) -> None:
    """H.264 (ultrafast, CRF 23, yuv420p) mp4 with an optional mono AAC track, atomically.

    frames: (n, h, w, 3) RGB uint8 with even h, w; audio: float32 mono at ``sample_rate``.
    """
    import av

    def write(tmp: str) -> None:
        with av.open(tmp, mode="w", format="mp4") as container:
            video = container.add_stream("libx264", rate=fps)
            video.width, video.height = int(frames.shape[2]), int(frames.shape[1])
            video.pix_fmt = "yuv420p"
            video.options = {"preset": "ultrafast", "crf": "23"}
            video.codec_context.thread_count = 1  # workers already use every core
            sound = None
            if audio is not None:
                sound = container.add_stream("aac", rate=sample_rate)
                sound.layout = "mono"
            for rgb in frames:
                for packet in video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                    container.mux(packet)
            for packet in video.encode():
                container.mux(packet)
            if sound is not None:
                frame = av.AudioFrame.from_ndarray(audio.astype(np.float32)[None, :], format="fltp", layout="mono")
                frame.sample_rate, frame.pts = sample_rate, 0
                for packet in sound.encode(frame):
                    container.mux(packet)
                for packet in sound.encode():
                    container.mux(packet)

    _atomic(path, write)


# --------------------------------------------------------------------------- one take
def _render_take(job: tuple[int, TakeSpec, str, bool]) -> tuple[TakeSpec, int]:
    """Generate one take's files (worker entry point). Returns (spec, files written)."""
    seed, spec, root, audio_only = job
    paths = spec.paths(Path(root), audio_only)
    if all(p.exists() and p.stat().st_size > 0 for p in paths.values()):
        return spec, 0
    actor = make_actor(seed, spec.actor)
    cue_ss, voice_ss, face_ss, mark_ss = take_seed(seed, spec).spawn(4)
    voice_cues, face_cues = take_cues(actor, spec, np.random.default_rng(cue_ss))
    utterance = voice_mod.synthesize(spec.statement, voice_cues, actor.voice, np.random.default_rng(voice_ss))
    write_wav(paths["wav"], utterance.samples, utterance.sample_rate)
    if audio_only:
        return spec, 1
    n_frames = int(np.ceil(utterance.duration * FPS))
    env = voice_mod.envelope(utterance.samples, utterance.sample_rate, FPS, n_frames)
    take = face_mod.render_take(actor.face, face_cues, env, FPS, (utterance.onset_s, utterance.offset_s),
                                np.random.default_rng(face_ss), FRAME_SIZE)
    mark_rng = np.random.default_rng(mark_ss)
    tracked = take.landmarks + mark_rng.normal(0.0, 0.25, size=take.landmarks.shape)  # tracker jitter
    confidence = np.clip(0.98 + mark_rng.normal(0.0, 0.006, size=n_frames), 0.9, 0.995)
    write_text(paths["csv"], landmark_csv(tracked, take.times, confidence))
    write_mp4(paths["mp4"], take.frames, FPS, utterance.samples, utterance.sample_rate)
    return spec, 3


# --------------------------------------------------------------------------- corpus
@dataclass
class SynthSummary:
    """What :func:`generate` did."""

    out: Path
    n_actors: int
    seed: int
    n_takes: int = 0
    n_generated: int = 0
    n_skipped: int = 0
    files_written: int = 0
    seconds: float = 0.0
    audio_only: bool = False
    emotions: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        """A few human-readable lines."""
        kind = "audio-only wav" if self.audio_only else "wav + audio-video mp4 + landmark csv"
        return "\n".join([
            f"synthetic corpus (seed {self.seed}) in {self.out}",
            f"  {self.n_actors} actors, {self.n_takes} takes ({kind}); emotions: {', '.join(self.emotions)}",
            f"  {self.n_generated} takes generated, {self.n_skipped} already complete (skipped); "
            f"{self.files_written} files written in {self.seconds:.1f} s",
        ])


def write_marker(root: Path, seed: int, n_actors: int, audio_only: bool, emotions: tuple[str, ...]) -> Path:
    """``SYNTHETIC.json`` at the corpus root: says what this is (read by the RAVDESS adapter)."""
    marker = {
        "synthetic": "synthetic: not real people",
        "generator": "pipeline.core.synth",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "n_actors": int(n_actors),
        "emotions": list(emotions),
        "layout": "RAVDESS speech: Actor_NN/MM-01-EE-II-SS-RR-AA",
        "contents": ("03-*.wav audio-only 48 kHz mono 16-bit" if audio_only else
                     f"03-*.wav audio-only 48 kHz mono 16-bit; 01-*.mp4 H.264 {FRAME_SIZE}x{FRAME_SIZE} "
                     f"{FPS} fps + AAC audio; 01-*.csv OpenFace-layout 2-D landmarks"),
        "profiles": "pipeline/core/synth/profiles.py (docs/synthetic.md)",
    }
    path = root / MARKER
    write_text(path, json.dumps(marker, indent=2) + "\n")
    return path


def generate(out: str | os.PathLike[str], n_actors: int = 8, seed: int = 7, audio_only: bool = False,
             progress: bool = True, emotions: list[str] | tuple[str, ...] | None = None,
             n_jobs: int | None = None) -> SynthSummary:
    """Generate (or complete) the synthetic corpus under ``out``; returns a summary.

    ``emotions`` restricts the grid (default all 8); ``n_jobs`` worker processes
    (default 2; 1 runs in this process). Takes whose files already exist are skipped.
    """
    from tqdm import tqdm

    started = time.perf_counter()
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise ValueError(f"{root} exists and is not a folder")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    grid = take_grid(n_actors, emotions)
    jobs_n = 2 if n_jobs is None else int(n_jobs)
    if jobs_n < 1:
        raise ValueError(f"n_jobs must be >= 1, not {n_jobs}")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create the corpus folder {root}: {err.strerror or err}") from err
    for stale in root.glob("Actor_*/.tmp-*"):  # left by an interrupted run
        stale.unlink(missing_ok=True)
    chosen = tuple(e for e in EMOTIONS if emotions is None or e in emotions)
    write_marker(root, seed, n_actors, audio_only, chosen)
    summary = SynthSummary(root, n_actors, int(seed), n_takes=len(grid), audio_only=audio_only, emotions=chosen)
    jobs = [(int(seed), spec, str(root), audio_only) for spec in grid]
    bar = tqdm(total=len(jobs), desc="synth", unit="take", disable=not progress)
    try:
        if jobs_n == 1:
            for _, written in map(_render_take, jobs):
                _count(summary, written)
                bar.update()
        else:
            # spawn, not fork: the caller may hold threads (TensorFlow, Streamlit)
            with ProcessPoolExecutor(max_workers=jobs_n, mp_context=get_context("spawn")) as pool:
                try:
                    for _, written in pool.map(_render_take, jobs, chunksize=4):
                        _count(summary, written)
                        bar.update()
                except KeyboardInterrupt:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    except OSError as err:  # disk full, permissions: one line for the user, finished takes kept
        raise ValueError(f"writing the synthetic corpus failed: {err}; rerun to resume") from err
    finally:
        bar.close()
    summary.seconds = time.perf_counter() - started
    log.info("synth: %d takes generated, %d skipped in %.1f s", summary.n_generated, summary.n_skipped, summary.seconds)
    return summary


def _count(summary: SynthSummary, written: int) -> None:
    if written:
        summary.n_generated += 1
        summary.files_written += written
    else:
        summary.n_skipped += 1
