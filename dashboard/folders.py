"""The folders a visitor may pick: only those the operator configured, named by labels.

A bundle folder is loaded with ``joblib`` (pickle: code execution for whoever placed the
folder), a corpus folder is scanned recursively and its files are played to the
visitor, so the sidebar never takes a typed server path from a visitor. It offers:

- results: the user's runs (``AVE_RUNS``, default ``runs/``) and the committed record;
- bundles: every folder with a ``bundle.json`` under ``AVE_BUNDLES`` (default
  ``bundles/``) and the repository's ``bundles/``, and ``AVE_BUNDLE`` when set;
- corpora: every folder under ``AVE_DATA`` (default ``data/``), the default
  ``data/synthetic``, and the folders ``AVE_CORPORA`` names (separated by ``:``
  (``os.pathsep``), each ``label=folder`` or a folder, labelled by its name).

``AVE_FREE_PATHS=1`` (the operator's choice, for a machine only they use) adds a typed
folder to each list. Visitors see labels, never paths: :func:`scrub` replaces the
configured folders in messages by their labels. :func:`check_bundle` and
:func:`check_corpus_file` refuse anything else before it is loaded or read.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from pipeline.core import paths

FREE_PATHS_VAR = "AVE_FREE_PATHS"
CORPORA_VAR = "AVE_CORPORA"
#: The sidebar's extra entry, offered only when free paths are on.
OTHER = "another folder (typed)..."


class FolderRefused(ValueError):
    """A folder or file outside those the operator configured."""


def free_paths(environ: Mapping[str, str] | None = None) -> bool:
    """Whether typed folders are allowed (``AVE_FREE_PATHS`` set to 1, true or yes)."""
    raw = (os.environ if environ is None else environ).get(FREE_PATHS_VAR, "")
    return raw.strip().lower() in ("1", "true", "yes")


def _key(path: str | os.PathLike[str]) -> str:
    try:
        return str(Path(path).expanduser().resolve())
    except (OSError, RuntimeError):
        return str(path)


def _add(found: dict[str, Path], label: str, path: Path) -> None:
    """Add ``path`` under ``label`` unless the same folder is listed already; a label
    taken by another folder gets a number."""
    if any(_key(p) == _key(path) for p in found.values()):
        return
    name, n = label, 2
    while name in found:
        name, n = f"{label} ({n})", n + 1
    found[name] = path


def _subfolders(root: Path) -> list[Path]:
    try:
        return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def results_choices() -> dict[str, Path]:
    """Label -> results folder: :func:`pipeline.core.paths.results_choices`."""
    return dict(paths.results_choices())


def bundle_choices() -> dict[str, Path]:
    """Label -> bundle folder: the real and demo bundles, every other bundle folder
    under the bundles folders, and the configured default (``AVE_BUNDLE``, listed even
    before it exists, so the pages can say that it does not yet)."""
    found: dict[str, Path] = {}
    for label, path in paths.bundle_choices().items():
        _add(found, label, path)
    for root in (paths.bundles_dir(), paths.shipped_bundle().parent):
        for folder in _subfolders(root):
            if (folder / "bundle.json").is_file():
                _add(found, paths.bundle_label(folder), folder)
    default = paths.default_bundle()
    _add(found, paths.bundle_label(default), default)
    return found


def corpus_choices(environ: Mapping[str, str] | None = None) -> dict[str, Path]:
    """Label -> corpus folder: the default ``<data>/synthetic`` (listed even before
    ``make demo`` makes it), every folder under ``<data>``, then ``AVE_CORPORA``."""
    environ = os.environ if environ is None else environ
    found: dict[str, Path] = {}
    data = paths.data_dir()
    _add(found, "synthetic", data / "synthetic")
    for folder in _subfolders(data):
        _add(found, folder.name, folder)
    for entry in environ.get(CORPORA_VAR, "").split(os.pathsep):
        entry = entry.strip()
        if not entry:
            continue
        label, sep, folder = entry.partition("=")
        path = Path(folder.strip() if sep else entry)
        _add(found, label.strip() if sep and label.strip() else path.name or str(path), path)
    return found


def label_of(path: str | os.PathLike[str], choices: Mapping[str, Path], fallback: str = "") -> str:
    """The label of ``path`` among ``choices``; ``fallback`` (else the folder's name) when
    it is not one of them (a typed folder)."""
    key = _key(path)
    for label, folder in choices.items():
        if _key(folder) == key:
            return label
    return fallback or Path(path).name


def _allowed(path: str | os.PathLike[str], choices: Mapping[str, Path]) -> bool:
    return free_paths() or any(_key(folder) == _key(path) for folder in choices.values())


def check_bundle(path: str | os.PathLike[str]) -> None:
    """Raise :class:`pipeline.serve.bundle.BundleError` unless ``path`` is a configured
    bundle folder (or free paths are on): nothing else is ever unpickled."""
    if not _allowed(path, bundle_choices()):
        from pipeline.serve.bundle import BundleError

        raise BundleError("this bundle folder is not one the operator configured; choose one in the sidebar")


def check_corpus(root: str | os.PathLike[str]) -> None:
    """Raise :class:`FolderRefused` unless ``root`` is a configured corpus folder."""
    if not _allowed(root, corpus_choices()):
        raise FolderRefused("this corpus folder is not one the operator configured; choose one in the sidebar")


def check_corpus_file(path: str | os.PathLike[str]) -> None:
    """Raise :class:`FolderRefused` unless ``path`` lies inside a configured corpus folder."""
    if free_paths():
        return
    key = Path(_key(path))
    if not any(key.is_relative_to(_key(root)) for root in corpus_choices().values()):
        raise FolderRefused("this file is not in a corpus the operator configured")


def scrub(message: Any) -> str:
    """``message`` with every configured folder (as configured and resolved) replaced by
    its label in angle quotes, and the repository's own folder by ``.``: errors from
    the pipeline name the folders they read; visitors see which one, not where."""
    text = str(message)
    names: dict[str, str] = {}
    for choices in (results_choices(), bundle_choices(), corpus_choices()):
        for label, folder in choices.items():
            for form in (str(folder), _key(folder)):
                if os.sep in form:  # "runs" alone would rename every word "runs"
                    names.setdefault(form, f"«{label}»")
    names.setdefault(str(Path(__file__).resolve().parents[1]), ".")
    for form in sorted(names, key=len, reverse=True):
        text = text.replace(form, names[form])
    return text


def results_name(path: str | os.PathLike[str]) -> str:
    """How a results folder is named to visitors (its label)."""
    return label_of(path, results_choices())


def bundle_name(path: str | os.PathLike[str]) -> str:
    """How a bundle folder is named to visitors (its label)."""
    return label_of(path, bundle_choices())


def corpus_name(path: str | os.PathLike[str]) -> str:
    """How a corpus folder is named to visitors (its label)."""
    return label_of(path, corpus_choices())
