"""Shared test setup: quiet TensorFlow, bounded threads, optional real-data folder."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# openSMILE and pylibsrtp (streamlit-webrtc) crash when loaded after TensorFlow; tests
# run in one process in any order, so load them first, as the app and the CLI do.
from pipeline.core.native import load_before_tensorflow  # noqa: E402

load_before_tensorflow()


def pytest_configure(config: pytest.Config) -> None:
    """With test workers (pytest-xdist, ``make test``), the controller compiles
    librosa's numba kernels once before the workers start: workers compiling the same
    kernel at once can write a mismatched on-disk cache that segfaults the next one
    (:func:`pipeline.core.audio.warm_up`; seen on a fresh environment)."""
    if not hasattr(config, "workerinput") and config.pluginmanager.hasplugin("xdist") \
            and config.getoption("numprocesses", None):
        from pipeline.core.audio import warm_up

        warm_up()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real RAVDESS samples folder named by AVE_SHARED_DATA (test skipped if unset)."""
    root = os.environ.get("AVE_SHARED_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("AVE_SHARED_DATA is not set to the shared real-data folder")
    return Path(root)
