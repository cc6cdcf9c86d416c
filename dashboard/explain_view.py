""""Why this answer" on the Analyze and Compare pages: thin over
:mod:`pipeline.serve.explain` (every number comes from the model that answered) and
:mod:`dashboard.explain_charts` (the figures)."""
from __future__ import annotations

import io
from typing import Any

import numpy as np
import streamlit as st

from pipeline.core import circumplex

from dashboard import explain_charts, text
from dashboard.explain_charts import answer_sentence

def explanation_of(analysis: Any, bundle_dir: str, heatmaps: bool = True) -> Any:
    """The :class:`pipeline.serve.explain.Explanation` of ``analysis``, computed once per
    analysis and session (kept in ``st.session_state`` under the analysis' identity)."""
    from dashboard import state
    from pipeline.serve.explain import explain

    key = ("explain", analysis.source, round(float(analysis.duration), 3),
           round(float(analysis.timings.get("total", 0.0)), 6), bundle_dir, heatmaps)
    cache = st.session_state.setdefault("_explanations", {})
    if key not in cache:
        if len(cache) >= 4:
            cache.pop(next(iter(cache)))
        cache[key] = explain(analysis, state.bundle(bundle_dir), heatmaps=heatmaps)
    return cache[key]


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def face_overlays(ex: Any, crops: np.ndarray, size: int = 96) -> list[np.ndarray]:
    """Each shown crop with its Grad-CAM heatmap laid over it, enlarged to ``size`` px."""
    import cv2

    from pipeline.serve.explain import overlay

    out = []
    for crop, heat in zip(np.asarray(crops), ex.face.heatmaps):
        img = np.asarray(crop, np.uint8)
        img = cv2.resize(img, heat.shape[::-1], interpolation=cv2.INTER_AREA) if img.shape[:2] != heat.shape else img
        out.append(cv2.resize(overlay(img, heat), (size, size), interpolation=cv2.INTER_NEAREST))
    return out


def render_plane(ex: Any, classes: list[str], key: str) -> None:
    st.markdown("**Where the answers sit on the valence x arousal plane**")
    st.plotly_chart(explain_charts.plane(ex.places, ex.path, classes), width="stretch", key=f"{key}_plane")
    st.caption(f"Valence and arousal are {circumplex.DERIVATION}; the models were never trained on valence or "
               f"arousal. Word ratings: {circumplex.SOURCE}. Bars: the probability-weighted spread."
               + (" The grey line is the fused answer's path, window by window." if len(ex.path) > 1 else ""))


def render_voice(ex: Any, analysis: Any, key: str, bundle_dir: str, voice: Any = None,
                 window: tuple[float, float] | None = None) -> None:
    from pipeline.serve.explain import contours

    voice = voice if voice is not None else ex.voice
    st.markdown("**What in the voice**")
    if voice is None:
        st.info(f"No cue-group explanation: {ex.voice_note}.")
        return
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(explain_charts.cue_bars(voice), width="stretch", key=f"{key}_cues")
    with right:
        for g in sorted(voice.groups, key=lambda g: -abs(g.value)):
            st.markdown(f"- {g.sentence}")
    st.caption(f"Each bar: the model's weights for {voice.winner} minus those for {voice.runner_up}, times the "
               f"features standardised by the model ({voice.reference} is 0), summed per group; with the bias "
               f"({voice.intercept:+.2f}) they add up to the difference of the two answers' scores "
               f"({voice.logit_difference:+.2f}; divided by the temperature {voice.temperature:.2f} it is the log "
               "of their probability ratio)."
               + (f" Mean over {voice.windows} windows: pick a window below for its own." if voice.windows > 1 else ""))
    if analysis.waveform is not None and analysis.sample_rate:
        c = contours(analysis.waveform, analysis.sample_rate)
        if c is not None:
            span = window if window is not None else (None if analysis.timeline else _analysed_window(bundle_dir))
            st.plotly_chart(explain_charts.contour_plot(c, span), width="stretch", key=f"{key}_contours")


def _analysed_window(bundle_dir: str) -> tuple[float, float] | None:
    """The analysis window of a one-window clip: the voice model's ``offset`` to
    ``offset + duration`` seconds (of the sound trimmed to speech, when the bundle trims)."""
    from dashboard import state

    branch = getattr(state.bundle(bundle_dir), "audio", None)
    if branch is None:
        return None
    return float(branch.params.offset), float(branch.params.offset + branch.params.duration)


