"""Analyse untrusted files in a worker process, so a native crash ends the worker, not the server.

Decoding runs native code (FFmpeg through PyAV, OpenCV, TensorFlow) on bytes a visitor
chose. A fault there (a segmentation fault, an ``abort()``) ends the process it happens
in; inside the dashboard's server that is every user's session. :class:`Worker` runs
each job in one long-lived child process started with the ``spawn`` method (no fork of
a multi-threaded server), loads a bundle there once and keeps it for later jobs. When
the child dies while running a job, or overruns the time limit and is killed, only
that job's caller gets :class:`WorkerCrashed` (with the signal's name); jobs run one at
a time, so the next one starts a fresh child, loads the models again, and answers.

Jobs are plain module-level functions and picklable arguments (the child imports them
by name). :func:`analyze_job` and :func:`voice_stats_job` are the dashboard's:
:func:`pipeline.serve.inference.analyze` and :func:`pipeline.serve.speaker.voice_stats`
with a bundle loaded in the child (:class:`AnalysisRequest`).

Method: the same isolation as a process pool whose worker is replaced after a crash
(:class:`concurrent.futures.ProcessPoolExecutor` marks its whole pool broken and fails
every queued job instead, and cannot kill a job that overruns).
"""
from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import signal
import threading
import time
import weakref
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable, NoReturn

from pipeline.core import settings

log = logging.getLogger(__name__)

#: Default of the time limit of one job (seconds; ``AVE_ANALYZE_TIMEOUT`` sets it): a
#: 300 s clip (the length cap) takes about a minute on 2 cores, loading the models ~10 s.
DEFAULT_TIMEOUT_S: float = 600.0
#: How often the caller checks that the child is still alive while it waits (seconds).
POLL_S: float = 0.2


def timeout_setting(environ: Any = None) -> float:
    """The time limit of one job in seconds: ``AVE_ANALYZE_TIMEOUT`` when set to a
    positive number, else :data:`DEFAULT_TIMEOUT_S`."""
    return settings.positive_seconds("AVE_ANALYZE_TIMEOUT", DEFAULT_TIMEOUT_S, environ)


class WorkerCrashed(RuntimeError):
    """The worker process ended while running a job: killed by a signal (``signal_name``,
    e.g. ``SIGSEGV``, ``SIGABRT``; ``SIGKILL`` also when the system ran out of memory),
    exited, or overran its time limit (``timed_out``) and was killed."""

    def __init__(self, message: str, *, signal_name: str = "", exit_code: int | None = None,
                 timed_out: bool = False) -> None:
        super().__init__(message)
        self.signal_name = signal_name
        self.exit_code = exit_code
        self.timed_out = timed_out


class WorkerBusy(RuntimeError):
    """The worker stayed on other jobs for longer than this job's time limit, so this one
    was not started (nothing is wrong with its input: try again later)."""


def describe_exit(exit_code: int | None) -> tuple[str, str]:
    """``(how, signal name)`` of a child's exit code: a negative code is the signal that
    ended it (``multiprocessing.Process.exitcode``)."""
    if exit_code is None:
        return "stopped", ""
    if exit_code < 0:
        try:
            name = signal.Signals(-exit_code).name
        except ValueError:
            name = f"signal {-exit_code}"
        return f"was killed by {name}", name
    return f"exited with code {exit_code}", ""


def _serve(conn: Connection) -> None:
    """The child's loop: receive ``(fn, args, kwargs)``, send back ``("ok", result)`` or
    ``("error", exception)``; ``None`` ends it."""
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        fn, args, kwargs = job
        try:
            reply: tuple[str, Any] = ("ok", fn(*args, **kwargs))
        except Exception as err:  # every job error goes back to the caller, as it is
            reply = ("error", err)
        try:
            conn.send(reply)
        except Exception as err:  # an unpicklable result or exception: say what it was
            conn.send(("error", RuntimeError(f"the worker's answer cannot be sent back "
                                             f"({type(err).__name__}: {err}); the job said "
                                             f"{type(reply[1]).__name__}")))


def _stop(process: Any, conn: Any) -> None:
    """End a child: ask, then terminate, then kill (used by close and at exit)."""
    try:
        if conn is not None:
            conn.send(None)
    except (OSError, ValueError):
        pass
    if process is not None and process.is_alive():
        process.join(1.0)
        if process.is_alive():
            process.terminate()
            process.join(2.0)
        if process.is_alive():
            process.kill()
            process.join(2.0)
    if conn is not None:
        conn.close()


