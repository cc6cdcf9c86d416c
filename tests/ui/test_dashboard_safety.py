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
