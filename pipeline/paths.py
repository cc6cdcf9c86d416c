"""Default locations, all relative to the working directory and overridable by
environment variables, so nothing is hard-coded to one machine."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Feature cache root (``AVE_CACHE``, default ``./cache``)."""
    return Path(os.environ.get("AVE_CACHE", "cache"))


def runs_dir() -> Path:
    """Results store root (``AVE_RUNS``, default ``./runs``)."""
    return Path(os.environ.get("AVE_RUNS", "runs"))


def bundles_dir() -> Path:
    """Where bundles are exported (``AVE_BUNDLES``, default ``./bundles``)."""
    return Path(os.environ.get("AVE_BUNDLES", "bundles"))


def default_bundle() -> Path:
    """The bundle ``predict`` and the dashboard use when none is named
    (``AVE_BUNDLE``, default ``./bundles/demo``)."""
    return Path(os.environ.get("AVE_BUNDLE", str(bundles_dir() / "demo")))


def data_dir() -> Path:
    """Where corpora live by default (``AVE_DATA``, default ``./data``)."""
    return Path(os.environ.get("AVE_DATA", "data"))
