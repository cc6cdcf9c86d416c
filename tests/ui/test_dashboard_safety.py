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


def shown_text(html: str) -> str:
    """What a reader sees of rendered text (the invisible word joiners left out)."""
    from dashboard.text import JOINER

    return html.replace("&quot;", '"').replace(JOINER, "")


def _no_live_markup(html: str) -> None:
    assert "<a " not in html and "<img" not in html, html


# --------------------------------------------------------------------------- text.plain
def test_the_hostile_name_is_markup_unless_escaped() -> None:
    from dashboard.text import plain

    assert "<a " in rendered(HOSTILE) and "<img" in rendered(HOSTILE)  # what the issue saw
    html = rendered(plain(HOSTILE))
    _no_live_markup(html)
    assert HOSTILE in shown_text(html)  # the name itself, shown as it is


@pytest.mark.parametrize("name", ["**bold** _x_ `code`.mp4", "# heading.wav", "1. list.wav", "- item.wav",
                                  "<b>html</b>.wav", "a|b|c.wav", "$x^2$.wav", ":red[alarm].wav",
                                  "https://example.com/a.wav", "www.example.com.wav", "WWW.EXAMPLE.COM.wav",
                                  "me@example.com.wav", "back\\slash.wav"])
def test_every_markdown_construct_is_literal(name: str) -> None:
    from dashboard.text import plain

    html = rendered(plain(name))
    _no_live_markup(html)
    for tag in ("<strong", "<em", "<code", "<h1", "<ol", "<ul", "<b>"):
        assert tag not in html, (name, html)
    # GFM autolink literals are found in the decoded text: a word joiner breaks each
    assert not re.search(r"https?://|www\.|@\w", plain(name).replace("\\", ""))
    assert not re.search(r"(?<!\\)[$:\[]", plain(name))  # Streamlit's directives, math: all escaped


def test_only_link_like_text_gets_word_joiners() -> None:
    """A message copied from the page holds no invisible characters unless it held a URL
    or an address (the joiners exist only to break GFM autolinks)."""
    from dashboard.text import JOINER, plain

    for said in ("Could not calibrate: too short (0.4 s of speech)", "clip@2x: 10:30 am", "ratio 1:2 / 3"):
        assert JOINER not in plain(said), said
    for said in ("see https://example.com", "ftp://host", "me@example.com", "www.example.com"):
        assert JOINER in plain(said), said


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
    assert HOSTILE in shown_text(rendered(label))


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
        busy = False

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


# --------------------------------------------------------------------------- folders
def _sidebar_texts(at: Any) -> list[str]:
    return [str(o) for box in at.sidebar.selectbox for o in box.options]


def test_folders_are_chosen_among_configured_ones_by_label(app_env, monkeypatch, tmp_path: Path,
                                                           bundle_meta: Path) -> None:
    elsewhere = tmp_path / "teaching" / "clips"
    elsewhere.mkdir(parents=True)
    (tmp_path / "data" / "ravdess").mkdir(parents=True)
    monkeypatch.setenv("AVE_CORPORA", f"class clips={elsewhere}")
    monkeypatch.delenv("AVE_FREE_PATHS", raising=False)
    at = app_env("data", bundle=bundle_meta, data=tmp_path / "data")
    assert not at.exception, at.exception
    assert not at.text_input  # no typed folders
    assert at.selectbox(key="sb_corpus").options == ["synthetic", "ravdess", "class clips"]
    shown = "\n".join(_sidebar_texts(at) + [str(e.value) for e in (*at.info, *at.caption, *at.markdown)])
    assert str(tmp_path) not in shown  # labels, never server paths
    at.selectbox(key="sb_corpus").select("class clips").run()
    assert not at.exception, at.exception
    assert at.session_state["settings"].corpus_root == elsewhere


