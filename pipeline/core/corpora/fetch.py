"""Explicit download of the real RAVDESS archives: the only code that uses the network.

``python -m pipeline fetch ravdess --dest DIR [--part audio_speech ...]`` downloads
the official Zenodo archives into ``DIR/.fetch/``, resumes an interrupted download
with an HTTP Range request on its ``.part`` file, checks the size and MD5 where they
are known, rejects (and deletes) a corrupt zip, unpacks with path-traversal checks
into ``DIR`` and leaves a marker so a rerun skips finished archives. ``DIR`` can then
be indexed directly: ``python -m pipeline index --corpus ravdess --root DIR``.

Nothing else in the project downloads anything, and nothing here runs on import.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Sequence
from urllib.error import HTTPError
from urllib.request import Request, urlopen

log = logging.getLogger(__name__)

STATE_DIR = ".fetch"
"""Hidden folder under ``dest`` for archives, ``.part`` files and done-markers
(hidden folders are ignored by the corpus scanners)."""
CHUNK = 1 << 20
USER_AGENT = "avemotion-fetch/0.1 (+https://zenodo.org/records/1188976)"

RAVDESS_RECORD = "https://zenodo.org/records/1188976/files"  # 10.5281/zenodo.1188976
LANDMARK_RECORD = "https://zenodo.org/records/3255102/files"  # 10.5281/zenodo.3255102
NO_SONG_ACTORS: tuple[int, ...] = (18,)

# --------------------------------------------------------------------------------
# ARCHIVE TABLE: file name -> (size in bytes, md5), None where not confirmed.
# Names follow the two Zenodo records above. The sizes and MD5s below come from
# public scripts that pin the official files (not re-checked against Zenodo from
# here: the build machine has no network). Correct them here if Zenodo disagrees;
# an unknown value is simply not checked (the HTTP length still is, and every zip is
# tested before unpacking).
# --------------------------------------------------------------------------------
KNOWN_CHECKSUMS: dict[str, tuple[int | None, str | None]] = {
    "Audio_Speech_Actors_01-24.zip": (208_468_073, "bc696df654c87fed845eb13823edef8a"),
    "Audio_Song_Actors_01-24.zip": (225_505_317, "5411230427d67a21e18aa4d466e6d1b9"),
    "FacialTracking_Actors_01-24.zip": (417_163_019, "5753bbc64a9a790f8a8d3e03cba526ee"),
    # Video_Speech_Actor_NN.zip / Video_Song_Actor_NN.zip: not confirmed (None, None).
}


class FetchError(ValueError):
    """A download or unpack that cannot finish; the message says what to do."""


@dataclass(frozen=True)
class Archive:
    """One downloadable archive: ``part`` is its name for ``--part``."""

    part: str
    filename: str
    url: str
    size: int | None = None
    md5: str | None = None
    groups: tuple[str, ...] = ()


def _archive(part: str, filename: str, record: str, groups: tuple[str, ...]) -> Archive:
    size, md5 = KNOWN_CHECKSUMS.get(filename, (None, None))
    return Archive(part, filename, f"{record}/{filename}?download=1", size, md5, groups)


def ravdess_archives() -> list[Archive]:
    """Every official RAVDESS archive: audio speech/song, per-actor video, landmarks."""
    archives = [
        _archive("audio_speech", "Audio_Speech_Actors_01-24.zip", RAVDESS_RECORD, ("audio", "speech")),
        _archive("audio_song", "Audio_Song_Actors_01-24.zip", RAVDESS_RECORD, ("audio", "song")),
    ]
    for actor in range(1, 25):
        archives.append(_archive(f"video_speech_{actor:02d}", f"Video_Speech_Actor_{actor:02d}.zip",
                                 RAVDESS_RECORD, ("video", "video_speech", "speech")))
    for actor in range(1, 25):
        if actor in NO_SONG_ACTORS:
            continue
        archives.append(_archive(f"video_song_{actor:02d}", f"Video_Song_Actor_{actor:02d}.zip",
                                 RAVDESS_RECORD, ("video", "video_song", "song")))
    archives.append(_archive("landmarks", "FacialTracking_Actors_01-24.zip", LANDMARK_RECORD,
                             ("landmarks",)))
    return archives


CATALOGS: dict[str, Callable[[], list[Archive]]] = {"ravdess": ravdess_archives}


def select(archives: Sequence[Archive], parts: Iterable[str] | None) -> list[Archive]:
    """The archives named by ``parts`` (part names, file names or groups such as
    ``audio``, ``video``, ``video_speech``, ``song``, ``landmarks``, ``all``);
    all of them when ``parts`` is None. Unknown names raise ``ValueError``."""
    if not parts:
        return list(archives)
    chosen: dict[str, Archive] = {}
    for want in parts:
        key = want.strip()
        hits = [a for a in archives
                if key in ("all", a.part, a.filename, a.filename.removesuffix(".zip"))
                or key in a.groups]
        if not hits:
            groups = sorted({g for a in archives for g in a.groups})
            raise ValueError(f"unknown part {want!r}; use a group ({', '.join(groups)}, all), "
                             f"a part such as {archives[0].part} or video_speech_01, "
                             "or an archive file name")
        chosen.update({a.filename: a for a in hits})
    return [a for a in archives if a.filename in chosen]


# ------------------------------------------------------------------------ download
def _content_range_total(header: str | None, offset: int) -> int | None:
    """Total size from ``Content-Range: bytes START-END/TOTAL`` if START == offset.

    Raises FetchError when the server resumed at a different byte than asked."""
    match = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", header or "")
    if not match:
        return None
    if int(match.group(1)) != offset:
        raise FetchError(f"server resumed at byte {match.group(1)}, not {offset}")
    return None if match.group(3) == "*" else int(match.group(3))


def _download_once(url: str, part: Path, expected: int | None, progress: bool,
                   timeout: float) -> int | None:
    """One HTTP request appending to ``part`` (Range from its current size).

    Returns the total size the server announced (None if it did not). Network
    errors propagate so the caller can retry; what arrived stays in ``part``.
    """
    from tqdm import tqdm

    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urlopen(Request(url, headers=headers), timeout=timeout)  # noqa: S310
    except HTTPError as err:
        if err.code == 416 and offset and expected in (None, offset):
            return offset  # the range starts at the end: nothing left to fetch
        raise FetchError(f"{url}: HTTP {err.code} {err.reason}") from None
    with response:
        if offset and response.status == 206:
            total = _content_range_total(response.headers.get("Content-Range"), offset)
            mode = "ab"
        else:
            if offset:
                log.info("%s: server ignored the Range request; starting over", url)
            offset, mode = 0, "wb"
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        if expected is not None and total is not None and total != expected:
            raise FetchError(f"{url} offers {total} bytes, expected {expected}: "
                             "not the official archive (wrong mirror or file name?)")
        total = total or expected
        with open(part, mode) as out, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                           unit_divisor=1024, desc=part.name.removesuffix(".part"),
                                           disable=not progress, leave=False) as bar:
            while True:
                chunk = response.read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                bar.update(len(chunk))
    return total


def download(url: str, target: Path, expected_size: int | None = None, *, progress: bool = True,
             attempts: int = 3, retry_wait: float = 2.0, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``target`` through ``target.part``, resuming what is there.

    Retries ``attempts`` times (each resuming with a Range request); when all fail the
    ``.part`` file is kept and a rerun continues from it. Returns ``target``.
    """
    part = target.with_name(target.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    if expected_size is not None and part.exists() and part.stat().st_size > expected_size:
        part.unlink()  # longer than the real file: cannot be a prefix of it
    last: Exception | None = None
    total: int | None = expected_size
    for attempt in range(max(1, attempts)):
        if attempt:
            time.sleep(retry_wait * attempt)
        try:
            total = _download_once(url, part, expected_size, progress, timeout) or total
        except FetchError:
            raise
        except (OSError, http.client.HTTPException) as err:  # URLError, reset, timeout
            last = err
            log.warning("%s: attempt %d failed: %s", target.name, attempt + 1, err)
            continue
        have = part.stat().st_size if part.exists() else 0
        if total is None or have == total:
            part.replace(target)
            return target
        if have > total:
            part.unlink()  # not a prefix of the announced file: start over
        last = ConnectionError(f"connection closed after {have} of {total} bytes")
        log.warning("%s: attempt %d incomplete: %s", target.name, attempt + 1, last)
    have = part.stat().st_size if part.exists() else 0
    kept = f"{have} bytes kept in {part}; rerun the same command to resume" if have else "nothing was kept"
    raise FetchError(f"download of {target.name} did not finish ({kept}): {last}")


def md5sum(path: Path) -> str:
    """Hex MD5 of a file, read in 1 MiB chunks (Zenodo publishes MD5s)."""
    digest = hashlib.md5()  # noqa: S324 - integrity check against the published value
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, size: int | None, md5: str | None) -> None:
    """Check size and MD5 where known; a mismatching file is deleted (FetchError)."""
    actual = path.stat().st_size
    if size is not None and actual != size:
        path.unlink()
        raise FetchError(f"{path.name}: {actual} bytes, expected {size}; deleted, rerun to fetch again")
    if md5 is not None:
        got = md5sum(path)
        if got != md5.lower():
            path.unlink()
            raise FetchError(f"{path.name}: md5 {got}, expected {md5}; deleted, rerun to fetch again")


