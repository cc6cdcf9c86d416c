"""Feature extraction for a whole manifest: parallel, with a progress bar, cached on disk.

Each clip's feature is cached at
``cache_dir/<kind>/<params digest>/<sha1 of file content[:16]>[-<augment>].npy``, so a
second run (or another experiment using the same feature) only reads files. The
content hash is computed once per file version: a small index keyed by
``(path, size, mtime)`` remembers it. Audio kinds go through
``audio.featurize(media.load_audio(path, sr), params, kind)`` (the exact call the
inference path makes); ``frames``/``frames_full`` through ``video.featurize`` and are
stored as uint8. A clip that cannot be featurized is reported, never fatal, when the
caller passes a ``failed`` list.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from pipeline.core.preprocessing import Preprocessing

log = logging.getLogger(__name__)

AUDIO_KINDS: tuple[str, ...] = ("mfcc_mean", "mfcc_stats", "mfcc_matrix", "logmel", "egemaps", "compare",
                                 "whisper_base", "whisper_tiny", "whisper_base_layers", "whisper_tiny_layers")
#: Kinds computed by the speech encoder (their cache key holds level, layer and weights digest).
_ENCODER_KINDS: tuple[str, ...] = ("whisper_base", "whisper_tiny", "whisper_base_layers", "whisper_tiny_layers")
VIDEO_KINDS: tuple[str, ...] = ("frames", "frames_full", "faces")
#: Parameters each family of kinds depends on (the cache key's params digest).
AUDIO_FIELDS: tuple[str, ...] = ("sample_rate", "offset", "duration", "n_mfcc", "n_mels", "n_fft", "hop_length")
VIDEO_FIELDS: tuple[str, ...] = ("n_frames", "crop_size", "crop_margin", "color")
#: Bump when feature code changes meaning, to retire old cache entries.
CACHE_VERSION = 2  # 2: DC offset and sub-audio drift removed, cancelling downmix falls back (issue 11)
#: Stacks larger than this (bytes) are returned as a read-only memory map on disk.
MEMMAP_BYTES = 256 * 2**20
HASH_INDEX = "content-hashes.json"
_CHUNK = 1 << 20


class FeatureExtractionError(ValueError):
    """Some clips could not be featurized and the caller asked for all or nothing."""


def modality_of(kind: str) -> str:
    """``audio`` or ``video`` for a feature kind (audio kinds may be 1-D kinds joined by
    ``+``, e.g. ``whisper_base+egemaps``); unknown kinds raise a clear error."""
    if kind in AUDIO_KINDS or ("+" in kind and all(p in AUDIO_KINDS for p in kind.split("+"))):
        return "audio"
    if kind in VIDEO_KINDS:
        return "video"
    raise ValueError(f"unknown feature kind {kind!r}; choose one of: {', '.join(AUDIO_KINDS + VIDEO_KINDS)}")


# ----------------------------------------------------------------------- hashing
def file_sha1(path: str | os.PathLike[str]) -> str:
    """sha1 hex digest of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class HashIndex:
    """Remembers each file's sha1 by ``(abs path, size, mtime_ns)``; saved atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.changed = False
        try:
            self.entries: dict[str, list[Any]] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.entries = {}

    def sha1(self, file: str | os.PathLike[str]) -> str:
        file = os.path.abspath(file)
        stat = os.stat(file)
        known = self.entries.get(file)
        if known and known[0] == stat.st_size and known[1] == stat.st_mtime_ns:
            return str(known[2])
        digest = file_sha1(file)
        self.entries[file] = [stat.st_size, stat.st_mtime_ns, digest]
        self.changed = True
        return digest

    def save(self) -> None:
        if not self.changed:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self.entries, handle)
        os.replace(tmp, self.path)
        self.changed = False


def params_digest(kind: str, params: Preprocessing, detector: str | None = None) -> str:
    """12-hex digest of what ``kind`` depends on (its parameter fields, detector, version)."""
    fields = AUDIO_FIELDS if modality_of(kind) == "audio" else VIDEO_FIELDS
    data = {k: params.to_dict()[k] for k in fields}
    data.update(kind=kind, version=CACHE_VERSION)
    if kind in ("egemaps", "compare") + _ENCODER_KINDS:
        from pipeline.core.audio import TRIM_TOP_DB

        data["trim_top_db"] = TRIM_TOP_DB  # openSMILE kinds see the trimmed clip
        if params.speech_span != "trim":  # (keeps the digests of existing caches unchanged)
            data["speech_span"] = params.speech_span
    if kind in ("egemaps", "compare") and params.level_db is not None:  # (absent: old digests unchanged)
        data["level_db"] = params.level_db
    if kind in _ENCODER_KINDS:
        from pipeline.core.speech_encoder import ENCODERS

        data.update(level_db=params.level_db, encoder_sha256=ENCODERS[kind.replace("_layers", "")].sha256)
        if not kind.endswith("_layers"):
            layers = list(params.encoder_layers)
            if len(layers) == 1:  # one block: the key of caches made before layer averages
                data["encoder_layer"] = layers[0]
            else:
                data["encoder_layers"] = layers
    if modality_of(kind) == "video":
        data["detector"] = detector or ""
    return hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def cache_file(cache_dir: str | os.PathLike[str], kind: str, digest: str, content_key: str,
               augment: str | None = None) -> Path:
    """Where one clip's feature lives in the cache."""
    name = content_key[:16] + (f"-{augment}" if augment else "")
    return Path(cache_dir) / kind / digest / f"{name}.npy"


