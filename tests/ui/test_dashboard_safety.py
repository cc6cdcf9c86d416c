"""A dashboard safe for the people who use it (issue 19): names people control are shown
as text, never as Markdown."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from pipeline.core.media import MediaError

HOSTILE = "[click here](https://example.com) ![t](https://example.com/t.png).wav"


def rendered(markdown: str) -> str:
    """HTML of a Markdown string as a CommonMark renderer (Streamlit's is one) makes it."""
    return MarkdownIt("commonmark").render(markdown)


def _no_live_markup(html: str) -> None:
    assert "<a " not in html and "<img" not in html, html


# --------------------------------------------------------------------------- text.plain
def test_the_hostile_name_is_markup_unless_escaped() -> None:
    from dashboard.text import plain

    assert "<a " in rendered(HOSTILE) and "<img" in rendered(HOSTILE)  # what the issue saw
    html = rendered(plain(HOSTILE))
    _no_live_markup(html)
    assert HOSTILE in html.replace("&quot;", '"')  # the name itself, shown as it is


@pytest.mark.parametrize("name", ["**bold** _x_ `code`.mp4", "# heading.wav", "1. list.wav", "- item.wav",
                                  "<b>html</b>.wav", "a|b|c.wav", "$x^2$.wav", ":red[alarm].wav",
                                  "https://example.com/a.wav", "www.example.com.wav", "back\\slash.wav"])
def test_every_markdown_construct_is_literal(name: str) -> None:
    from dashboard.text import plain

    html = rendered(plain(name))
    _no_live_markup(html)
    for tag in ("<strong", "<em", "<code", "<h1", "<ol", "<ul", "<b>"):
        assert tag not in html, (name, html)
    assert "https://" not in plain(name) and "www." not in plain(name)  # no GFM autolink literal
    assert not re.search(r"(?<!\\)[$:\[]", plain(name))  # Streamlit's directives, math: all escaped


def test_line_breaks_and_direction_overrides_are_removed() -> None:
    from dashboard.text import plain

    assert plain("a\nb\r\n\tc") == "a b c"
    assert plain("photo\u202egpj.exe") == "photo gpj\\.exe"  # no right-to-left override
    assert plain("Ärger 怒り") == "Ärger 怒り"  # other scripts untouched


# --------------------------------------------------------------------------- Analyze
def _upload(app_env, bundle_meta: Path, name: str) -> Any:
    at = app_env("analyze", bundle=bundle_meta)
    at.file_uploader(key="upload").set_value((name, b"RIFF....WAVE", "audio/wav")).run()
    return at


def test_upload_name_is_text_in_status_and_answer(app_env, monkeypatch, bundle_meta: Path,
                                                  analysis_factory) -> None:
    from dashboard import state

    monkeypatch.setattr(state, "analyze", lambda data, bundle_dir, detector="bundle", **kw: analysis_factory())
    at = _upload(app_env, bundle_meta, HOSTILE)
    assert not at.exception, at.exception
    label = at.status[0].label
    assert label.startswith("Analysed ") and at.status[0].state == "complete"
    _no_live_markup(rendered(label))
    assert HOSTILE in rendered(label).replace("&quot;", '"')


def test_upload_name_is_text_in_errors(app_env, monkeypatch, bundle_meta: Path) -> None:
    from dashboard import state

    def refuse(data: bytes, bundle_dir: str, detector: str = "bundle", **kw: Any) -> Any:
        raise MediaError(f"{HOSTILE} is not a readable audio or video file (InvalidDataError)")

    monkeypatch.setattr(state, "analyze", refuse)
    at = _upload(app_env, bundle_meta, HOSTILE)
    assert not at.exception, at.exception
    assert at.status[0].state == "error"
    for shown in (at.status[0].label, at.error[0].value):
        _no_live_markup(rendered(shown))
    assert "not a readable audio or video file" in at.error[0].value


# --------------------------------------------------------------------------- isolation
def test_a_file_that_crashes_the_decoder_gets_a_message_and_the_next_answers(
        app_env, monkeypatch, bundle_meta: Path, analysis_factory) -> None:
    """Issue 19: an upload whose decoding kills the process. It runs in the worker
    process (a real segmentation fault there); this visitor reads why, the app keeps
    running, and the next upload is answered by a fresh worker."""
    import functools

    from crashing_jobs import CRASH, crash_or_answer

    from dashboard import state
    from pipeline.serve import isolation

    monkeypatch.setattr(isolation, "analyze_job", functools.partial(crash_or_answer, analysis_factory()))
    at = app_env("analyze", bundle=bundle_meta)
    at.file_uploader(key="upload").set_value(("eight-channels.wav", CRASH + b" rest of the file", "audio/wav")).run()
    assert not at.exception, at.exception
    assert at.status[0].state == "error" and at.status[0].label == "This file stopped the analysis"
    said = at.error[0].value
    assert "crashed the analysis process (SIGSEGV)" in said and "the app keeps running" in said
    first = state.worker().starts
    at.file_uploader(key="upload").set_value(("voice.wav", b"a file that decodes", "audio/wav")).run()
    assert not at.exception, at.exception
    assert at.status[0].state == "complete" and not at.error
    assert "comes across as **happy**" in at.success[0].value
    assert state.worker().starts == first + 1  # a fresh worker answered


def test_analyses_are_kept_per_session(app_env, monkeypatch, bundle_meta: Path, analysis_factory) -> None:
    """A rerun of the same upload (a slider, a rerender) is not analysed again; the
    cache holds at most ANALYSES_PER_SESSION clips, and it goes with the session
    (Streamlit clears session-scoped caches when a session disconnects)."""
    import functools

    from crashing_jobs import crash_or_answer
    from streamlit.runtime import caching

    from dashboard import state
    from pipeline.serve import isolation

    calls: list[Any] = []
    job = functools.partial(crash_or_answer, analysis_factory())

    class Counting:
        def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
            calls.append(args[0].source)
            return job(*args)

    monkeypatch.setattr(isolation, "analyze_job", job)
    monkeypatch.setattr(state, "worker", lambda: Counting())
    at = app_env("analyze", bundle=bundle_meta)
    upload = at.file_uploader(key="upload")
    upload.set_value(("a.wav", b"clip 0", "audio/wav")).run()
    at.run()
    assert not at.exception, at.exception
    assert calls == [b"clip 0"]  # the rerun used the kept analysis
    for i in range(1, state.ANALYSES_PER_SESSION + 1):
        at.file_uploader(key="upload").set_value((f"{i}.wav", f"clip {i}".encode(), "audio/wav")).run()
    at.file_uploader(key="upload").set_value(("a.wav", b"clip 0", "audio/wav")).run()
    assert len(calls) == state.ANALYSES_PER_SESSION + 2  # the oldest was dropped: analysed again
    caching.clear_session_data_cache("test session id")  # AppTest's session ends
    at.run()
    assert calls[-1] == b"clip 0" and len(calls) == state.ANALYSES_PER_SESSION + 3


# --------------------------------------------------------------------------- recordings
@pytest.fixture
def temp_folder(monkeypatch, tmp_path: Path) -> Path:
    """The system's temporary folder, for this test: where camera takes are recorded."""
    import tempfile

    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _camera(app_env, bundle_meta: Path) -> Any:
    at = app_env("analyze", bundle=bundle_meta)
    at.radio(key="way").set_value("Record camera + microphone").run()
    assert not at.exception, at.exception
    return at


def _write_take(path: Path) -> None:
    """One second of camera (a grey 64 x 48 picture) and microphone, as an mp4."""
    import av
    import numpy as np

    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = out.add_stream("aac", rate=16000)
        sound.layout = "mono"
        for _ in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 120, np.uint8), format="rgb24")
            out.mux(video.encode(frame))
        out.mux(video.encode())
        tone = (0.2 * np.sin(np.arange(16000) * 0.1)).astype(np.float32)
        for i in range(0, 16000, 1024):
            chunk = av.AudioFrame.from_ndarray(tone[None, i:i + 1024], format="fltp", layout="mono")
            chunk.rate = 16000
            out.mux(sound.encode(chunk))
        out.mux(sound.encode())