# -------------------------------------------------------------------------- unpack
def _safe_target(dest: Path, name: str) -> Path:
    """Where a zip member goes under ``dest``; FetchError if it would escape it."""
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or re.match(r"^[A-Za-z]:", name):
        raise FetchError(f"unsafe path in archive: {name!r}")
    target = (dest / pure).resolve()
    if not target.is_relative_to(dest.resolve()):
        raise FetchError(f"unsafe path in archive: {name!r}")
    return target


def check_zip(path: Path) -> None:
    """Reject a corrupt or unsafe zip (CRC check of every member); it is deleted."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            if bad is not None:
                raise FetchError(f"{path.name} is corrupt (bad CRC in {bad}); deleted, rerun to fetch again")
            for info in archive.infolist():
                _safe_target(path.parent, info.filename)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as err:
        path.unlink(missing_ok=True)
        raise FetchError(f"{path.name} is not a valid zip ({err}); deleted, rerun to fetch again") from None
    except FetchError:
        path.unlink(missing_ok=True)
        raise


def unpack(path: Path, dest: Path) -> list[str]:
    """Extract a checked zip into ``dest``; returns its top-level entry names.

    macOS resource forks (``__MACOSX/``) are left out: they are not corpus files.
    """
    dest.mkdir(parents=True, exist_ok=True)
    tops: set[str] = set()
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name = info.filename.replace("\\", "/")
            if name.startswith("__MACOSX/"):
                continue
            target = _safe_target(dest, name)
            tops.add(PurePosixPath(name).parts[0])
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".unpacking")
            with archive.open(info) as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
            tmp.replace(target)
    return sorted(tops)


# --------------------------------------------------------------------------- fetch
def _marker(state: Path, archive: Archive) -> Path:
    return state / f"{archive.filename}.done.json"


def _check_space(dest: Path, archive: Archive) -> None:
    """FetchError up front when the archive plus its unpacked copy cannot fit."""
    if archive.size is None:
        return
    free = shutil.disk_usage(dest).free
    need = int(archive.size * 2.1)  # zip + unpacked files (RAVDESS media barely compress)
    if free < need:
        raise FetchError(f"{archive.filename} needs about {need / 1e9:.1f} GB free in {dest}, "
                         f"only {free / 1e9:.1f} GB left")


def fetch_archive(archive: Archive, dest: Path, url: str, *, progress: bool = True,
                  keep_archive: bool = False, attempts: int = 3, retry_wait: float = 2.0,
                  timeout: float = 60.0) -> list[Path]:
    """Download, verify and unpack one archive unless its done-marker exists.

    Returns the top-level paths it unpacked into ``dest``.
    """
    state = dest / STATE_DIR
    marker = _marker(state, archive)
    if marker.exists():
        tops = json.loads(marker.read_text()).get("top_level", [])
        log.info("%s already unpacked; skipping", archive.filename)
        return [dest / t for t in tops]
    zip_path = state / archive.filename
    if not zip_path.exists():
        _check_space(dest, archive)
        log.info("downloading %s from %s", archive.filename, url)
        download(url, zip_path, archive.size, progress=progress, attempts=attempts,
                 retry_wait=retry_wait, timeout=timeout)
    verify(zip_path, archive.size, archive.md5)
    check_zip(zip_path)
    tops = unpack(zip_path, dest)
    marker.write_text(json.dumps({"archive": archive.filename, "url": url,
                                  "size": zip_path.stat().st_size, "md5": archive.md5,
                                  "top_level": tops}, indent=1))
    if not keep_archive:
        zip_path.unlink()
    return [dest / t for t in tops]


def fetch(corpus: str, dest: str | os.PathLike[str], parts: Sequence[str] | None = None,
          base_url: str | None = None, progress: bool = True, *, keep_archives: bool = False,
          attempts: int = 3, retry_wait: float = 2.0, timeout: float = 60.0,
          catalog: Sequence[Archive] | None = None) -> list[Path]:
    """Download and unpack a corpus's archives into ``dest``; returns unpacked paths.

    ``base_url`` replaces the official record with a mirror serving the same file
    names (``BASE/NAME``); the known sizes/MD5s still apply. ``catalog`` overrides
    the archive table (tests, other mirrors). Safe to rerun: finished archives are
    skipped and an interrupted download resumes.
    """
    if catalog is None:
        if corpus not in CATALOGS:
            raise ValueError(f"cannot fetch {corpus!r}; fetchable corpora: {', '.join(CATALOGS)}")
        catalog = CATALOGS[corpus]()
    chosen = select(catalog, parts)
    dest = Path(dest)
    (dest / STATE_DIR).mkdir(parents=True, exist_ok=True)
    done: dict[str, Path] = {}
    failed: list[str] = []
    for archive in chosen:
        url = f"{base_url.rstrip('/')}/{archive.filename}" if base_url else archive.url
        try:
            paths = fetch_archive(archive, dest, url, progress=progress, keep_archive=keep_archives,
                                  attempts=attempts, retry_wait=retry_wait, timeout=timeout)
        except FetchError as err:
            if len(chosen) == 1:
                raise
            log.error("%s", err)  # go on with the other archives, report at the end
            failed.append(f"{archive.part}: {err}")
            continue
        done.update({str(p): p for p in paths})
    if failed:
        raise FetchError(f"{len(failed)} of {len(chosen)} archives failed (the others are "
                         f"unpacked; rerun to retry): {failed[0]}")
    return sorted(done.values())