def augment_seed(content_key: str, augment: str) -> int:
    """Deterministic rng seed per (clip content, augmentation)."""
    return int(hashlib.sha1(f"{content_key}:{augment}".encode()).hexdigest()[:8], 16)


# ----------------------------------------------------------------------- computing
@dataclass(frozen=True)
class _Job:
    """One clip to featurize (picklable, for worker processes)."""

    position: int
    source: str
    landmarks: str
    content_key: str
    out: str
    others: tuple[str, ...] = ()


@functools.lru_cache(maxsize=2)
def _detector(name: str) -> Any:
    """A face detector by name, built once per process (MTCNN loads TensorFlow)."""
    from pipeline.core import faces

    return faces.make_detector(name)


def compute(kind: str, params: Preprocessing, source: str, *, landmarks: str = "",
            augment: str | None = None, seed: int = 0, detector: str | None = None,
            others: tuple[str, ...] = ()) -> np.ndarray:
    """Feature ``kind`` of one file, exactly as the inference path computes it.

    Audio: float32 from ``audio.featurize(media.load_audio(source, sr), params, kind)``
    (after ``audio.augment`` when named, with ``np.random.default_rng(seed)``). Video:
    uint8 ``(n_frames, crop, crop, 3)`` from ``video.featurize``; ``faces``: the per-frame
    model's input ``(n_frames, crop, crop, channels)`` from ``video.face_crops`` (one
    frame for a still image). ``others``: files of other speakers, for augmentations
    that mix them in (``babble``).
    """
    if modality_of(kind) == "audio":
        from pipeline.core import audio, degrade, media

        y = media.load_audio(source, params.sample_rate)
        if augment in degrade.CONDITIONS:
            voices = [media.load_audio(o, params.sample_rate) for o in others]
            y = degrade.apply(y, params.sample_rate, augment, np.random.default_rng(seed), voices)
        elif augment:
            y = audio.augment(y, params.sample_rate, augment, np.random.default_rng(seed))
        return np.asarray(audio.featurize(y, params, kind), dtype=np.float32)
    if augment:
        raise ValueError("augmentations apply to audio features only")
    from pipeline.core import video

    if kind == "faces":
        return video.face_crops(source, params, landmarks_path=landmarks or None,
                                detector=_detector(detector) if detector else None)
    frames = video.featurize(source, params, landmarks_path=landmarks or None,
                             detector=_detector(detector) if detector else None,
                             full_frame=kind == "frames_full")
    return np.asarray(frames, dtype=np.uint8)


def _save_atomic(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy.tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, array)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _run_job(job: _Job, kind: str, params: dict[str, Any], augment: str | None,
             detector: str | None) -> tuple[int, str]:
    """Worker: compute one clip and write its cache file; returns (position, error or '')."""
    try:
        seed = augment_seed(job.content_key, augment) if augment else 0
        array = compute(kind, Preprocessing.from_dict(params), job.source, landmarks=job.landmarks,
                        augment=augment, seed=seed, detector=detector, others=job.others)
        _save_atomic(Path(job.out), array)
        return job.position, ""
    except Exception as err:  # one bad clip must never stop a corpus run
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return job.position, f"{type(err).__name__}: {reason}"


def _run_all(jobs: list[_Job], kind: str, params: Preprocessing, augment: str | None,
             detector: str | None, n_jobs: int, progress: bool, n_total: int) -> dict[int, str]:
    """Compute every job (in processes when worth it) under one tqdm bar."""
    from tqdm.auto import tqdm

    desc = f"{kind}{'+' + augment if augment else ''}"
    bar = tqdm(total=n_total, initial=n_total - len(jobs), desc=desc, unit="clip",
               disable=not progress, leave=False)
    errors: dict[int, str] = {}
    args = (kind, params.to_dict(), augment, detector)
    try:
        if n_jobs > 1 and len(jobs) >= 4 * n_jobs:
            from joblib import Parallel, delayed

            from pipeline.core.audio import warm_up

            warm_up()  # numba's kernels compiled here, once, not by the workers at once

            results = Parallel(n_jobs=n_jobs, return_as="generator_unordered", batch_size=4)(
                delayed(_run_job)(job, *args) for job in jobs)
        else:
            results = (_run_job(job, *args) for job in jobs)
        for position, error in results:
            if error:
                errors[position] = error
            bar.update(1)
    finally:
        bar.close()
    return errors


