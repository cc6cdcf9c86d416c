"""Shared dashboard state: the sidebar settings and every cached call into ``pipeline``.

The only module that uses ``st.cache_*`` (each cache bounded by ``max_entries``), so
what is kept in memory, and for how long, is decided in one place. Loaded models live
in ``cache_resource`` (one copy shared by every session); tables, analyses and figures
in ``cache_data``. Cached functions take plain strings / bytes so their keys are cheap.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from pipeline.core import paths

from dashboard import folders

log = logging.getLogger(__name__)

#: Results folders change while experiments run; re-read them at most this often (s).
RESULTS_TTL = 30
CORPUS_KINDS: tuple[str, ...] = ("synthetic", "ravdess", "savee")


@dataclass(frozen=True)
class Settings:
    """What the sidebar chose: where the results store, the bundle and the corpus are."""

    runs: Path
    bundle: Path
    corpus_root: Path
    corpus_kind: str


def default_settings() -> Settings:
    """Defaults from :mod:`pipeline.core.paths` (each overridable by environment variable)."""
    from pipeline.research import store

    runs = paths.runs_dir() if store.list_experiments(paths.runs_dir()) else paths.record_dir()
    return Settings(runs=runs, bundle=paths.default_bundle(),
                    corpus_root=paths.data_dir() / "synthetic", corpus_kind="synthetic")


def settings() -> Settings:
    """The current session's settings (defaults until the sidebar sets them)."""
    current = st.session_state.get("settings")
    return current if isinstance(current, Settings) else default_settings()


def set_settings(value: Settings) -> None:
    st.session_state["settings"] = value


# --------------------------------------------------------------------------- models
def bundle_exists(bundle_dir: str | Path) -> bool:
    """True when the folder holds a ``bundle.json`` (loading it may still fail)."""
    from pipeline.serve.bundle import BUNDLE_FILE

    return (Path(bundle_dir) / BUNDLE_FILE).is_file()


@st.cache_data(max_entries=4, ttl=RESULTS_TTL, show_spinner=False)
def bundle_meta(bundle_dir: str) -> dict[str, Any]:
    """The bundle's ``bundle.json`` without loading any model (for model cards)."""
    from pipeline.serve.bundle import read_meta

    folders.check_bundle(bundle_dir)
    return read_meta(bundle_dir)


def _stamp(path: str | Path) -> float:
    """Last modification time of a folder (0 when absent): part of cache keys so a
    re-exported bundle or a rerun experiment is picked up."""
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


@st.cache_resource(max_entries=2, show_spinner="Loading the models (once)...")
def _bundle(bundle_dir: str, stamp: float) -> Any:
    from pipeline.serve.bundle import load_bundle
    from pipeline.serve.inference import one_blas_thread

    log.info("loading bundle %s", bundle_dir)
    loaded = load_bundle(bundle_dir)
    # a serving process from here on: the Live page answers in this process, beside
    # the WebRTC decoder and TensorFlow, so numpy's BLAS stays at one thread (clips are
    # analysed in the worker's child process, under analyze's own limit)
    one_blas_thread()
    return loaded


def bundle(bundle_dir: str | Path) -> Any:
    """The loaded :class:`pipeline.serve.bundle.Bundle` (models loaded once per process;
    only a folder the operator configured, :func:`dashboard.folders.check_bundle`)."""
    folders.check_bundle(bundle_dir)
    return _bundle(str(bundle_dir), _stamp(bundle_dir))


@st.cache_resource(max_entries=1, show_spinner=False)
def warm_up() -> threading.Thread:
    """Compile librosa's numba kernels once in the background (~17 s on a fresh
    environment) so the first analysis is fast and the app itself starts at once."""
    from pipeline.core.audio import warm_up as warm_audio

    thread = threading.Thread(target=warm_audio, name="librosa-warm-up", daemon=True)
    thread.start()
    return thread


#: Face finders the Analyze page offers: the bundle's own (MTCNN unless AVE_DETECTOR
#: says otherwise; ~130 ms a frame, the accurate one) or OpenCV's Haar cascade (~10 ms).
DETECTORS: dict[str, str] = {"bundle": "accurate (MTCNN)", "haar": "fast (Haar cascade)"}