def test_free_paths_only_when_the_operator_says_so(app_env, monkeypatch, tmp_path: Path, bundle_meta: Path) -> None:
    from dashboard import folders

    monkeypatch.setenv("AVE_FREE_PATHS", "1")
    at = app_env("data", bundle=bundle_meta)
    assert folders.OTHER in at.selectbox(key="sb_corpus").options
    at.selectbox(key="sb_corpus").select(folders.OTHER).run()
    assert not at.exception, at.exception
    typed = at.text_input(key="sb_corpus_typed")
    typed.set_value(str(tmp_path)).run()
    assert at.session_state["settings"].corpus_root == tmp_path


def test_unconfigured_folders_are_refused_before_any_read(monkeypatch, tmp_path: Path, bundle_meta: Path) -> None:
    """A bundle is unpickled, a corpus scanned and its files played only from configured
    folders (whatever reaches the functions, e.g. a forged session state)."""
    from dashboard import folders, state
    from pipeline.serve.bundle import BundleError

    monkeypatch.delenv("AVE_FREE_PATHS", raising=False)
    monkeypatch.setenv("AVE_BUNDLE", str(bundle_meta))
    monkeypatch.setenv("AVE_DATA", str(tmp_path / "data"))
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "bundle.json").write_text((bundle_meta / "bundle.json").read_text())
    with pytest.raises(BundleError, match="not one the operator configured"):
        folders.check_bundle(planted)
    with pytest.raises(BundleError, match="not one the operator configured"):
        state.bundle(planted)
    folders.check_bundle(bundle_meta)  # the configured one
    with pytest.raises(folders.FolderRefused):
        folders.check_corpus("/")
    with pytest.raises(folders.FolderRefused):
        folders.check_corpus_file("/etc/passwd")
    folders.check_corpus_file(tmp_path / "data" / "synthetic" / "Actor_01" / "a.wav")
    monkeypatch.setenv("AVE_FREE_PATHS", "1")
    folders.check_bundle(planted)
    folders.check_corpus("/")


def test_messages_name_folders_by_label(monkeypatch, tmp_path: Path, bundle_meta: Path) -> None:
    from dashboard import folders

    monkeypatch.setenv("AVE_BUNDLE", str(bundle_meta))
    said = folders.scrub(f"bundle {bundle_meta} is incomplete: audio/model.keras is missing")
    assert str(tmp_path) not in said and "«bundle»" in said


def test_the_data_table_shows_paths_inside_the_corpus(app_env, monkeypatch, tmp_path: Path) -> None:
    import pandas as pd

    from dashboard import state

    from test_pages import _write_wav

    root = tmp_path / "data" / "synthetic"
    (root / "Actor_01").mkdir(parents=True)
    _write_wav(root / "Actor_01" / "a.wav")
    rows = [{"clip_id": "synthetic:1", "corpus": "synthetic", "actor": "01", "gender": "male", "emotion": "happy",
             "intensity": "normal", "channel": "speech", "statement": "01", "repetition": "01",
             "audio_path": str(root / "Actor_01" / "a.wav"), "video_path": "", "landmarks_path": ""}]
    monkeypatch.setattr(state, "manifest", lambda kind, where: pd.DataFrame(rows))
    at = app_env("data", data=tmp_path / "data")
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert table["audio_path"].tolist() == ["Actor_01/a.wav"]


def test_served_on_the_network_says_so(app_env, monkeypatch) -> None:
    import streamlit

    at = app_env("about")
    assert not any("served on the network" in w.value for w in at.sidebar.warning)
    monkeypatch.setattr(streamlit, "get_option",
                        lambda key, _get=streamlit.get_option: "0.0.0.0" if key == "server.address" else _get(key))
    at.run()
    assert any("served on the network and has no login" in w.value for w in at.sidebar.warning)


