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


def record_dir() -> Path:
    """The committed record: the runs and evaluations that the README, the model cards and
    the Results page cite for ``bundles/real`` (``record/`` beside the package). No command
    writes here unless told so with an explicit ``--out``; users' runs go to :func:`runs_dir`."""
    return Path(__file__).resolve().parents[2] / "record"


#: How the results folders are named to people (the dashboard shows labels, not paths).
RECORD_LABEL = "committed record (how bundles/real was measured)"
RUNS_LABEL = "your runs"


def results_choices() -> dict[str, Path]:
    """Results folders a person can pick, label -> folder: the user's runs, then the
    committed record (each listed even when empty)."""
    return {RUNS_LABEL: runs_dir(), RECORD_LABEL: record_dir()}


def bundles_dir() -> Path:
    """Where bundles are exported (``AVE_BUNDLES``, default ``./bundles``)."""
    return Path(os.environ.get("AVE_BUNDLES", "bundles"))


#: Name of the shipped bundle trained on real people (committed under ``bundles/``).
REAL_BUNDLE = "real"
#: Name of the synthetic method-demo bundle that ``make demo`` exports.
DEMO_BUNDLE = "demo"


def shipped_bundle() -> Path:
    """The repository's committed ``bundles/real`` (beside the package, so it is found
    whatever the working directory)."""
    return Path(__file__).resolve().parents[2] / "bundles" / REAL_BUNDLE


def default_bundle() -> Path:
    """The bundle ``predict``, Analyze and Live use when none is named.

    ``AVE_BUNDLE`` when set; else the real bundle (``<bundles>/real``, else the
    repository's committed one); else the synthetic demo bundle ``<bundles>/demo``.
    """
    if os.environ.get("AVE_BUNDLE"):
        return Path(os.environ["AVE_BUNDLE"])
    for candidate in (bundles_dir() / REAL_BUNDLE, shipped_bundle()):
        if (candidate / "bundle.json").is_file():
            return candidate
    return bundles_dir() / DEMO_BUNDLE


#: How each known bundle is named to people (sidebar, answers, CLI).
BUNDLE_LABELS: dict[str, str] = {
    REAL_BUNDLE: "real (trained on real people: RAVDESS and TESS voices, FER2013 faces)",
    DEMO_BUNDLE: "demo (synthetic: shows the method, not real people)",
}


def bundle_choices() -> dict[str, Path]:
    """Bundles a person can pick, label -> folder: the real one first, then the demo,
    each only when its ``bundle.json`` exists."""
    found: dict[str, Path] = {}
    real = next((c for c in (bundles_dir() / REAL_BUNDLE, shipped_bundle()) if (c / "bundle.json").is_file()), None)
    if real is not None:
        found[BUNDLE_LABELS[REAL_BUNDLE]] = real
    if (demo_bundle() / "bundle.json").is_file():
        found[BUNDLE_LABELS[DEMO_BUNDLE]] = demo_bundle()
    return found


def bundle_label(path: str | os.PathLike[str]) -> str:
    """A person's name for a bundle folder: the known labels, else the folder name."""
    return BUNDLE_LABELS.get(Path(path).name, Path(path).name)


def demo_bundle() -> Path:
    """Where ``make demo`` exports the synthetic method demo (``<bundles>/demo``)."""
    return bundles_dir() / DEMO_BUNDLE


def data_dir() -> Path:
    """Where corpora live by default (``AVE_DATA``, default ``./data``)."""
    return Path(os.environ.get("AVE_DATA", "data"))


def safe_name(name: str, what: str = "a name") -> str:
    """``name`` when it can be one folder's name under a results root: not empty, no
    path separator, not ``.`` or ``..``, no control character. Experiment, variant and
    tag names become folders; one holding ``../`` or starting with ``/`` would write
    outside ``--out``. Raises ``ValueError`` naming ``what`` otherwise."""
    text = str(name)
    if (not text.strip() or text in (".", "..") or "/" in text or "\\" in text or os.sep in text
            or not text.isprintable()):
        raise ValueError(f"{what} {text!r} cannot be a folder name: use letters, digits, '-', '_', '.' or '+' "
                         "(no '/', no '..')")
    return text