def test_picking_the_camera_makes_no_file(app_env, bundle_meta: Path, temp_folder: Path) -> None:
    _camera(app_env, bundle_meta)
    assert list(temp_folder.iterdir()) == []


def test_a_camera_take_is_analysed_and_leaves_no_file(app_env, monkeypatch, bundle_meta: Path, temp_folder: Path,
                                                      no_webrtc: list, analysis_factory) -> None:
    pytest.importorskip("aiortc")
    from dashboard import state

    seen: list[bytes] = []

    def fake_analyze(data: bytes, bundle_dir: str, detector: str = "bundle", **kw: Any) -> Any:
        seen.append(data)
        return analysis_factory()

    monkeypatch.setattr(state, "analyze", fake_analyze)
    at = _camera(app_env, bundle_meta)
    recorder = no_webrtc[-1]["in_recorder_factory"]()  # what START makes (its file comes with the first packet)
    path = Path(recorder.path)
    assert path.parent == temp_folder and path.name.startswith("ave-recording-")
    _write_take(path)  # the take, as the recorder leaves it after STOP
    at.run()
    assert not at.exception, at.exception
    assert at.status[0].label.startswith("Analysed camera recording") and seen and seen[0][4:8] == b"ftyp"
    assert list(temp_folder.glob("ave-recording-*")) == []  # removed as soon as it was read
    at.run()  # a rerun (a slider) still has the take, from memory
    assert at.status[0].label.startswith("Analysed camera recording")
    assert list(temp_folder.iterdir()) == []


def test_the_end_of_a_session_removes_its_recording(app_env, bundle_meta: Path, temp_folder: Path,
                                                    no_webrtc: list) -> None:
    """A take left unanalysed (the browser closed while recording) goes with the session."""
    pytest.importorskip("aiortc")
    from streamlit.runtime import caching

    _camera(app_env, bundle_meta)
    recorder = no_webrtc[-1]["in_recorder_factory"]()
    _write_take(Path(recorder.path))
    caching.clear_session_resource_cache("test session id")  # what Streamlit does on disconnect
    assert not Path(recorder.path).exists()
    assert list(temp_folder.glob("ave-recording-*")) == []
