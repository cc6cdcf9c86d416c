"""Native libraries that must be loaded before TensorFlow's.

TensorFlow's wheel bundles its own copies of common C libraries. Loaded after it,
openSMILE's ``libSMILEapi`` corrupts the heap (``malloc(): invalid size``) and
pylibsrtp (under streamlit-webrtc) segfaults on import; loaded before it, both work.
Every place that imports TensorFlow/Keras calls :func:`load_tensorflow` first (the
worker process of the dashboard calls :func:`load_before_tensorflow` when it starts).
"""
from __future__ import annotations

import importlib
import logging
import os
import sys
import tempfile
from contextlib import contextmanager
from typing import Iterator

log = logging.getLogger(__name__)

#: Modules whose native libraries clash with TensorFlow's when loaded after it.
PRELOAD: tuple[str, ...] = ("opensmile", "pylibsrtp")


def load_before_tensorflow() -> None:
    """Import :data:`PRELOAD` modules if installed (idempotent; cheap after the first call)."""
    missing = [name for name in PRELOAD if name not in sys.modules]
    if not missing:
        return
    if "tensorflow" in sys.modules:
        log.debug("TensorFlow already loaded; %s may be unstable if imported now", ", ".join(missing))
        return
    for name in missing:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


#: What TensorFlow's C++ code prints while it is imported, before its log level
#: (``TF_CPP_MIN_LOG_LEVEL``) applies: information, not warnings (oneDNN, CPU features).
IMPORT_NOTICES: tuple[str, ...] = ("All log messages before absl::InitializeLog()", "oneDNN custom operations are on",
                                   "This TensorFlow binary is optimized", "To enable the following instructions")


@contextmanager
def notices_off_stderr(notices: tuple[str, ...] = IMPORT_NOTICES) -> Iterator[None]:
    """Hold back the lines of file descriptor 2 that hold one of ``notices`` while the
    block runs: native code writes past Python's ``sys.stderr``, so fd 2 goes to a
    temporary file, and every other line (another thread's warning, an error) is
    written back to stderr when the block ends, in order."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real fd 2 (some notebook hosts)
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = held.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines() if line.strip() and not any(n in line for n in notices)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
                sys.stderr.flush()


def load_tensorflow() -> None:
    """:func:`load_before_tensorflow`, then TensorFlow itself with its start-up notices
    kept off stderr (:func:`notices_off_stderr`), so the CLI's one-line messages are
    not buried. Idempotent; raises ImportError when TensorFlow is missing."""
    load_before_tensorflow()
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with notices_off_stderr():
        importlib.import_module("tensorflow")