class Worker:
    """One child process that runs jobs one at a time (thread-safe: callers queue).

    ``timeout_s``: the default limit of one job (None: :func:`timeout_setting`).
    The child is started on the first :meth:`call` and again after a crash; it is a
    daemon process (ended with the parent) and :meth:`close` ends it at once.
    """

    def __init__(self, *, timeout_s: float | None = None, start_method: str = "spawn") -> None:
        self.timeout_s = timeout_setting() if timeout_s is None else float(timeout_s)
        self._context = multiprocessing.get_context(start_method)
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Connection | None = None
        self._finalizer: Any = None
        self.starts = 0

    @property
    def busy(self) -> bool:
        """True while a job runs (a :meth:`call` now would wait for it first)."""
        return self._lock.locked()

    @property
    def pid(self) -> int | None:
        """The child's process id (None when none is running)."""
        return self._process.pid if self._process is not None and self._process.is_alive() else None

    def _start(self) -> None:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(child,), name="ave-analysis-worker", daemon=True)
        process.start()
        child.close()
        self._process, self._conn = process, parent
        self._finalizer = weakref.finalize(self, _stop, process, parent)
        self.starts += 1
        log.info("analysis worker started (pid %s)", process.pid)

    def _discard(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # stops the child and closes the pipe, once
        self._process = self._conn = self._finalizer = None

    def call(self, fn: Callable[..., Any], *args: Any, timeout_s: float | None = None, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` in the child; its result, or the exception it raised.

        Raises :class:`WorkerCrashed` when the child dies during the job or overruns
        ``timeout_s`` (default :attr:`timeout_s`); the child is then replaced for the
        next call. Jobs run one at a time: a call waits at most the same limit for the
        jobs before it, else raises :class:`WorkerBusy`. ``fn`` must be importable by
        name, its arguments and result picklable.
        """
        limit = self.timeout_s if timeout_s is None else float(timeout_s)
        if not self._lock.acquire(timeout=limit):
            raise WorkerBusy(f"the analysis worker was busy with other files for {limit:g} s")
        try:
            return self._run(fn, args, kwargs, limit)
        finally:
            self._lock.release()

    def _run(self, fn: Callable[..., Any], args: tuple, kwargs: dict[str, Any], limit: float) -> Any:
        """One job, with the lock held (:meth:`call`)."""
        if self._process is None or not self._process.is_alive():
            self._discard()
            self._start()
        assert self._conn is not None and self._process is not None
        conn, process = self._conn, self._process
        try:
            conn.send((fn, args, kwargs))
        except (BrokenPipeError, ConnectionResetError, EOFError):
            process.join(1.0)
            return self._crashed(process.exitcode, timed_out=False)
        deadline = time.monotonic() + limit
        while not conn.poll(POLL_S):
            if not process.is_alive():
                if conn.poll(0):  # it answered just before it ended
                    break
                return self._crashed(process.exitcode, timed_out=False)
            if time.monotonic() > deadline:
                process.kill()
                process.join(5.0)
                return self._crashed(process.exitcode, timed_out=True, limit=limit)
        try:
            status, value = conn.recv()
        except (EOFError, OSError):
            process.join(5.0)
            return self._crashed(process.exitcode, timed_out=False)
        if status == "ok":
            return value
        raise value

    def _crashed(self, exit_code: int | None, *, timed_out: bool, limit: float = 0.0) -> NoReturn:
        self._discard()
        how, name = describe_exit(exit_code)
        if timed_out:
            message = f"the analysis took longer than {limit:g} s and was stopped"
        else:
            message = f"the analysis worker {how} while working on this file"
        log.warning("%s (exit code %s)", message, exit_code)
        raise WorkerCrashed(message, signal_name="" if timed_out else name, exit_code=exit_code,
                            timed_out=timed_out)

    def close(self) -> None:
        """End the child (a later :meth:`call` starts a new one)."""
        with self._lock:
            self._discard()


# --------------------------------------------------------------------------- the jobs
@dataclass(frozen=True)
class AnalysisRequest:
    """What the child needs to analyse one clip: ``source`` (the file's bytes, or a path
    the operator's corpus holds), the bundle folder and its modification time (a
    re-exported bundle is loaded again), the face finder (``bundle``: the bundle's own;
    ``haar``: OpenCV's cascade), an OpenFace landmark CSV and the speaker's calibration
    (:class:`pipeline.core.calibration.SpeakerStats`), as for
    :func:`pipeline.serve.inference.analyze`."""

    source: bytes | str
    bundle_dir: str
    bundle_stamp: float = 0.0
    detector: str = "bundle"
    landmarks_path: str = ""
    calibration: Any = None


def bundle_stamp(bundle_dir: str | os.PathLike[str]) -> float:
    """The folder's modification time (0 when absent)."""
    try:
        return os.stat(bundle_dir).st_mtime
    except OSError:
        return 0.0


@functools.lru_cache(maxsize=2)
def _loaded_bundle(bundle_dir: str, stamp: float) -> Any:
    """The child's loaded bundles (two at most: the real one and the demo)."""
    from pipeline.core.native import load_before_tensorflow
    from pipeline.serve.bundle import load_bundle

    load_before_tensorflow()  # before TensorFlow, as in every process that loads models
    return load_bundle(bundle_dir)


def detector(name: str) -> Any:
    """The face finder named ``name``: ``haar``, OpenCV's cascade (a fresh one, cheap to
    build); anything else None, the bundle's own (MTCNN unless ``AVE_DETECTOR`` says
    otherwise)."""
    if name == "haar":
        from pipeline.core.faces import HaarDetector

        return HaarDetector()
    return None


def analyze_job(request: AnalysisRequest) -> Any:
    """:func:`pipeline.serve.inference.analyze` of ``request`` with the bundle loaded in
    this process (the child's side of :meth:`Worker.call`). Raises what ``analyze`` and
    ``load_bundle`` raise (``MediaError``, ``BundleError``, ``ValueError``)."""
    from pipeline.serve.inference import analyze

    bundle = _loaded_bundle(str(Path(request.bundle_dir)), request.bundle_stamp)
    return analyze(request.source, bundle, detector(request.detector),
                   landmarks_path=request.landmarks_path or None, calibration=request.calibration)


def voice_stats_job(request: AnalysisRequest) -> Any:
    """:func:`pipeline.serve.speaker.voice_stats` of ``request.source`` ("calibrate to my
    voice") with the bundle loaded in this process."""
    from pipeline.serve.speaker import voice_stats

    return voice_stats(request.source, _loaded_bundle(str(Path(request.bundle_dir)), request.bundle_stamp))
