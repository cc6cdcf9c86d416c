"""Figures of "why this answer": pure functions, explanation records in, Plotly figures
(or uint8 images) out; no Streamlit, so each is unit-tested on its own."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from pipeline.core import circumplex

from dashboard.charts import EMOTION_COLOURS, _colour, _layout

#: How each branch's answer is said: the voice sounds, the face looks, the fused answer
#: comes across as.
VERBS: dict[str, str] = {"audio": "The voice sounds", "video": "The face looks",
                         "fused": "The fused answer comes across as"}


def answer_sentence(branch: str, emotion: str, probability: float, bundle_name: str = "") -> str:
    """One plain sentence naming the branch's answer, e.g. "The voice sounds **sad**
    (22% sure)"; ``bundle_name`` (when given) names the models that said it."""
    who = f", according to the **{bundle_name}** models" if bundle_name else ""
    return f"{VERBS.get(branch, 'The answer is')} **{emotion}** ({100 * probability:.0f}% sure){who}."


#: Marker colour of each answer on the plane.
ANSWER_COLOURS: dict[str, str] = {"audio": "#3c6fb6", "video": "#e07b39", "fused": "#222222"}
ANSWER_NAMES: dict[str, str] = {"audio": "voice", "video": "face", "fused": "fused answer"}


def plane(places: Mapping[str, circumplex.Place | None], path: Sequence[circumplex.Place | None] = (),
          classes: Sequence[str] | None = None, *, title: str = "Valence and arousal") -> go.Figure:
    """The valence x arousal plane: each class's rated word (grey), each answer with its
    spread (error bars, one standard deviation) and a long clip's ``path`` (the fused
    answer window by window, abstaining windows left out)."""
    fig = go.Figure()
    words = [c for c in (classes or circumplex.RATINGS_1_9) if c in circumplex.RATINGS_1_9]
    xy = [circumplex.coordinates(c) for c in words]
    fig.add_trace(go.Scatter(x=[p[0] for p in xy], y=[p[1] for p in xy], mode="markers+text", text=words,
                             textposition="top center", name="emotion words (rated)",
                             marker=dict(size=9, color=[EMOTION_COLOURS.get(c, "#999") for c in words],
                                         opacity=0.55, symbol="diamond")))
    steps = [(i, p) for i, p in enumerate(path) if p is not None]
    if len(steps) >= 2:
        fig.add_trace(go.Scatter(x=[p.valence for _, p in steps], y=[p.arousal for _, p in steps],
                                 mode="lines+markers", name="path over time (fused, per window)",
                                 text=[f"window {i + 1}" for i, _ in steps],
                                 line=dict(color="#888", width=1.5), marker=dict(size=6, color="#888")))
    for key, p in places.items():
        if p is None:
            continue
        fig.add_trace(go.Scatter(
            x=[p.valence], y=[p.arousal], mode="markers", name=ANSWER_NAMES.get(key, key),
            error_x=dict(type="data", array=[p.valence_sd], visible=True, thickness=1),
            error_y=dict(type="data", array=[p.arousal_sd], visible=True, thickness=1),
            marker=dict(size=14, color=ANSWER_COLOURS.get(key, "#444"), symbol="circle")))
    fig.add_hline(y=0, line_width=1, line_color="#ccc")
    fig.add_vline(x=0, line_width=1, line_color="#ccc")
    fig.update_xaxes(range=[-1.05, 1.05], title="valence (unpleasant -> pleasant)", zeroline=False)
    fig.update_yaxes(range=[-1.05, 1.05], title="arousal (calm -> excited)", zeroline=False, scaleanchor="x")
    return _layout(fig, title, height=460)


def cue_bars(voice: Any, *, title: str | None = None) -> go.Figure:
    """Signed horizontal bars: each cue group's contribution (logit units) toward the
    winner (right) or the runner-up (left)."""
    groups = sorted(voice.groups, key=lambda g: abs(g.value))
    colours = [_colour(voice.winner) if g.value >= 0 else _colour(voice.runner_up) for g in groups]
    fig = go.Figure(go.Bar(x=[g.value for g in groups], y=[g.name for g in groups], orientation="h",
                           marker_color=colours, text=[f"{g.value:+.2f}" for g in groups], textposition="auto",
                           hovertext=[g.sentence for g in groups], hoverinfo="text"))
    fig.add_vline(x=0, line_width=1, line_color="#888")
    fig.update_xaxes(title=f"<- toward {voice.runner_up}   |   toward {voice.winner} ->  (logit units)")
    return _layout(fig, title or f"What in the voice: {voice.winner} rather than {voice.runner_up}", height=340)


def contour_plot(c: Any, window: tuple[float, float] | None = None, *, title: str = "Pitch and loudness") -> go.Figure:
    """Pitch (semitones, left axis) and loudness (right axis) over time, the analysed
    window shaded."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=c.times, y=c.pitch, name="pitch (semitones above 27.5 Hz)", mode="lines",
                             line=dict(color="#3c6fb6"), connectgaps=False))
    fig.add_trace(go.Scatter(x=c.times, y=c.loudness, name="loudness", mode="lines", yaxis="y2",
                             line=dict(color="#e07b39", width=1)))
    if window is not None:
        fig.add_vrect(x0=window[0], x1=window[1], fillcolor="#f2b01e", opacity=0.15, line_width=0,
                      annotation_text="analysed window", annotation_position="top left")
    fig.update_layout(yaxis=dict(title="pitch (st)"), yaxis2=dict(title="loudness", overlaying="y", side="right"),
                      xaxis=dict(title="time (s)"))
    return _layout(fig, title, height=300)


def frame_strip(per_frame: np.ndarray, times: np.ndarray, classes: Sequence[str], *,
                title: str = "The face model, frame by frame") -> go.Figure:
    """Stacked bars: each shown frame's probabilities (the strip under the frames; the
    clip's face answer pools them)."""
    fig = go.Figure()
    labels = [f"{t:.1f}s" for t in times]
    for k, c in enumerate(classes):
        fig.add_trace(go.Bar(x=labels, y=per_frame[:, k], name=c, marker_color=_colour(c)))
    fig.update_layout(barmode="stack", yaxis=dict(range=[0, 1], title="probability"))
    return _layout(fig, title, height=260)


def path_timeline(windows: Sequence[Any], selected: int | None = None, *,
                  title: str = "The fused answer, window by window") -> go.Figure:
    """One bar per window (its fused winner's probability, its colour), abstaining windows
    drawn as grey hatched bars labelled with why; ``selected`` outlined."""
    fig = go.Figure()
    for i, w in enumerate(windows):
        top = w.fused.winner if w.fused.ok else None
        fig.add_trace(go.Bar(
            x=[(w.start + w.end) / 2], y=[top[1] if top else 1.0], width=[(w.end - w.start) * 0.95],
            marker=dict(color=_colour(top[0]) if top else "#dddddd",
                        pattern=dict(shape="" if top else "/"),
                        line=dict(width=3 if i == selected else 0, color="#000")),
            text=[top[0] if top else f"abstains: {w.fused.status}"], textposition="inside",
            hovertext=[f"{w.start:.1f}-{w.end:.1f} s: " + (f"{top[0]} {top[1]:.0%}" if top
                                                            else f"abstains ({w.fused.status})")],
            hoverinfo="text", showlegend=False))
    fig.update_xaxes(title="time (s)")
    fig.update_yaxes(range=[0, 1], title="winner's probability")
    return _layout(fig, title, height=240)