# ----------------------------------------------------------------------- public API
def _sources(manifest: pd.DataFrame, kind: str) -> tuple[list[str], list[str]]:
    modality = modality_of(kind)
    column = "audio_path" if modality == "audio" else "video_path"
    sources = manifest[column].fillna("").astype(str).tolist()
    if modality == "audio":
        # an AV take without an audio-only file still has audio inside its video
        videos = manifest["video_path"].fillna("").astype(str).tolist()
        sources = [s or v for s, v in zip(sources, videos)]
    landmarks = (manifest["landmarks_path"].fillna("").astype(str).tolist()
                 if modality == "video" and kind in ("frames", "faces") else [""] * len(manifest))
    return sources, landmarks


#: How many other speakers' clips are offered to a condition that mixes them in (babble).
OTHER_VOICES: int = 6


def _other_speakers(manifest: pd.DataFrame, pos: int, sources: list[str], key: str, augment: str) -> tuple[str, ...]:
    """Up to :data:`OTHER_VOICES` files of *other* speakers of the same corpus as row
    ``pos`` (chosen with the clip's augmentation seed): the voices of its babble. They are
    training speakers wherever the clip itself is one under leave-one-corpus-out; under
    speaker folds they may include a test speaker's voice as unlabelled noise."""
    corpus, actor = manifest["corpus"].astype(str).to_numpy(), manifest["actor"].astype(str).to_numpy()
    pool = np.flatnonzero((corpus == corpus[pos]) & (actor != actor[pos]))
    pool = [p for p in pool if sources[p]]
    if not pool:
        return ()
    rng = np.random.default_rng(augment_seed(key, augment))
    picked = rng.choice(len(pool), size=min(OTHER_VOICES, len(pool)), replace=False)
    return tuple(sources[pool[i]] for i in sorted(picked))


def _content_key(index: HashIndex, source: str, landmarks: str) -> str:
    key = index.sha1(source)
    if landmarks and os.path.exists(landmarks):  # a new landmark file is a new crop
        key = hashlib.sha1(f"{key}:{index.sha1(landmarks)}".encode()).hexdigest()
    return key


def _stack(paths: list[Path], store: Path) -> np.ndarray:
    """Load and stack cache files; big stacks go to a memory map under ``store``."""
    if not paths:
        return np.empty((0,), dtype=np.float32)
    first = np.load(paths[0])
    shape, dtype = (len(paths), *first.shape), first.dtype
    if first.nbytes * len(paths) <= MEMMAP_BYTES:
        out = np.empty(shape, dtype=dtype)
    else:
        key = hashlib.sha1("|".join(p.name for p in paths).encode()).hexdigest()[:16]
        target = store / "stacks" / f"{key}.npy"
        if target.is_file():
            cached = np.load(target, mmap_mode="r")
            if cached.shape == shape and cached.dtype == dtype:
                return cached
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp.npy")
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        for i, path in enumerate(paths):
            out[i] = np.load(path)
        out.flush()
        del out
        os.replace(tmp, target)
        return np.load(target, mmap_mode="r")
    for i, path in enumerate(paths):
        item = first if i == 0 else np.load(path)
        if item.shape != shape[1:]:
            raise FeatureExtractionError(f"cached feature {path} has shape {item.shape}, expected {shape[1:]}")
        out[i] = item
    return out


