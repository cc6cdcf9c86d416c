"""Compare two clips side by side (for example the same sentence said happily and sadly):
both answers and both explanations on one page, from the same bundle. Thin over
:mod:`dashboard.explain_view`."""
from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import explain_charts, explain_view, failures, folders, state, text
from pipeline.core import media as media_types


def pick(side: str) -> tuple[str, bytes] | None:
    """One uploaded file for ``side`` ("A" or "B"): (name, bytes), or None."""
    limit = st.get_option("server.maxUploadSize")
    file = st.file_uploader(f"Clip {side}", type=media_types.accepted_types(), key=f"compare_{side}",
                            help=f"Accepted: {media_types.accepted_text()} (up to {limit} MB).")
    if file is None:
        return None
    return file.name, file.getvalue()


def column(side: str, name: str, analysis: Any, bundle_dir: str) -> None:
    """One clip's answers and explanation, in its column."""
    st.markdown(f"### {side}: {text.plain(name)}")
    for branch, result in (("audio", analysis.audio), ("video", analysis.video), ("fused", analysis.fused)):
        if result.ok:
            st.markdown(explain_charts.answer_sentence(branch, *result.winner)
                        + (" **Not sure.**" if getattr(result, "confidence", None) == "not sure" else ""))
        else:
            st.markdown(f"{explain_charts.VERBS[branch].split(' ')[1].capitalize()}: no answer ({result.status}).")
    if not (analysis.audio.ok or analysis.video.ok):
        return
    from pipeline.serve.bundle import BundleError

    try:
        ex = explain_view.explanation_of(analysis, bundle_dir)
    except BundleError as err:
        st.info(f"No explanation: the models cannot be loaded ({text.plain(err)}).")
        return
    classes = list(analysis.bundle.get("classes") or analysis.fused.probabilities)
    explain_view.render_plane(ex, classes, f"cmp_{side}")
    if ex.voice is not None:
        st.plotly_chart(explain_charts.cue_bars(ex.voice), width="stretch", key=f"cmp_{side}_cues")
        for g in sorted(ex.voice.groups, key=lambda g: -abs(g.value)):
            st.markdown(f"- {g.sentence}")
    else:
        st.info(f"No cue-group explanation: {ex.voice_note}.")
    if ex.face is not None:
        if ex.face.heatmaps is not None:
            st.image(explain_view.face_overlays(ex, analysis.crops), width=72)
        st.plotly_chart(explain_charts.frame_strip(ex.face.per_frame, ex.face.times, list(ex.face.classes)),
                        width="stretch", key=f"cmp_{side}_strip")
    else:
        st.info(f"No face explanation: {ex.face_note}.")
    explain_view.render_download(analysis, ex, f"cmp_{side}")


def main() -> None:
    st.title("Compare two clips")
    settings = state.settings()
    from pipeline.core.paths import bundle_label

    st.caption("Two takes side by side, for example the same sentence said happily and sadly: both answers "
               f"and why, from the same models (**{bundle_label(settings.bundle)}**).")
    if not state.bundle_exists(settings.bundle):
        st.info(f"No trained models in {text.plain(folders.bundle_name(settings.bundle))} yet. Run `make demo`, then come back.",
                icon=":material/model_training:")
        return
    left, right = st.columns(2)
    with left:
        a = pick("A")
    with right:
        b = pick("B")
    for col, side, chosen in ((left, "A", a), (right, "B", b)):
        if chosen is None:
            continue
        name, data = chosen
        with col:
            try:
                with st.spinner(f"Analysing {text.plain(name)}..."):
                    analysis = state.analyze(data, str(settings.bundle))
            except failures.kinds() as err:  # worded as on Analyze
                st.error(failures.explain(err, name).message)
                continue
            column(side, name, analysis, str(settings.bundle))


main()
