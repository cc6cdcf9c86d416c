"""Native libraries that must be loaded before TensorFlow's.

TensorFlow's wheel bundles its own copies of common C libraries. Loaded after it,
openSMILE's ``libSMILEapi`` corrupts the heap (``malloc(): invalid size``) and
pylibsrtp (under streamlit-webrtc) segfaults on import; loaded before it, both work.
Every place that imports TensorFlow/Keras calls :func:`load_before_tensorflow` first.
"""
from __future__ import annotations

import importlib
import logging
import sys

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