#: Analyses kept per session (each with its sampled frames and crops, a few MB) and for
#: how long (s): moving a slider or the timeline does not analyse the clip again, and
#: nothing of one visitor's clip is kept for another or after the session ends.
ANALYSES_PER_SESSION = 4
ANALYSIS_TTL = 900


@st.cache_resource(max_entries=1, show_spinner=False, on_release=lambda w: w.close())
def worker() -> Any:
    """The one :class:`pipeline.serve.isolation.Worker` of this server: every analysis
    of a visitor's file runs in its child process, so a native crash in decoding ends
    that child, not the server (the child loads the bundle itself, once)."""
    from pipeline.serve.isolation import Worker

    # librosa's numba kernels compiled and cached by this process first: the child
    # compiling them at the same time could leave a mismatched cache that crashes it
    # (pipeline.core.audio.warm_up)
    warm_up().join()
    return Worker()


def worker_busy() -> bool:
    """True while the worker is on another file (a new one waits for it: one at a time)."""
    return bool(worker().busy)


def _request(source: bytes | str, bundle_dir: str, stamp: float, detector: str, landmarks: str = "",
             calibration: Any = None) -> Any:
    from pipeline.serve.isolation import AnalysisRequest

    return AnalysisRequest(source, bundle_dir, stamp, detector, landmarks, calibration)


@st.cache_data(scope="session", max_entries=ANALYSES_PER_SESSION, ttl=ANALYSIS_TTL, show_spinner=False)
def _analyze(digest: str, bundle_dir: str, stamp: float, detector: str, voice: str,
             _data: bytes = b"", _calibration: Any = None) -> Any:
    from pipeline.serve import isolation

    folders.check_bundle(bundle_dir)
    return worker().call(isolation.analyze_job, _request(_data, bundle_dir, stamp, detector, "", _calibration))


def analyze(data: bytes, bundle_dir: str | Path, detector: str = "bundle", calibration: Any = None,
            voice: str = "") -> Any:
    """:func:`pipeline.serve.inference.analyze` of an uploaded/recorded clip, run in the
    worker process (:func:`worker`); kept for this session only, by content (and by
    ``voice``, the key of the session's calibration), so moving a slider does not
    recompute the clip. Raises what ``analyze`` raises, and
    :class:`pipeline.serve.isolation.WorkerCrashed` when the file crashed the worker."""
    digest = hashlib.sha1(data).hexdigest()
    return _analyze(digest, str(bundle_dir), _stamp(bundle_dir), detector, voice, data, calibration)


@st.cache_data(scope="session", max_entries=ANALYSES_PER_SESSION, ttl=ANALYSIS_TTL, show_spinner=False)
def _analyze_path(path: str, mtime: float, bundle_dir: str, stamp: float, landmarks: str,
                  detector: str, voice: str, _calibration: Any = None) -> Any:
    from pipeline.serve import isolation

    folders.check_bundle(bundle_dir)
    folders.check_corpus_file(path)
    return worker().call(isolation.analyze_job,
                         _request(path, bundle_dir, stamp, detector, landmarks, _calibration))


def analyze_path(path: str | Path, bundle_dir: str | Path, landmarks: str = "",
                 detector: str = "bundle", calibration: Any = None, voice: str = "") -> Any:
    """:func:`pipeline.serve.inference.analyze` of a corpus file (with its landmark CSV when
    the corpus has one), in the worker process, kept for this session by path + mtime."""
    return _analyze_path(str(path), _stamp(path), str(bundle_dir), _stamp(bundle_dir),
                         str(landmarks or ""), detector, voice, calibration)


def voice_stats(data: bytes, bundle_dir: str | Path) -> Any:
    """"Calibrate to my voice" (:func:`pipeline.serve.speaker.voice_stats`) of a visitor's
    recording, decoded in the worker process like every upload."""
    from pipeline.serve import isolation

    folders.check_bundle(bundle_dir)
    return worker().call(isolation.voice_stats_job, _request(data, str(bundle_dir), _stamp(bundle_dir), "bundle"))


