"""What a visitor reads when the pipeline could not answer their file: one mapping from the
errors an analysis raises to a short title (a status label) and a sentence that names the
file and says what to do, shared by the pages that analyse a visitor's file (Analyze,
Compare, the calm-voice calibration), so the same failure reads the same everywhere.

Messages are safe to render as Markdown (names and error texts pass through
:func:`dashboard.text.plain`; server folders are scrubbed by :func:`dashboard.folders.scrub`).
"""
from __future__ import annotations

from dataclasses import dataclass

from dashboard import folders, text


@dataclass(frozen=True)
class Failure:
    """``title``: a few words for a status label; ``message``: the sentence shown."""

    title: str
    message: str


def kinds() -> tuple[type[BaseException], ...]:
    """The exception types :func:`explain` words (catch these around an analysis; let the
    rest surface as the bugs they are)."""
    from pipeline.core.media import MediaError
    from pipeline.serve.bundle import BundleError
    from pipeline.serve.isolation import WorkerBusy, WorkerCrashed

    return MediaError, BundleError, WorkerCrashed, WorkerBusy, folders.FolderRefused, ValueError


def crash_words(name: str, err: BaseException) -> str:
    """When the visitor's file ended the worker process (``name`` already escaped): what
    happened, that nothing else was affected, what to try."""
    if getattr(err, "timed_out", False):
        return (f"{name}: {err}. Try a shorter clip, or trim this one; the next file is analysed "
                "as usual.")
    how = f" ({err.signal_name})" if getattr(err, "signal_name", "") else ""
    return (f"{name}: decoding this file crashed the analysis process{how}. Only this file was "
            "affected: the app keeps running and the next file is analysed by a fresh process "
            "(the first one loads the models again, a few seconds). Try converting the file, "
            "for example to a mono WAV or an H.264 MP4.")


def explain(err: BaseException, name: str) -> Failure:
    """The :class:`Failure` for ``err`` (one of :func:`kinds`), raised while analysing the
    visitor's file ``name`` (their own text: escaped here)."""
    from pipeline.core import media
    from pipeline.serve.bundle import BundleError
    from pipeline.serve.isolation import WorkerBusy, WorkerCrashed

    shown = text.plain(name)
    if isinstance(err, media.MediaError):
        return Failure("This file cannot be analysed",
                       f"{text.plain(folders.scrub(text.refusal(err, name)))}. "
                       f"Try another file: {media.accepted_text()}.")
    if isinstance(err, BundleError):
        return Failure("The models cannot be loaded", text.plain(folders.scrub(err)))
    if isinstance(err, WorkerCrashed):
        return Failure("This file stopped the analysis", crash_words(shown, err))
    if isinstance(err, WorkerBusy):
        return Failure("The server is busy", text.busy_words(shown))
    if isinstance(err, folders.FolderRefused):
        return Failure("This file cannot be analysed", text.plain(err))
    first = str(err).splitlines()[0] if str(err) else ""
    return Failure("This clip cannot be analysed", f"{shown}: {text.plain(first) if first else 'bad input'}")
