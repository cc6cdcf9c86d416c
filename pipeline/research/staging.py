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


@contextmanager
def staged_dir(target: str | os.PathLike[str], prefix: str) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target`` (named ``<prefix>XXXX``).

    When the block finishes, ``target`` (if any) is replaced by it with ``os.replace``;
    when the block raises, the temporary folder is removed and ``target`` is untouched.
    """
    target = Path(target)
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
