"""Entry point: ``streamlit run dashboard/app.py``.

A router only: it sets the page layout, asks the sidebar where the results store, the
model bundle and the corpus are (defaults from :mod:`pipeline.core.paths`), stores that in
the session once, and hands over to the page the user picked.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from pipeline.core import paths
from pipeline.core.native import load_before_tensorflow

from dashboard import folders, state

# WebRTC's and openSMILE's native libraries crash when loaded after TensorFlow's: load
# them before any page loads a model (see pipeline/core/native.py).
load_before_tensorflow()


#: Addresses that only this computer can reach (``server.address``).
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _pick(title: str, choices: dict[str, Path], current: Path, key: str, help: str) -> Path:
    """A folder chosen by its label among ``choices`` (what the operator configured,
    :mod:`dashboard.folders`); with ``AVE_FREE_PATHS=1`` one more entry takes a typed
    folder. Visitors see labels, never server paths."""
    free = folders.free_paths()
    options = list(choices) + ([folders.OTHER] if free else [])
    chosen = folders.label_of(current, choices, fallback=folders.OTHER if free else "")
    label = st.selectbox(title, options, index=options.index(chosen) if chosen in options else 0,
                         key=key, help=help)
    if label == folders.OTHER:
        typed = st.text_input(f"{title}: folder", value=str(current), key=f"{key}_typed",
                              help="Typed server folders are allowed because AVE_FREE_PATHS is set.")
        return Path(typed.strip() or current)
    return choices[label]


def network_warning() -> None:
    """Say so when the app is served beyond this computer (``--server.address``)."""
    address = str(st.get_option("server.address") or "")
    if address not in LOOPBACK:
        st.warning("This dashboard is served on the network and has no login: anyone who can reach "
                   "it can use it. See docs/dashboard.md, \"Sharing it on a network\".",
                   icon=":material/public:")


def sidebar() -> state.Settings:
    """Where things are: three folders and the corpus kind, chosen among the configured ones."""
    current = state.settings()
    with st.sidebar:
        network_warning()
        st.caption("Where things are")
        runs = _pick("Results", folders.results_choices(), current.runs, "sb_runs",
                     "Your runs: what `python -m pipeline run` and `evaluate` wrote here. "
                     "The committed record: the measurements behind the real models.")
        bundle = _pick("Models that answer", folders.bundle_choices(), current.bundle, "sb_bundle_choice",
                       "The real bundle answers for real people; the demo bundle shows the method "
                       "on the synthetic corpus.")
        kind = st.selectbox("Corpus kind", state.CORPUS_KINDS, key="sb_kind",
                            index=state.CORPUS_KINDS.index(current.corpus_kind))
        root = _pick("Corpus", folders.corpus_choices(), current.corpus_root, "sb_corpus",
                     "The corpus shown on Data and Analyze: the folders under data/ and those named "
                     "by AVE_CORPORA.")
        st.caption(f"Answering: **{paths.bundle_label(bundle)}**. The demo models are trained "
                   "on a **synthetic** corpus of drawn faces and synthesised voices; the real models on "
                   "acted RAVDESS and TESS speech and FER2013 faces: a teaching tool, not a judge of real people.")
    chosen = state.Settings(runs=runs, bundle=bundle, corpus_root=root, corpus_kind=kind)
    state.set_settings(chosen)
    return chosen


def main() -> None:
    st.set_page_config(page_title="Emotion recognition workbench", page_icon=":performing_arts:",
                       layout="wide")
    state.warm_up()
    pages = [
        st.Page("app_pages/analyze.py", title="Analyze a clip", icon=":material/graphic_eq:",
                url_path="analyze", default=True),
        st.Page("app_pages/live.py", title="Live", icon=":material/videocam:", url_path="live"),
        st.Page("app_pages/compare.py", title="Compare two clips", icon=":material/compare:", url_path="compare"),
        st.Page("app_pages/results.py", title="Results", icon=":material/table_chart:", url_path="results"),
        st.Page("app_pages/data.py", title="Data", icon=":material/dataset:", url_path="data"),
        st.Page("app_pages/about.py", title="About the models", icon=":material/info:", url_path="about"),
    ]
    page = st.navigation(pages)
    sidebar()
    page.run()


main()
