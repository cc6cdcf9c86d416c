"""A self-contained HTML handout of one analysis: the answers, the pictures (base64 PNG),
the explanation and the bundle with its measured accuracy, readable offline (the Plotly
library is inlined once, ~3.5 MB). Pure: records in, one HTML string out."""
from __future__ import annotations

import base64
import html
import io
from typing import Any, Sequence

import numpy as np

from pipeline.core import circumplex

from dashboard import explain_charts


def png_data_uri(image: np.ndarray) -> str:
    """``data:image/png;base64,...`` of an (h, w[, 3]) uint8 image."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _answer(label: str, verb: str, result: Any) -> str:
    if not result.ok:
        return f"<li><b>{html.escape(label)}</b>: no answer ({html.escape(str(result.status))}).</li>"
    emotion, p = result.winner
    sure = " Not sure." if getattr(result, "confidence", None) == "not sure" else ""
    ranked = sorted(result.probabilities.items(), key=lambda kv: -kv[1])[1:3]
    rest = ", ".join(f"{html.escape(k)} {v:.0%}" for k, v in ranked)
    return (f"<li><b>{html.escape(label)}</b>: {html.escape(verb)} <b>{html.escape(emotion)}</b> "
            f"({p:.0%}; then {rest}).{sure}</li>")


def build(analysis: Any, explanation: Any, crops_with_heat: Sequence[np.ndarray] = (), *,
          title: str = "Why this answer") -> str:
    """The handout's HTML for ``analysis`` and its ``explanation``
    (:class:`pipeline.serve.explain.Explanation`); ``crops_with_heat``: the face crops
    with their heatmaps laid over (uint8 RGB)."""
    info = analysis.bundle or {}
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
             "img{margin:2px;image-rendering:pixelated}td,th{padding:2px 8px;text-align:left}"
             ".note{color:#555;font-size:90%}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p class='note'>{html.escape(str(analysis.source).split('/')[-1])}: {analysis.duration:.1f} s, "
             f"analysed by bundle <b>{html.escape(str(info.get('name', '?')))}</b> "
             f"(<code>{html.escape(str(info.get('id', '?')))}</code>).</p>",
             "<h2>The answers</h2><ul>",
             _answer("Voice", explain_charts.VERBS["audio"], analysis.audio),
             _answer("Face", explain_charts.VERBS["video"], analysis.video),
             _answer("Fused", explain_charts.VERBS["fused"], analysis.fused), "</ul>"]
    if analysis.frames is not None and len(analysis.frames):
        parts.append("<h2>What the system saw</h2><p>"
                     + "".join(f"<img src='{png_data_uri(f)}' width='160' alt='frame'>" for f in analysis.frames[:8])
                     + "</p>")
    first = True

    def figure(fig: Any) -> str:
        nonlocal first
        out = fig.to_html(full_html=False, include_plotlyjs="inline" if first else False)
        first = False
        return out

    classes = list(info.get("classes") or analysis.fused.probabilities)
    parts += ["<h2>Valence and arousal</h2>", figure(explain_charts.plane(explanation.places, explanation.path, classes)),
              f"<p class='note'>{html.escape(circumplex.DERIVATION)}; the models were never trained on valence "
              f"or arousal. Word ratings: {html.escape(circumplex.SOURCE)}.</p>"]
    voice = explanation.voice
    parts.append("<h2>What in the voice</h2>")
    if voice is not None:
        parts += [figure(explain_charts.cue_bars(voice)), "<ul>"]
        parts += [f"<li>{html.escape(g.sentence)}</li>" for g in sorted(voice.groups, key=lambda g: -abs(g.value))]
        parts.append(f"</ul><p class='note'>Contributions to the score of {html.escape(voice.winner)} minus that of "
                     f"{html.escape(voice.runner_up)} ({voice.logit_difference:+.2f}, bias {voice.intercept:+.2f}), "
                     "from the linear voice model's own weights.</p>")
    else:
        parts.append(f"<p>{html.escape(explanation.voice_note)}</p>")
    parts.append("<h2>Where in the face</h2>")
    face = explanation.face
    if face is not None:
        if len(crops_with_heat):
            winners = [face.classes[int(np.argmax(p))] for p in face.per_frame]
            parts.append("<p>" + "".join(
                f"<img src='{png_data_uri(c)}' width='96' title='{t:.1f}s: {html.escape(w)}' alt='{html.escape(w)}'>"
                for c, t, w in zip(crops_with_heat, face.times, winners)) + "</p>")
            parts.append(f"<p class='note'>Red: where the face model looked for {html.escape(face.target)} "
                         f"({html.escape(face.method)}).</p>")
        parts.append(figure(explain_charts.frame_strip(face.per_frame, face.times, list(face.classes))))
    else:
        parts.append(f"<p>{html.escape(explanation.face_note)}</p>")
    if len(analysis.timeline) >= 2:
        parts += ["<h2>Over time</h2>", figure(explain_charts.path_timeline(analysis.timeline))]
    parts.append("<h2>The models and their measured accuracy</h2><table><tr><th>branch</th><th>model</th>"
                 "<th>held-out accuracy</th><th>protocol</th></tr>")
    for branch in ("audio", "video", "fusion"):
        meta = info.get(branch)
        if isinstance(meta, dict):
            parts.append(f"<tr><td>{branch}</td><td>{html.escape(str(meta.get('model', '')))}</td>"
                         f"<td>{html.escape(str(meta.get('accuracy', 'not measured')))}</td>"
                         f"<td>{html.escape(str(meta.get('protocol', '')))}</td></tr>")
    parts.append("</table><p class='note'>A teaching tool: these models learned from acted or posed data "
                 "and are not a judge of real people.</p></body></html>")
    return "".join(parts)