@st.cache_resource(scope="session", on_release=lambda rec: rec.remove(), show_spinner=False)
def recording() -> Any:
    """This session's :class:`dashboard.recorder.RecordingFile` in the system's temporary
    folder (nothing is made on disk until the recorder starts). The page removes the
    file as soon as the take is read; the end of the session (Streamlit releases
    session-scoped resources when it disconnects) and of the server remove it too.
    Recordings of servers that were killed are pruned when a session first records."""
    import tempfile

    from dashboard.recorder import RecordingFile, prune_recordings

    folder = Path(tempfile.gettempdir())
    prune_recordings(folder)
    return RecordingFile(folder)


# --------------------------------------------------------------------------- results
@st.cache_data(max_entries=8, ttl=RESULTS_TTL, show_spinner=False)
def experiments(runs: str) -> list[str]:
    """Experiment folder names under the results store root (empty when absent)."""
    from pipeline.research import store

    if not Path(runs).is_dir():
        return []
    return [Path(e).name for e in store.list_experiments(runs)]


@st.cache_data(max_entries=16, ttl=RESULTS_TTL, show_spinner=False)
def summary(exp_dir: str) -> pd.DataFrame:
    """``store.summarise``: one row per (variant, protocol), metrics as fractions."""
    from pipeline.research import store

    return store.summarise(exp_dir)


@st.cache_data(max_entries=16, ttl=RESULTS_TTL, show_spinner=False)
def travel(exp_dir: str) -> pd.DataFrame:
    """``store.travel``: speaker-independent beside each held-out corpus, per variant."""
    from pipeline.research import store

    return store.travel(exp_dir)


@st.cache_data(max_entries=16, ttl=RESULTS_TTL, show_spinner=False)
def variants(exp_dir: str) -> list[str]:
    from pipeline.research import store

    return list(store.variants(exp_dir))


@st.cache_data(max_entries=32, ttl=RESULTS_TTL, show_spinner=False)
def metrics(exp_dir: str, variant: str) -> list[dict[str, Any]]:
    """Every fold's ``metrics.json`` of one variant."""
    from pipeline.research import store

    return list(store.load_metrics(exp_dir, variant))


@st.cache_data(max_entries=32, ttl=RESULTS_TTL, show_spinner=False)
def predictions(exp_dir: str, variant: str) -> pd.DataFrame:
    from pipeline.research import store

    return store.load_predictions(exp_dir, variant)


@st.cache_data(max_entries=32, ttl=RESULTS_TTL, show_spinner=False)
def history(exp_dir: str, variant: str) -> pd.DataFrame:
    """Per-epoch history of every fold (empty frame for scikit-learn models)."""
    from pipeline.research import store

    try:
        return store.load_history(exp_dir, variant)
    except FileNotFoundError:
        return pd.DataFrame()


def _resolved(path: Any) -> str:
    """An absolute, normalised folder name for comparisons ('' when none)."""
    if not path:
        return ""
    try:
        return str(Path(str(path)).expanduser().resolve())
    except (OSError, RuntimeError):
        return str(path)


def _training_data(bundle: dict[str, Any], runs: str) -> dict[str, dict[str, str]]:
    """Branch -> ``{"corpus", "root"}`` a bundle's models were trained on: from the
    ``config.yaml`` of the run each model was exported from (``models.<branch>.source``
    in ``bundle.json``, else ``<runs>/<experiment>/<variant>``); a branch whose run is
    not on disk keeps only the corpus name the bundle stores, if any."""
    import yaml

    from pipeline.serve.bundle import BundleError, read_meta

    path = str(bundle.get("path") or "")
    candidates = [Path(path)] if path else []
    if bundle.get("name"):
        candidates.append(paths.bundles_dir() / str(bundle["name"]))
        if bundle["name"] == paths.REAL_BUNDLE:
            candidates.append(paths.shipped_bundle())
    folder = next((c for c in candidates if (c / "bundle.json").is_file()), None)
    if folder is None:
        return {}
    try:
        models = read_meta(folder).get("models") or {}
    except (BundleError, OSError, ValueError):
        return {}
    out: dict[str, dict[str, str]] = {}
    for branch in ("audio", "video"):
        info = models.get(branch)
        if not isinstance(info, dict):
            continue
        source = Path(str(info.get("source") or ""))
        sources = [source] if info.get("source") else []
        if info.get("experiment") and info.get("source"):
            sources.append(Path(runs) / str(info["experiment"]) / source.name)
        corpus: dict[str, Any] = {}
        for run in sources:
            config = next((p for p in sorted(run.glob("*/config.yaml")) if not p.parent.name.startswith(".")), None)
            if config is None:
                continue
            try:
                corpus = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("corpus") or {}
            except (OSError, yaml.YAMLError, AttributeError):
                continue
            break
        stored = info.get("corpus")
        name = corpus.get("name") if isinstance(corpus, dict) else None
        name = name or (stored.get("name") if isinstance(stored, dict) else stored)
        root = corpus.get("root") if isinstance(corpus, dict) else None
        if name or root:
            out[branch] = {"corpus": str(name or ""), "root": _resolved(root)}
    return out


