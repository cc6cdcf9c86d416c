"""Shared test setup: quiet TensorFlow, bounded threads, optional real-data folder."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# pylibsrtp (under streamlit-webrtc) segfaults on import once TensorFlow is loaded; the
# UI tests import it after model tests loaded TensorFlow, so load it first, as the app does.
try:
    import pylibsrtp  # noqa: F401,E402
except ImportError:  # the dashboard's WebRTC extra is optional for the pipeline's tests
    pass


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real RAVDESS samples folder named by AVE_SHARED_DATA (test skipped if unset)."""
    root = os.environ.get("AVE_SHARED_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("AVE_SHARED_DATA is not set to the shared real-data folder")
    return Path(root)