# --------------------------------------------------------------------------- no magic
def test_pages_write_explicitly_and_magic_is_off() -> None:
    """Streamlit's magic parses each page with the ast module, which on Python 3.11 can
    fail when another thread builds an AST at once (CPython gh-106905; seen once as an
    error page in the suite): the shipped config turns it off, and no page relies on it
    (no bare expression other than a call or a docstring)."""
    import ast
    import tomllib

    repo = Path(__file__).resolve().parents[2]
    config = tomllib.loads((repo / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["magicEnabled"] is False
    bare = []
    for path in sorted((repo / "dashboard").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            for field in ("body", "orelse", "finalbody"):
                body = getattr(node, field, None)
                for i, stmt in enumerate(body if isinstance(body, list) else []):
                    if not isinstance(stmt, ast.Expr) or isinstance(stmt.value, (ast.Call, ast.Await)):
                        continue
                    if i == 0 and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
                        continue  # a docstring
                    bare.append(f"{path.name}:{stmt.lineno}")
    assert not bare, f"bare expressions that magic would have written: {bare}"


# --------------------------------------------------------------------------- refusals and photos
def test_a_refusal_names_the_file_and_is_shown_open(app_env, monkeypatch, bundle_meta: Path) -> None:
    """The pipeline calls bytes "uploaded bytes"; the page says the visitor's file name
    instead, and the reason is shown without opening the status box."""
    from dashboard import state
    from pipeline.core.media import UPLOADED

    def refuse(data: bytes, bundle_dir: str, detector: str = "bundle", **kw: Any) -> Any:
        raise MediaError(f"{UPLOADED} is not a readable audio or video file")

    monkeypatch.setattr(state, "analyze", refuse)
    at = _upload(app_env, bundle_meta, "holiday.mp4")
    assert not at.exception, at.exception
    assert at.status[0].state == "error" and at.status[0].proto.expanded
    assert at.error[0].value.startswith("holiday\\.mp4 is not a readable audio or video file"), at.error[0].value
    assert UPLOADED not in at.error[0].value


def test_a_photo_is_shown_from_the_analysis_not_decoded_here(app_env, monkeypatch, bundle_meta: Path,
                                                             analysis_factory) -> None:
    """An uploaded photo is displayed from the frame the worker decoded: the server never
    decodes the visitor's bytes (a WAV named .png, a 16-bit PNG or a picture over the
    pixel limit used to end the page in a traceback), and a sound file named .png plays
    as sound."""
    import dataclasses

    from dashboard import state
    from pipeline.serve.analysis import STILL_IMAGE, BranchResult

    full = analysis_factory()
    still = dataclasses.replace(full, duration=0.0, audio=BranchResult("no audio track", {}, STILL_IMAGE),
                                waveform=None, mfcc=None, mfcc_times=None, frames=full.frames[:1],
                                frame_times=full.frame_times[:1], boxes=full.boxes[:1], crops=full.crops[:1],
                                frames_with_face=1, still_image=True)
    monkeypatch.setattr(state, "analyze", lambda data, bundle_dir, detector="bundle", **kw: still)
    at = _upload(app_env, bundle_meta, "photo.png")  # its bytes are not a picture at all
    assert not at.exception, at.exception
    shown = [e for e in at.main if type(e).__name__ == "Image" and "a still image" in str(e.proto)]
    assert shown, "the photo is not shown"
    monkeypatch.setattr(state, "analyze", lambda data, bundle_dir, detector="bundle", **kw: analysis_factory())
    at = _upload(app_env, bundle_meta, "speech.png")  # a sound analysed as sound
    assert not at.exception, at.exception
    assert not [e for e in at.main if "a still image" in str(getattr(e, "proto", ""))]
    assert len(at.get("audio")) == 1


def test_a_file_that_must_wait_says_so(app_env, monkeypatch, bundle_meta: Path, analysis_factory) -> None:
    """One file at a time: a visitor whose file queues behind another is told it waits."""
    from dashboard import state

    seen: list[str] = []
    real_status = __import__("streamlit").status

    def spy(label: str, **kw: Any) -> Any:
        seen.append(label)
        return real_status(label, **kw)

    monkeypatch.setattr("streamlit.status", spy)
    monkeypatch.setattr(state, "worker_busy", lambda: True)
    monkeypatch.setattr(state, "analyze", lambda data, bundle_dir, detector="bundle", **kw: analysis_factory())
    at = _upload(app_env, bundle_meta, "clip.wav")
    assert not at.exception, at.exception
    assert seen and seen[0].startswith("Waiting for the file before this one to finish"), seen


def test_a_file_that_waited_too_long_is_not_blamed(app_env, monkeypatch, bundle_meta: Path) -> None:
    from dashboard import state
    from pipeline.serve.isolation import WorkerBusy

    def busy(data: bytes, bundle_dir: str, detector: str = "bundle", **kw: Any) -> Any:
        raise WorkerBusy("the analysis worker was busy with other files for 300 s")

    monkeypatch.setattr(state, "analyze", busy)
    at = _upload(app_env, bundle_meta, "clip.wav")
    assert not at.exception, at.exception
    assert at.status[0].label == "The server is busy"
    assert "nothing is wrong with it" in at.error[0].value and "clip\\.wav" in at.error[0].value


def test_compare_refusals_name_the_file(app_env, monkeypatch, bundle_meta: Path) -> None:
    from dashboard import state
    from pipeline.core.media import UPLOADED
    from pipeline.serve.isolation import WorkerBusy

    def refuse(data: bytes, bundle_dir: str, detector: str = "bundle", **kw: Any) -> Any:
        if data == b"not media":
            raise MediaError(f"{UPLOADED} is not a readable audio or video file")
        raise WorkerBusy("busy")

    monkeypatch.setattr(state, "analyze", refuse)
    at = app_env("compare", bundle=bundle_meta)
    at.file_uploader(key="compare_A").set_value(("a.mp4", b"not media", "video/mp4")).run()
    assert not at.exception, at.exception
    assert at.error[0].value.startswith("a\\.mp4 is not a readable audio or video file"), at.error[0].value
    at.file_uploader(key="compare_B").set_value(("b.wav", b"RIFF", "audio/wav")).run()
    assert not at.exception, at.exception
    assert any("nothing is wrong with it" in e.value for e in at.error)


@pytest.mark.parametrize("page", ["analyze", "compare"])
def test_a_failure_reads_the_same_on_every_page(app_env, monkeypatch, bundle_meta: Path, page: str) -> None:
    """Analyze and Compare word a failed analysis from one mapping (dashboard.failures):
    the crash of the worker on a visitor's file, and a bundle that cannot be loaded."""
    from dashboard import failures, state
    from pipeline.serve.bundle import BundleError
    from pipeline.serve.isolation import WorkerCrashed

    def fail(data: bytes, bundle_dir: str, detector: str = "bundle", **kw: Any) -> Any:
        if data == b"crash":
            raise WorkerCrashed("the analysis process ended", signal_name="SIGSEGV")
        raise BundleError("bundle.json lists no models")

    monkeypatch.setattr(state, "analyze", fail)
    at = app_env(page, bundle=bundle_meta)
    key = "upload" if page == "analyze" else "compare_A"
    at.file_uploader(key=key).set_value(("take [1].wav", b"crash", "audio/wav")).run()
    assert not at.exception, at.exception
    expected = failures.explain(WorkerCrashed("the analysis process ended", signal_name="SIGSEGV"), "take [1].wav")
    assert at.error[0].value == expected.message
    assert "crashed the analysis process (SIGSEGV)" in expected.message and "take \\[1\\]\\.wav" in expected.message
    at.file_uploader(key=key).set_value(("b.wav", b"RIFF", "audio/wav")).run()
    assert not at.exception, at.exception
    assert at.error[0].value == failures.explain(BundleError("bundle.json lists no models"), "b.wav").message