@st.cache_data(max_entries=8, ttl=RESULTS_TTL, show_spinner=False)
def evaluations(runs: str) -> list[dict[str, Any]]:
    """Every ``python -m pipeline evaluate`` run under ``<runs>/evaluate/``, one record
    each: ``run`` (its folder name), ``config`` (config.yaml), ``metrics``
    (metrics.json), ``root`` (the corpus folder, resolved) and ``training`` (what the
    bundle's models were trained on, see :func:`_training_data`). Unreadable runs are
    logged and left out."""
    import yaml

    from pipeline.research import store

    exp = Path(runs) / store.EVALUATE_EXPERIMENT
    records: list[dict[str, Any]] = []
    for variant in store.variants(exp):
        try:
            folds = store.folds(exp, variant)
            pairs = [(fold, m, store.load_config(exp, variant, fold))
                     for fold, m in zip(folds, store.load_metrics(exp, variant))]
        except (OSError, ValueError, yaml.YAMLError) as err:
            log.warning("evaluate run %s cannot be read: %s", variant, err)
            continue
        for fold, metrics_, config in pairs:
            corpus = config.get("corpus") if isinstance(config.get("corpus"), dict) else {}
            bundle = config.get("bundle") if isinstance(config.get("bundle"), dict) else {}
            records.append({"run": variant if len(pairs) == 1 else f"{variant}/{fold}",
                            "config": config, "metrics": metrics_, "root": _resolved(corpus.get("root")),
                            "training": _training_data(bundle, runs)})
    return records


@st.cache_data(max_entries=4, ttl=RESULTS_TTL, show_spinner=False)
def bundle_card_texts(bundle_dir: str) -> dict[str, str]:
    """Markdown model cards shipped in a bundle folder, file name -> text:
    ``MODEL_CARD.md`` first when present, then the other files ``bundle.json`` lists
    under ``cards`` (only files inside the bundle folder are read)."""
    from pipeline.serve.bundle import BundleError, read_meta

    folders.check_bundle(bundle_dir)
    folder = Path(bundle_dir)
    try:
        listed = read_meta(folder).get("cards") or []
    except (BundleError, OSError, ValueError):
        listed = []
    names = ["MODEL_CARD.md", *(str(n) for n in (listed if isinstance(listed, (list, dict)) else []))]
    out: dict[str, str] = {}
    for name in dict.fromkeys(Path(n).name for n in names):
        path = folder / name
        if not path.is_file():
            continue
        try:
            out[name] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            log.warning("model card %s cannot be read: %s", path, err)
    return out


# --------------------------------------------------------------------------- data
@st.cache_data(max_entries=4, ttl=300, show_spinner="Indexing the corpus...")
def manifest(kind: str, root: str) -> pd.DataFrame:
    """The corpus manifest (``pipeline.core.corpora.scan``); skipped files are logged."""
    from pipeline.core.corpora import scan

    folders.check_corpus(root)
    frame, scan_summary = scan(kind, root)
    if scan_summary.n_skipped:
        log.warning("%s: skipped %d files: %s", root, scan_summary.n_skipped, scan_summary.skipped)
    return frame


@st.cache_data(max_entries=64, show_spinner=False)
def file_bytes(path: str) -> bytes:
    """Raw bytes of a sample file for ``st.audio`` / ``st.video`` players (only files
    inside a configured corpus)."""
    folders.check_corpus_file(path)
    return Path(path).read_bytes()
