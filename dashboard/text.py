"""Strings people control, shown as text: file names, corpus names, labels.

Streamlit renders ``st.markdown``, ``st.caption``, ``st.error`` / ``st.info`` /
``st.warning`` / ``st.success`` bodies and ``st.status`` / ``st.expander`` labels as
Markdown (GitHub-flavoured, with Streamlit's own ``:color[...]``, ``:material/...:`` and
``$...$`` math). It escapes HTML but not Markdown, so an uploaded file named
``[click here](https://example.com) ![t](https://example.com/t.png).wav`` would show a
live link and make every viewer's browser fetch a remote picture. :func:`plain` makes
such a string literal before it is put in any of those.
"""
from __future__ import annotations

import re
import string
import unicodedata

#: Every ASCII punctuation character may be backslash-escaped in CommonMark (spec 0.31,
#: section 2.4 "Backslash escapes"), and an escaped one is always literal: links,
#: pictures, emphasis, code, headings, lists, tables, GFM autolinks (``https\://``,
#: ``www\.``), Streamlit's directives (``:red[...]``) and math (``$``) all need one.
_ESCAPE = str.maketrans({c: "\\" + c for c in string.punctuation})
#: U+2060 WORD JOINER: invisible, not white space. Streamlit's Markdown also turns URLs
#: and e-mail addresses in *text* into links after escapes are decoded (GFM autolink
#: literals, found in the text nodes: ``https://...``, ``www.x``, ``a@b.c``), so an
#: escape does not stop them; a joiner between ``:`` and ``//``, after an ``@`` that a
#: domain (``x.y``) follows and between ``www`` and a dot does (checked in Chromium by
#: tests/ui/test_browser.py). Only there: a message copied from the page keeps no
#: invisible characters unless it held something link-like.
JOINER = "\u2060"
_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?<=@)(?=[-\w]+\.[-\w])|(?<=www)(?=\.)", re.IGNORECASE)


def plain(value: object) -> str:
    """``value`` as text that Streamlit's Markdown shows literally, on one line.

    Control and format characters (Unicode categories ``Cc``, ``Cf``: line breaks, the
    right-to-left override that makes ``gpj.exe`` read as ``exe.jpg``) become spaces,
    runs of white space one space, and every ASCII punctuation character is
    backslash-escaped; an invisible :data:`JOINER` sits between ``:`` and ``//``, after
    an ``@`` before a domain and between ``www`` and a dot, so no URL or
    address becomes a link (and nothing else gets one). Letters,
    digits and other scripts are left as they are.
    """
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Cf") else c for c in str(value))
    text = _AUTOLINK.sub(JOINER, " ".join(text.split()))
    return text.translate(_ESCAPE)


def refusal(err: object, name: str) -> str:
    """Why the visitor's file ``name`` was refused, in a sentence that names it: the
    pipeline calls a file it got as bytes :data:`pipeline.core.media.UPLOADED`; that
    placeholder becomes the file's name. Not escaped: pass it through :func:`plain`."""
    from pipeline.core.media import UPLOADED

    said = str(err)
    if said.startswith(UPLOADED):
        return name + said[len(UPLOADED):]
    return said if said.startswith(name) else f"{name}: {said}"


def busy_words(name: str) -> str:
    """What a visitor reads when their file (``name``, already escaped) waited out the
    time limit behind other files (:class:`pipeline.serve.isolation.WorkerBusy`)."""
    return (f"The server is busy analysing other files (one at a time), so {name} was not started: "
            "nothing is wrong with it. Try again in a minute.")