def render_face(ex: Any, analysis: Any, key: str) -> None:
    st.markdown("**Where in the face**")
    if ex.face is None:
        st.info(f"No face explanation: {ex.face_note}.")
        return
    if ex.face.heatmaps is not None:
        images = face_overlays(ex, analysis.crops)
        winners = [ex.face.classes[int(np.argmax(p))] for p in ex.face.per_frame]
        st.image(images, caption=[f"{t:.1f}s: {w}" for t, w in zip(ex.face.times, winners)], width=96)
        st.caption(f"Red: where the face model looked for **{ex.face.target}** ({ex.face.method}).")
    else:
        st.caption(ex.face.method)
    st.plotly_chart(explain_charts.frame_strip(ex.face.per_frame, ex.face.times, list(ex.face.classes)),
                    width="stretch", key=f"{key}_strip")
    st.caption("The clip's face answer pools these per-frame answers (mean log-probability): frames that "
               "rule an emotion out count.")


def render_window(ex: Any, analysis: Any, key: str, bundle_dir: str) -> None:
    """A long clip: the timeline with abstentions, then the chosen window's frames, sound
    and explanation."""
    windows = analysis.timeline
    labels = [f"{w.start:.1f}-{w.end:.1f} s" for w in windows]
    chosen = st.selectbox("Window", range(len(windows)), format_func=lambda i: labels[i], key=f"{key}_window")
    st.plotly_chart(explain_charts.path_timeline(windows, chosen), width="stretch", key=f"{key}_tl")
    w = windows[chosen]
    st.markdown(f"**{labels[chosen]}**: "
                + (answer_sentence("fused", *w.fused.winner) if w.fused.ok
                   else f"no answer (abstains: {w.fused.status})."))
    if analysis.waveform is not None and analysis.sample_rate:
        sr = analysis.sample_rate
        piece = analysis.waveform[int(w.start * sr):int(w.end * sr)]
        if piece.size:
            st.audio(piece, sample_rate=sr)
    if analysis.frames is not None and analysis.frame_times is not None:
        inside = [i for i, t in enumerate(analysis.frame_times) if w.start <= t < w.end]
        if inside:
            st.image([analysis.frames[i] for i in inside], width=120,
                      caption=[f"{analysis.frame_times[i]:.1f}s" for i in inside])
    voice = ex.voice_windows[chosen] if chosen < len(ex.voice_windows) else None
    if voice is not None:
        render_voice(ex, analysis, f"{key}_w{chosen}", bundle_dir, voice=voice, window=(w.start, w.end))
    else:
        st.info(f"The voice did not answer in this window ({w.audio.status}).")


def render(analysis: Any, bundle_dir: str, key: str = "why", number: int = 5) -> Any:
    """The "why this answer" section under an analysis, headed as section ``number`` of
    the page; returns the explanation."""
    if not (analysis.audio.ok or analysis.video.ok):
        return None
    from pipeline.serve.bundle import BundleError

    st.subheader(f"{number}. Why this answer")
    try:
        ex = explanation_of(analysis, bundle_dir)
    except BundleError as err:
        st.info(f"No explanation: it is computed from the models, which cannot be loaded ({text.plain(err)}).")
        return None
    classes = list(analysis.bundle.get("classes") or analysis.fused.probabilities)
    render_plane(ex, classes, key)
    render_voice(ex, analysis, key, bundle_dir)
    render_face(ex, analysis, key)
    if len(analysis.timeline) >= 2:
        st.markdown("**Over time: pick a window to see its frames, hear it and see why**")
        render_window(ex, analysis, key, bundle_dir)
    st.caption(f"Explaining took {ex.seconds:.2f} s.")
    render_download(analysis, ex, key)
    return ex


def render_download(analysis: Any, ex: Any, key: str) -> None:
    """A download button for the self-contained HTML handout of this analysis."""
    from dashboard import handout

    overlays = face_overlays(ex, analysis.crops) if ex.face is not None and ex.face.heatmaps is not None else []
    page = handout.build(analysis, ex, overlays)
    name = str(analysis.source).replace("\\", "/").split("/")[-1].rsplit(".", 1)[0] or "clip"
    st.download_button("Download this analysis (HTML handout, works offline)", page.encode("utf-8"),
                       file_name=f"why-{name}.html", mime="text/html", key=f"{key}_handout")
