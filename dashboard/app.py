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

from dashboard import state

# WebRTC's and openSMILE's native libraries crash when loaded after TensorFlow's: load
# them before any page loads a model (see pipeline/core/native.py).
load_before_tensorflow()


OTHER = "another bundle folder..."


def sidebar() -> state.Settings:
    """Where things are: three folders and the corpus kind, defaulted from pipeline.core.paths."""
    default = state.default_settings()
    current = state.settings()
    with st.sidebar:
        st.caption("Where things are")
        results = paths.results_choices()
        shown = list(results)
        current_label = next((label for label, where in results.items()
                              if Path(where).resolve() == Path(current.runs).resolve()), shown[0])
        runs_label = st.selectbox("Results", shown, index=shown.index(current_label), key="sb_runs",
                                  help="Your runs: what `python -m pipeline run` and `evaluate` wrote here. "
                                       "The committed record: the measurements behind the real models.")
        runs = str(results[runs_label])
        choices = {**paths.bundle_choices(), OTHER: None}
        labels = list(choices)
        chosen_label = next((label for label, where in choices.items()
                             if where is not None and Path(where).resolve() == Path(current.bundle).resolve()), OTHER)
        label = st.selectbox("Models that answer", labels, index=labels.index(chosen_label), key="sb_bundle_choice",
                             help="The real bundle answers for real people; the demo bundle shows the method "
                                  "on the synthetic corpus.")
        if choices[label] is None:
            bundle = st.text_input("Bundle folder", value=str(current.bundle), key="sb_bundle",
                                   help=f"A folder written by `python -m pipeline export` (default {default.bundle}).")
        else:
            bundle = str(choices[label])
        kind = st.selectbox("Corpus kind", state.CORPUS_KINDS, key="sb_kind",
                            index=state.CORPUS_KINDS.index(current.corpus_kind))
        root = st.text_input("Corpus folder", value=str(current.corpus_root), key="sb_corpus",
                             help=f"Folder of the corpus shown on Data and Analyze (default {default.corpus_root}).")
        st.caption(f"Answering: **{paths.bundle_label(bundle or default.bundle)}**. The demo models are trained "
                   "on a **synthetic** corpus of drawn faces and synthesised voices; the real models on "
                   "acted RAVDESS speech and FER2013 faces: a teaching tool, not a judge of real people.")
    chosen = state.Settings(runs=Path(runs.strip() or default.runs),
                            bundle=Path(bundle.strip() or default.bundle),
                            corpus_root=Path(root.strip() or default.corpus_root), corpus_kind=kind)
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
