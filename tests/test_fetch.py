"""`fetch` against a local HTTP server: download, resume, checksums, corrupt and unsafe zips."""
from __future__ import annotations

import hashlib
import io
import re
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import soundfile as sf

from pipeline.entry import cli
from pipeline.core.corpora import fetch as fetch_mod
from pipeline.core.corpora import ravdess
from pipeline.core.corpora.fetch import Archive, FetchError, fetch, ravdess_archives, select

NAMES = ("03-01-01-01-01-01-01.wav", "03-01-05-02-01-02-01.wav", "03-01-08-01-02-01-01.wav")


def _wav_bytes(seed: int) -> bytes:
    """A tiny real wav (0.05 s of noise at 8 kHz, 16-bit)."""
    buf = io.BytesIO()
    y = np.random.default_rng(seed).uniform(-0.5, 0.5, 400).astype(np.float32)
    sf.write(buf, y, 8000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    """A stored (uncompressed) zip, so tests can corrupt a known byte of a member."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


@pytest.fixture(scope="module")
def members() -> dict[str, bytes]:
    return {f"Actor_01/{name}": _wav_bytes(i) for i, name in enumerate(NAMES)}


@pytest.fixture(scope="module")
def good_zip(members: dict[str, bytes]) -> bytes:
    return _zip(members)


class Server:
    """A local HTTP server with Range support, a request log and a one-shot cut."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.cut_after: dict[str, int] = {}  # path -> bytes sent before dropping, once
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                rng = self.headers.get("Range")
                server.requests.append((path, rng))
                data = server.files.get(path)
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                match = re.match(r"bytes=(\d+)-$", rng or "")
                if match:
                    start = int(match.group(1))
                    if start >= len(data):
                        self.send_error(416, "Range Not Satisfiable")
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                cut = server.cut_after.pop(path, None)
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/files"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server():
    srv = Server()
    yield srv
    srv.close()


def _catalog(name: str, data: bytes | None = None, *, md5: str | None = "auto") -> list[Archive]:
    """A one-archive table; md5 "auto" = the true md5 of ``data``."""
    if md5 == "auto":
        md5 = hashlib.md5(data).hexdigest() if data is not None else None
    size = len(data) if data is not None and md5 is not None else None
    return [Archive("audio_speech", name, "http://unused.invalid/" + name, size, md5, ("audio",))]


FAST = dict(progress=False, retry_wait=0.0, timeout=5.0)


def test_download_unpack_and_skip_on_rerun(server, good_zip, members, tmp_path):
    server.files["/files/Audio_Speech_Actors_01-24.zip"] = good_zip
    catalog = _catalog("Audio_Speech_Actors_01-24.zip", good_zip)
    dest = tmp_path / "ravdess"
    done = fetch("ravdess", dest, base_url=server.url, catalog=catalog, **FAST)
    assert done == [dest / "Actor_01"]
    for name, data in members.items():
        assert (dest / name).read_bytes() == data
    assert (dest / ".fetch" / "Audio_Speech_Actors_01-24.zip.done.json").exists()
    assert not (dest / ".fetch" / "Audio_Speech_Actors_01-24.zip").exists()  # not kept by default
    n_requests = len(server.requests)
    assert fetch("ravdess", dest, base_url=server.url, catalog=catalog, **FAST) == done
    assert len(server.requests) == n_requests  # marker: nothing downloaded again
    frame, summary = ravdess.scan(dest)  # the download state folder is not indexed
    assert len(frame) == 3 and summary.n_skipped == 0


def test_interrupted_download_resumes_with_range(server, good_zip, members, tmp_path):
    path = "/files/Audio_Speech_Actors_01-24.zip"
    server.files[path] = good_zip
    server.cut_after[path] = 300
    catalog = _catalog("Audio_Speech_Actors_01-24.zip", good_zip)
    dest = tmp_path / "d"
    with pytest.raises(FetchError, match="rerun the same command to resume"):
        fetch("ravdess", dest, base_url=server.url, catalog=catalog, attempts=1, **FAST)
    part = dest / ".fetch" / "Audio_Speech_Actors_01-24.zip.part"
    assert part.stat().st_size == 300
    assert not (dest / "Actor_01").exists()
    fetch("ravdess", dest, base_url=server.url, catalog=catalog, attempts=1, **FAST)
    assert server.requests == [(path, None), (path, "bytes=300-")]
    assert not part.exists()
    for name, data in members.items():
        assert (dest / name).read_bytes() == data


def test_retry_within_one_call_resumes(server, good_zip, tmp_path):
    path = "/files/Audio_Speech_Actors_01-24.zip"
    server.files[path] = good_zip
    server.cut_after[path] = 123
    # no known size or md5: the server's Content-Length is what tells a cut download
    catalog = _catalog("Audio_Speech_Actors_01-24.zip", good_zip, md5=None)
    done = fetch("ravdess", tmp_path, base_url=server.url, catalog=catalog, attempts=2, **FAST)
    assert done == [tmp_path / "Actor_01"]
    assert server.requests == [(path, None), (path, "bytes=123-")]


def test_corrupt_archive_rejected_and_deleted(server, good_zip, members, tmp_path):
    data = bytearray(good_zip)
    at = data.find(next(iter(members.values()))) + 200  # inside the first member's samples
    data[at] ^= 0xFF
    server.files["/files/Audio_Speech_Actors_01-24.zip"] = bytes(data)
    catalog = _catalog("Audio_Speech_Actors_01-24.zip", None, md5=None)  # nothing to compare
    with pytest.raises(FetchError, match="corrupt"):
        fetch("ravdess", tmp_path, base_url=server.url, catalog=catalog, **FAST)
    state = tmp_path / ".fetch"
    assert not (state / "Audio_Speech_Actors_01-24.zip").exists()
    assert not list(state.glob("*.done.json"))
    assert not (tmp_path / "Actor_01").exists()


def test_checksum_mismatch_rejected(server, good_zip, tmp_path):
    server.files["/files/Audio_Speech_Actors_01-24.zip"] = good_zip
    catalog = _catalog("Audio_Speech_Actors_01-24.zip", good_zip, md5="0" * 32)
    with pytest.raises(FetchError, match="md5"):
        fetch("ravdess", tmp_path, base_url=server.url, catalog=catalog, **FAST)
    assert not (tmp_path / ".fetch" / "Audio_Speech_Actors_01-24.zip").exists()


def test_not_a_zip_rejected(server, tmp_path):
    server.files["/files/Audio_Speech_Actors_01-24.zip"] = b"<html>rate limited</html>"
    catalog = _catalog("Audio_Speech_Actors_01-24.zip", None, md5=None)
    with pytest.raises(FetchError, match="not a valid zip"):
        fetch("ravdess", tmp_path, base_url=server.url, catalog=catalog, **FAST)
    assert not (tmp_path / ".fetch" / "Audio_Speech_Actors_01-24.zip").exists()


def test_path_traversal_rejected(server, tmp_path):
    evil = _zip({"Actor_01/03-01-01-01-01-01-01.wav": _wav_bytes(0), "../../escaped.txt": b"x"})
    server.files["/files/Audio_Speech_Actors_01-24.zip"] = evil
    catalog = _catalog("Audio_Speech_Actors_01-24.zip", evil)
    dest = tmp_path / "a" / "b"
    with pytest.raises(FetchError, match="unsafe path"):
        fetch("ravdess", dest, base_url=server.url, catalog=catalog, **FAST)
    assert not (tmp_path / "escaped.txt").exists()
    assert not (dest / "Actor_01").exists()


def test_http_error_is_one_clear_error(server, tmp_path):
    catalog = _catalog("Audio_Song_Actors_01-24.zip", None, md5=None)
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch("ravdess", tmp_path, base_url=server.url, catalog=catalog, **FAST)


def test_unreachable_server_keeps_nothing_and_says_rerun(tmp_path):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    catalog = _catalog("Audio_Speech_Actors_01-24.zip", None, md5=None)
    with pytest.raises(FetchError, match="did not finish"):
        fetch("ravdess", tmp_path, base_url=f"http://127.0.0.1:{port}", catalog=catalog,
              attempts=2, **FAST)
    assert not list((tmp_path / ".fetch").glob("*.done.json"))


def test_one_failed_archive_does_not_stop_the_others(server, good_zip, tmp_path):
    server.files["/files/Audio_Song_Actors_01-24.zip"] = good_zip
    catalog = [*_catalog("Audio_Speech_Actors_01-24.zip", None, md5=None),  # 404 on the server
               Archive("audio_song", "Audio_Song_Actors_01-24.zip", "http://unused.invalid/x")]
    with pytest.raises(FetchError, match="1 of 2 archives failed.*HTTP 404"):
        fetch("ravdess", tmp_path, base_url=server.url, catalog=catalog, **FAST)
    assert (tmp_path / ".fetch" / "Audio_Song_Actors_01-24.zip.done.json").exists()
    assert (tmp_path / "Actor_01").is_dir()


def test_wrong_size_on_server_fails_before_downloading(server, good_zip, tmp_path):
    server.files["/files/Audio_Speech_Actors_01-24.zip"] = good_zip
    catalog = [Archive("audio_speech", "Audio_Speech_Actors_01-24.zip", "http://unused.invalid/x",
                       size=len(good_zip) + 5)]
    with pytest.raises(FetchError, match="not the official archive"):
        fetch("ravdess", tmp_path, base_url=server.url, catalog=catalog, **FAST)
    assert not list((tmp_path / ".fetch").iterdir())


def test_official_table_and_part_selection():
    archives = ravdess_archives()
    names = {a.filename for a in archives}
    assert len(archives) == 2 + 24 + 23 + 1
    assert "Video_Song_Actor_18.zip" not in names and "Video_Speech_Actor_18.zip" in names
    assert "FacialTracking_Actors_01-24.zip" in names
    assert all(a.url.startswith("https://zenodo.org/records/") for a in archives)
    assert [a.part for a in select(archives, ["audio"])] == ["audio_speech", "audio_song"]
    assert len(select(archives, ["video_song"])) == 23
    assert [a.filename for a in select(archives, ["Video_Speech_Actor_03.zip", "landmarks"])] == [
        "Video_Speech_Actor_03.zip", "FacialTracking_Actors_01-24.zip"]
    assert select(archives, None) == archives
    with pytest.raises(ValueError, match="unknown part"):
        select(archives, ["video_speech_25"])


def test_fetch_command_line(server, good_zip, tmp_path, monkeypatch, capsys):
    server.files["/files/Audio_Speech_Actors_01-24.zip"] = good_zip
    monkeypatch.setitem(fetch_mod.CATALOGS, "ravdess",
                        lambda: _catalog("Audio_Speech_Actors_01-24.zip", good_zip))
    rc = cli.main(["fetch", "ravdess", "--dest", str(tmp_path), "--base-url", server.url,
                   "--part", "audio_speech", "-q"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert out.out.strip() == str(tmp_path / "Actor_01")
    rc = cli.main(["fetch", "ravdess", "--dest", str(tmp_path), "--part", "nope", "-q"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: unknown part") and "\n" not in err