def extract(manifest: pd.DataFrame, kind: str, params: Preprocessing,
            cache_dir: str | os.PathLike[str], augment: str | None = None, n_jobs: int = 2,
            progress: bool = True, *, detector: str | None = None,
            failed: list[tuple[str, str]] | None = None) -> np.ndarray:
    """Features of every manifest row, stacked in manifest order.

    Audio kinds give float32 ``(n, *feature_shape)``; ``frames``/``frames_full`` give
    uint8 ``(n, n_frames, crop, crop, 3)`` (a read-only memory map when larger than
    :data:`MEMMAP_BYTES`). ``augment`` names one ``audio.augment`` transform applied
    before featurizing (deterministic per clip). Cached items are read, missing ones
    computed with ``n_jobs`` processes.

    Clips that fail (no file, corrupt, no face): when ``failed`` is a list, each is
    appended as ``(clip_id, reason)`` and its row is *left out* of the result (use
    :func:`drop_failed` to align the manifest); otherwise the first failure raises
    :class:`FeatureExtractionError`.
    """
    modality_of(kind)
    if "+" in kind:  # a combination: each part from its own cache, rows every part has
        return _extract_combined(manifest, kind, params, cache_dir, augment, n_jobs, progress, failed)
    cache_dir = Path(cache_dir)
    digest = params_digest(kind, params, detector)
    store = cache_dir / kind / digest
    index = HashIndex(cache_dir / HASH_INDEX)
    sources, landmarks = _sources(manifest, kind)
    clip_ids = manifest["clip_id"].astype(str).tolist()
    errors: dict[int, str] = {}
    targets: dict[int, Path] = {}
    jobs: list[_Job] = []
    for pos, (source, marks) in enumerate(zip(sources, landmarks)):
        if not source:
            errors[pos] = f"no {modality_of(kind)} file"
            continue
        try:
            key = _content_key(index, source, marks)
        except OSError as err:
            errors[pos] = f"cannot read {source}: {err.strerror or err}"
            continue
        targets[pos] = cache_file(cache_dir, kind, digest, key, augment)
        if not targets[pos].is_file() and kind in _ENCODER_KINDS and not kind.endswith("_layers"):
            _from_layers(cache_dir, kind, params, key, augment, targets[pos])
        if not targets[pos].is_file():
            from pipeline.core.degrade import NEEDS_OTHERS

            others = _other_speakers(manifest, pos, sources, key, augment) if augment in NEEDS_OTHERS else ()
            jobs.append(_Job(pos, source, marks, key, str(targets[pos]), others))
    index.save()
    if jobs:
        log.info("%s: computing %d of %d clips (%d cached)", kind, len(jobs), len(sources),
                 len(targets) - len(jobs))
    errors.update(_run_all(jobs, kind, params, augment, detector, n_jobs, progress, len(sources)))
    if errors:
        for pos, reason in sorted(errors.items()):
            log.warning("%s: skipping %s: %s", kind, clip_ids[pos], reason)
        if failed is None:
            pos, reason = min(errors.items())
            raise FeatureExtractionError(
                f"{len(errors)} clip(s) could not be featurized, e.g. {clip_ids[pos]}: {reason}")
        failed.extend((clip_ids[pos], reason) for pos, reason in sorted(errors.items()))
    keep = [targets[pos] for pos in range(len(sources)) if pos not in errors]
    return _stack(keep, store)


def _from_layers(cache_dir: Path, kind: str, params: Preprocessing, key: str, augment: str | None,
                 target: Path) -> None:
    """Fill one clip's ``whisper_*`` cache entry from the every-block entry of the same
    clip and parameters (``whisper_*_layers``, the rows ``encoder_layers`` averaged) when
    there is one: a block's output does not depend on the blocks above it, so the two
    are equal (``tests/test_speech_encoder.py``)."""
    layers = cache_file(cache_dir, f"{kind}_layers", params_digest(f"{kind}_layers", params), key, augment)
    if layers.is_file():
        stack = np.load(layers)
        rows = list(params.encoder_layers)
        if max(rows) < len(stack):
            _save_atomic(target, np.ascontiguousarray(stack[rows].mean(axis=0).astype(np.float32)))


def _extract_combined(manifest: pd.DataFrame, kind: str, params: Preprocessing,
                      cache_dir: str | os.PathLike[str], augment: str | None, n_jobs: int, progress: bool,
                      failed: list[tuple[str, str]] | None) -> np.ndarray:
    """:func:`extract` of ``a+b``: each part extracted (and cached) alone, then the rows
    of the clips that every part could featurize, concatenated column-wise in order."""
    clip_ids = manifest["clip_id"].astype(str).tolist()
    parts, lost = [], {}
    for part in kind.split("+"):
        part_failed: list[tuple[str, str]] = []
        X = np.asarray(extract(manifest, part, params, cache_dir, augment, n_jobs, progress,
                               failed=part_failed if failed is not None else None))
        bad = {c for c, _ in part_failed}
        parts.append((X, [c for c in clip_ids if c not in bad]))
        for clip, reason in part_failed:
            lost.setdefault(clip, f"{part}: {reason}")
    keep = [c for c in clip_ids if c not in lost]
    columns = []
    for X, ids in parts:
        row = {c: i for i, c in enumerate(ids)}
        columns.append(X[[row[c] for c in keep]].reshape(len(keep), -1))
    if failed is not None:
        failed.extend((c, lost[c]) for c in clip_ids if c in lost)
    return np.concatenate(columns, axis=1).astype(np.float32) if keep else np.empty((0,), np.float32)


def drop_failed(manifest: pd.DataFrame, failed: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """The manifest without failed clips, re-indexed: aligned with :func:`extract`'s rows."""
    bad = {clip for clip, _ in failed}
    return manifest.loc[~manifest["clip_id"].astype(str).isin(bad)].reset_index(drop=True)
