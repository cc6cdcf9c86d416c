"""Write a folder atomically: fill a temporary sibling, then rename it into place.

Readers (the dashboard, a resumed run, ``predict``) never see half a results fold or
half a bundle: either the old folder or the new one. Used by the results store, the
bundle writer and the fusion runs' fold copies.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class NotReplaceable(FileExistsError):
    """The target exists but is not a folder this writer made: it is never deleted."""


def check_replaceable(target: str | os.PathLike[str], marker: str | tuple[str, ...]) -> None:
    """Raise :class:`NotReplaceable` unless ``target`` is absent, an empty folder, or a
    folder holding ``marker`` (a file every folder of this kind holds, e.g.
    ``bundle.json``; any of several names when a tuple) that is neither the working
    directory nor one of its parents.

    What a writer replaces it first deletes: a mistyped ``--out`` (``.``, ``runs``, a
    folder of notes) must be refused, not emptied."""
    target = Path(target)
    if not target.exists() and not target.is_symlink():
        return
    if not target.is_dir() or target.is_symlink():
        raise NotReplaceable(f"{target} exists and is not a folder; choose another output path")
    here = Path.cwd().resolve()
    resolved = target.resolve()
    if resolved == here or resolved in here.parents:
        raise NotReplaceable(f"{target} is the working folder or holds it; choose an output folder inside it")
    markers = (marker,) if isinstance(marker, str) else tuple(marker)
    if any(target.iterdir()) and not any((target / m).is_file() for m in markers):
        raise NotReplaceable(f"{target} exists and holds other files (no {' or '.join(markers)}): it would be "
                             "replaced; choose a new or empty folder")


@contextmanager
def staged_dir(target: str | os.PathLike[str], prefix: str, *, marker: str | tuple[str, ...]) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target`` (named ``<prefix>XXXX``).

    When the block finishes, ``target`` (if any) is replaced by it with ``os.replace``;
    when the block raises, the temporary folder is removed and ``target`` is untouched.
    An existing ``target`` must be one this kind of writer made (:func:`check_replaceable`
    with ``marker``), checked before anything is written.

    Raises :class:`NotReplaceable` for any other existing target.
    """
    target = Path(target)
    check_replaceable(target, marker)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=prefix))
    try:
        yield tmp
        if target.exists():  # an older or unfinished version
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
