"""Plotly figure builders and small table shapers for the dashboard.

Pure functions: arrays / DataFrames in, ``plotly.graph_objects.Figure`` (or a
DataFrame / uint8 image) out, no Streamlit, no file access, so each one is unit-tested
on its own and pages only place the figures.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

#: One stable colour per emotion so every chart on every page agrees.
EMOTION_COLOURS: dict[str, str] = {
    "neutral": "#8c8c8c", "calm": "#4aa3a2", "happy": "#f2b01e", "sad": "#3c6fb6",
    "angry": "#d1453b", "fearful": "#8a5cb8", "disgust": "#6b8e23", "surprised": "#e07b39",
}
PROTOCOL_COLOURS: dict[str, str] = {"random": "#e07b39", "speaker": "#3c6fb6"}
METRICS: tuple[str, ...] = ("accuracy", "uar", "macro_f1", "ece")
METRIC_NAMES: dict[str, str] = {"accuracy": "Accuracy", "uar": "UAR (balanced accuracy)",
                                "macro_f1": "Macro F1", "ece": "Calibration error (ECE)"}


def _colour(emotion: str) -> str:
    return EMOTION_COLOURS.get(emotion, "#636efa")


def _layout(fig: go.Figure, title: str, height: int = 320) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=50, r=20, t=50, b=40),
                      template="plotly_white")
    return fig


# --------------------------------------------------------------------------- audio
def envelope(y: np.ndarray, max_points: int = 2000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min/max envelope of a waveform in ``max_points`` buckets.

    y: (n,) samples. Returns (bucket index start, min, max), each (m,), m <= max_points,
    so a 10-minute clip draws as fast as a 1-second one and peaks are kept.
    """
    y = np.asarray(y, dtype=np.float32).reshape(-1)
    if y.size == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    step = max(1, int(np.ceil(y.size / max_points)))
    n = int(np.ceil(y.size / step))
    padded = np.pad(y, (0, n * step - y.size), mode="edge").reshape(n, step)
    return np.arange(n) * step, padded.min(axis=1), padded.max(axis=1)


def waveform(y: np.ndarray, sample_rate: int, *, window: tuple[float, float] | None = None,
             max_points: int = 2000) -> go.Figure:
    """Waveform (amplitude vs time in seconds); ``window`` shades the analysed span."""
    if sample_rate <= 0:
        raise ValueError("sample_rate must be positive")
    start, lo, hi = envelope(y, max_points)
    t = start / float(sample_rate)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=t, y=hi, mode="lines", line=dict(width=0.8, color="#3c6fb6"),
                             name="peak", showlegend=False))
    fig.add_trace(go.Scatter(x=t, y=lo, mode="lines", line=dict(width=0.8, color="#3c6fb6"),
                             fill="tonexty", name="trough", showlegend=False))
    if window is not None:
        fig.add_vrect(x0=window[0], x1=window[1], fillcolor="#f2b01e", opacity=0.15,
                      line_width=0, annotation_text="analysed window",
                      annotation_position="top left")
    fig.update_xaxes(title="time (s)")
    peak = float(max(np.abs(lo).max(), np.abs(hi).max())) if len(hi) else 1.0
    fig.update_yaxes(title="amplitude", range=[-1.05, 1.05] if peak <= 1.0 else None)
    return _layout(fig, "Waveform", 240)


def mfcc_heatmap(mfcc: np.ndarray, times: np.ndarray | None = None, *,
                 sample_rate: int | None = None, hop_length: int | None = None,
                 offset: float = 0.0) -> go.Figure:
    """MFCC heatmap: x = time (s), y = coefficient index (0 = overall loudness).

    mfcc: (n_mfcc, T). Times come from ``times`` (T,) or from ``hop_length /
    sample_rate`` frames starting at ``offset`` s.
    """
    mfcc = np.asarray(mfcc, dtype=float)
    if mfcc.ndim != 2 or mfcc.size == 0:
        raise ValueError(f"mfcc must be a non-empty (n_mfcc, T) matrix, got shape {mfcc.shape}")
    if times is None:
        if not sample_rate or not hop_length:
            raise ValueError("give times or sample_rate and hop_length")
        times = offset + np.arange(mfcc.shape[1]) * hop_length / float(sample_rate)
    times = np.asarray(times, dtype=float)
    if times.shape[0] != mfcc.shape[1]:
        raise ValueError(f"{times.shape[0]} times for {mfcc.shape[1]} MFCC frames")
    # Coefficient 0 (overall loudness) is an order of magnitude larger than the rest:
    # the colour range follows coefficients 1+ so their pattern shows; row 0 saturates.
    body = mfcc[1:] if mfcc.shape[0] > 1 else mfcc
    zmin, zmax = (float(v) for v in np.percentile(body, [1, 99]))
    fig = go.Figure(go.Heatmap(z=mfcc, x=times, y=np.arange(mfcc.shape[0]), colorscale="Viridis",
                               zmin=zmin, zmax=zmax if zmax > zmin else zmin + 1.0,
                               colorbar=dict(title="value"),
                               hovertemplate="t=%{x:.2f} s<br>coef %{y}<br>%{z:.1f}<extra></extra>"))
    fig.update_xaxes(title="time (s)")
    fig.update_yaxes(title="MFCC coefficient index")
    return _layout(fig, "MFCC heatmap", 320)


# --------------------------------------------------------------------------- predictions
def probability_bars(probabilities: Mapping[str, float], title: str = "Probabilities", *,
                     classes: Sequence[str] | None = None) -> go.Figure:
    """Horizontal bars of class probabilities (0-100 %), the winner outlined.

    ``classes`` fixes the bar order (label-set order); empty probabilities give an
    empty chart with a 'no answer' note rather than an error.
    """
    names = list(classes) if classes else list(probabilities)
    values = [100.0 * float(probabilities.get(c, 0.0)) for c in names]
    fig = go.Figure()
    if names and probabilities:
        best = int(np.argmax(values))
        fig.add_trace(go.Bar(
            x=values, y=names, orientation="h", marker_color=[_colour(c) for c in names],
            marker_line=dict(width=[3 if i == best else 0 for i in range(len(names))], color="black"),
            text=[f"{v:.0f}%" for v in values], textposition="outside",
            hovertemplate="%{y}: %{x:.1f}%<extra></extra>"))
    else:
        fig.add_annotation(text="no answer", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(title="probability (%)", range=[0, 110])
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, 60 + 32 * max(len(names), 3))


def timeline(windows: Sequence[Any], *, branch: str = "fused",
             classes: Sequence[str] | None = None, cursor: float | None = None) -> go.Figure:
    """Stacked area of a branch's probabilities over the windows of a long clip.

    windows: objects with ``start``, ``end`` (s) and ``audio``/``video``/``fused``
    BranchResults (``pipeline.serve.analysis.TimelineWindow``); abstaining windows are gaps.
    ``cursor`` (s) draws a vertical line at the selected moment.
    """
    if not windows:
        raise ValueError("timeline needs at least one window")
    if classes is None:
        seen: list[str] = []
        for w in windows:
            for c in getattr(w, branch).probabilities:
                if c not in seen:
                    seen.append(c)
        classes = seen
    mids = [(w.start + w.end) / 2.0 for w in windows]
    fig = go.Figure()
    for c in classes:
        ys = [100.0 * getattr(w, branch).probabilities[c] if getattr(w, branch).probabilities else None
              for w in windows]
        fig.add_trace(go.Scatter(x=mids, y=ys, name=c, mode="lines", stackgroup="p",
                                 line=dict(width=0.5, color=_colour(c)),
                                 hovertemplate=f"{c}: %{{y:.0f}}%<extra></extra>"))
    if cursor is not None:
        fig.add_vline(x=cursor, line_width=2, line_dash="dash", line_color="black")
    fig.update_xaxes(title="time (s)")
    fig.update_yaxes(title="probability (%)", range=[0, 100])
    return _layout(fig, f"Emotion over time ({branch})", 300)


def draw_boxes(frames: np.ndarray, boxes: Sequence[tuple[float, float, float, float] | None],
               *, thickness: int = 2, colour: tuple[int, int, int] = (0, 255, 0)) -> np.ndarray:
    """Copy of ``frames`` (n, H, W, 3) uint8 with each frame's face box outlined."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (n, H, W, 3), got shape {frames.shape}")
    out = frames.copy()
    h, w = frames.shape[1:3]
    for i, box in enumerate(list(boxes)[: len(frames)]):
        if box is None:
            continue
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        x0, x1 = sorted((max(0, min(w - 1, x0)), max(0, min(w - 1, x1))))
        y0, y1 = sorted((max(0, min(h - 1, y0)), max(0, min(h - 1, y1))))
        t = max(1, thickness)
        out[i, y0:y0 + t, x0:x1 + 1] = colour
        out[i, max(y0, y1 - t + 1):y1 + 1, x0:x1 + 1] = colour
        out[i, y0:y1 + 1, x0:x0 + t] = colour
        out[i, y0:y1 + 1, max(x0, x1 - t + 1):x1 + 1] = colour
    return out


# --------------------------------------------------------------------------- results
def confusion_matrix(matrix: Sequence[Sequence[float]] | np.ndarray, classes: Sequence[str], *,
                     normalise: bool = False, title: str | None = None) -> go.Figure:
    """Confusion-matrix heatmap, rows = true class, columns = predicted.

    ``normalise`` divides each row by its total (recall per class, 0-1); empty rows stay 0.
    """
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] != len(classes):
        raise ValueError(f"confusion matrix of shape {m.shape} does not fit {len(classes)} classes")
    if normalise:
        totals = m.sum(axis=1, keepdims=True)
        m = np.divide(m, totals, out=np.zeros_like(m), where=totals > 0)
        text = [[f"{v:.2f}" for v in row] for row in m]
    else:
        text = [[f"{int(round(v))}" for v in row] for row in m]
    fig = go.Figure(go.Heatmap(
        z=m, x=list(classes), y=list(classes), colorscale="Blues", text=text,
        texttemplate="%{text}", zmin=0, zmax=1 if normalise else None,
        hovertemplate="true %{y}<br>predicted %{x}<br>%{text}<extra></extra>"))
    fig.update_xaxes(title="predicted", side="bottom")
    fig.update_yaxes(title="true", autorange="reversed")
    default = "Confusion matrix (row-normalised)" if normalise else "Confusion matrix (counts)"
    return _layout(fig, title or default, 420)


def learning_curves(history: pd.DataFrame, *, metric: str = "accuracy") -> go.Figure:
    """Training and validation ``metric`` (or ``loss``) per epoch, one line pair per fold.

    history: columns ``epoch``, ``metric``, optional ``val_<metric>`` and ``fold``.
    """
    if history is None or history.empty or "epoch" not in history or metric not in history:
        raise ValueError(f"history has no epoch/{metric} columns")
    frame = history if "fold" in history else history.assign(fold="all")
    fig = go.Figure()
    for i, (fold, part) in enumerate(frame.groupby("fold", sort=True)):
        part = part.sort_values("epoch")
        colour = f"hsl({(i * 67) % 360},60%,45%)"
        fig.add_trace(go.Scatter(x=part["epoch"], y=part[metric], mode="lines", name=f"{fold} train",
                                 line=dict(color=colour), legendgroup=str(fold)))
        if f"val_{metric}" in part and part[f"val_{metric}"].notna().any():
            fig.add_trace(go.Scatter(x=part["epoch"], y=part[f"val_{metric}"], mode="lines",
                                     name=f"{fold} validation", legendgroup=str(fold),
                                     line=dict(color=colour, dash="dash")))
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title=metric)
    return _layout(fig, f"Learning curves ({metric})", 340)


def reliability_bins(y_true: Sequence[str] | np.ndarray, probabilities: np.ndarray,
                     classes: Sequence[str], n_bins: int = 10) -> pd.DataFrame:
    """Bin predictions by confidence: one row per non-empty bin.

    probabilities: (n, n_classes) in ``classes`` order. Columns: ``lo, hi, confidence``
    (mean top probability), ``accuracy`` (fraction correct), ``count``.
    """
    probs = np.asarray(probabilities, dtype=float)
    if probs.ndim != 2 or probs.shape[1] != len(classes) or probs.shape[0] != len(y_true):
        raise ValueError("probabilities must be (n_clips, n_classes) matching y_true and classes")
    conf = probs.max(axis=1)
    pred = np.asarray(classes, dtype=object)[probs.argmax(axis=1)]
    correct = pred == np.asarray(y_true, dtype=object)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        mask = which == b
        if mask.any():
            rows.append({"lo": edges[b], "hi": edges[b + 1], "confidence": float(conf[mask].mean()),
                         "accuracy": float(correct[mask].mean()), "count": int(mask.sum())})
    return pd.DataFrame(rows, columns=["lo", "hi", "confidence", "accuracy", "count"])


def reliability_diagram(bins: pd.DataFrame, *, title: str = "Calibration") -> go.Figure:
    """Accuracy vs confidence per bin against the diagonal of perfect calibration."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                             line=dict(dash="dot", color="grey")))
    if not bins.empty:
        fig.add_trace(go.Scatter(x=bins["confidence"], y=bins["accuracy"], mode="lines+markers",
                                 name="model", marker=dict(size=6 + 14 * bins["count"] / bins["count"].max()),
                                 customdata=bins["count"],
                                 hovertemplate="confidence %{x:.2f}<br>accuracy %{y:.2f}<br>%{customdata} clips<extra></extra>"))
    fig.update_xaxes(title="confidence (top probability)", range=[0, 1])
    fig.update_yaxes(title="fraction correct", range=[0, 1.02])
    return _layout(fig, title, 340)


def protocol_gap(summary: pd.DataFrame, metric: str = "accuracy") -> go.Figure:
    """Grouped bars per variant: ``random`` vs ``speaker`` protocol, gap annotated.

    summary: rows with ``variant, protocol, <metric>_mean, <metric>_std`` (fractions).
    The annotation is random minus speaker in percentage points: how much the same
    actors in train and test inflate the number.
    """
    col = f"{metric}_mean"
    if summary.empty or col not in summary:
        raise ValueError(f"summary has no {col} column")
    fig = go.Figure()
    variants = list(dict.fromkeys(summary["variant"]))
    for protocol in ("random", "speaker"):
        part = summary[summary["protocol"] == protocol].set_index("variant")
        if part.empty:
            continue
        ys = [100 * part[col].get(v, np.nan) for v in variants]
        std = part.get(f"{metric}_std")
        err = [100 * std.get(v, 0.0) if std is not None else 0.0 for v in variants]
        fig.add_trace(go.Bar(x=variants, y=ys, name=f"{protocol} split",
                             error_y=dict(type="data", array=err),
                             marker_color=PROTOCOL_COLOURS.get(protocol)))
    for v, g in gap_table(summary, metric).iterrows():
        if np.isfinite(g["gap"]):
            fig.add_annotation(x=v, y=100 * max(g["random"], g["speaker"]) + 6,
                               text=f"+{100 * g['gap']:.1f} pts" if g["gap"] >= 0 else f"{100 * g['gap']:.1f} pts",
                               showarrow=False, font=dict(color="#d1453b"))
    fig.update_layout(barmode="group")
    fig.update_yaxes(title=f"{METRIC_NAMES.get(metric, metric)} (%)", range=[0, 115])
    return _layout(fig, f"Random split vs speaker-independent ({METRIC_NAMES.get(metric, metric)})", 360)


def travel_bars(table: pd.DataFrame, metric: str = "uar", reference: dict[str, float] | None = None) -> go.Figure:
    """Grouped bars per variant: the speaker-independent figure beside each held-out
    corpus (leave-one-corpus-out), so a model that only knows its corpus shows at once.

    table: :func:`pipeline.research.store.travel` rows (``variant, test, <metric>``,
    fractions). ``reference``: optional dashed lines, label -> fraction (e.g. chance).
    """
    if table.empty or metric not in table:
        raise ValueError(f"no leave-one-corpus-out rows with {metric}")
    fig = go.Figure()
    variants = list(dict.fromkeys(table["variant"]))
    palette = ["#3c6fb6", "#2a9d8f", "#e9c46a", "#e76f51", "#8d6cab"]
    for i, test in enumerate(dict.fromkeys(table["test"])):
        part = table[table["test"] == test].set_index("variant")[metric]
        fig.add_trace(go.Bar(x=variants, y=[100 * part.get(v, np.nan) for v in variants], name=test,
                             marker_color=palette[i % len(palette)],
                             hovertemplate=f"{test}<br>%{{x}}: %{{y:.1f}}%<extra></extra>"))
    for label, value in (reference or {}).items():
        fig.add_hline(y=100 * value, line_dash="dash", line_color="#888",
                      annotation_text=label, annotation_position="top left")
    fig.update_layout(barmode="group")
    fig.update_yaxes(title=f"{METRIC_NAMES.get(metric, metric)} (%)", range=[0, 100])
    return _layout(fig, f"Does it travel? Speaker-independent vs held-out corpora ({METRIC_NAMES.get(metric, metric)})",
                   380)


def gap_table(summary: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Per variant: ``random``, ``speaker`` means and ``gap`` = random - speaker (NaN
    where a protocol is missing). Index: variant, in first-seen order."""
    col = f"{metric}_mean"
    wide = summary.pivot_table(index="variant", columns="protocol", values=col, aggfunc="mean")
    for p in ("random", "speaker"):
        if p not in wide:
            wide[p] = np.nan
    order = list(dict.fromkeys(summary["variant"]))
    out = wide.reindex(order)[["random", "speaker"]]
    out["gap"] = out["random"] - out["speaker"]
    out.columns.name = None
    return out


def summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The results store summary as a display table: metrics in %, mean and '± std'.

    Numeric mean columns stay numeric (so the table sorts), each followed by a text
    '± std' column; rows ordered by group, variant, protocol like the report's tables.
    """
    if summary.empty:
        return pd.DataFrame(columns=["group", "variant", "protocol"])
    keep = [c for c in ("group", "variant", "branch", "model", "protocol", "n_folds") if c in summary]
    out = summary[keep].copy()
    for m in METRICS:
        if f"{m}_mean" in summary:
            out[METRIC_NAMES[m] + " %"] = (100 * summary[f"{m}_mean"].astype(float)).round(2)
            out[METRIC_NAMES[m] + " ±"] = (100 * summary[f"{m}_std"].astype(float).fillna(0.0)).map(
                lambda s: f"± {s:.2f}")
    sort = [c for c in ("group", "variant", "protocol") if c in out]
    return out.sort_values(sort, kind="stable").reset_index(drop=True)


def classification_report_table(report: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """``metrics.json`` report ({class: {precision, recall, f1, support}}) as a table."""
    rows = [{"class": c, "precision": v.get("precision"), "recall": v.get("recall"),
             "f1": v.get("f1", v.get("f1-score")), "support": v.get("support")}
            for c, v in report.items() if isinstance(v, Mapping)]
    return pd.DataFrame(rows, columns=["class", "precision", "recall", "f1", "support"])


def mean_report(metrics: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Average the per-fold classification reports of one variant (support summed)."""
    frames = [classification_report_table(m.get("report", {})) for m in metrics if m.get("report")]
    if not frames:
        return classification_report_table({})
    both = pd.concat(frames)
    out = both.groupby("class", sort=False).agg(precision=("precision", "mean"), recall=("recall", "mean"),
                                                f1=("f1", "mean"), support=("support", "sum"))
    return out.reset_index()


def summed_confusion(metrics: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, list[str]]:
    """Sum the fold confusion matrices of one variant (same classes in every fold)."""
    usable = [m for m in metrics if m.get("confusion") is not None and m.get("classes")]
    if not usable:
        raise ValueError("no fold has a confusion matrix")
    classes = list(usable[0]["classes"])
    total = np.zeros((len(classes), len(classes)))
    for m in usable:
        if list(m["classes"]) != classes:
            raise ValueError("folds disagree on the class order")
        total += np.asarray(m["confusion"], dtype=float)
    return total, classes


def blank_single_fold_spread(table: pd.DataFrame) -> pd.DataFrame:
    """A :func:`summary_table` with the '± std' cells of one-fold rows (a single
    held-out split, one evaluation) replaced by 'one split': a std of 0.00 there would
    read as 'no spread', when there is simply nothing to measure it on."""
    if "n_folds" not in table or table.empty:
        return table
    out = table.copy()
    single = out["n_folds"].astype(float) <= 1
    for col in [c for c in out.columns if str(c).endswith(" ±")]:
        out.loc[single, col] = "one split"
    return out


# --------------------------------------------------------------------------- cross-corpus
#: What :func:`seen_in_training` answers (the table's "seen in training" column).
SEEN_YES = "yes: its training folder (in-sample)"
SEEN_MAYBE = "maybe: same corpus, other folder"
SEEN_NO = "no: another corpus"
SEEN_UNKNOWN = "unknown"
SEEN_HELD_OUT = "no: its training corpus, held-out actors"


def seen_in_training(corpus: str, root: str, branch: str,
                     training: Mapping[str, Mapping[str, str]]) -> str:
    """Whether an evaluation scored a bundle on the data its models were trained on.

    corpus, root: the evaluated corpus name and its (resolved) folder; branch:
    ``audio``, ``video`` or ``fused`` (both models count); training: branch ->
    ``{"corpus", "root"}`` the bundle's models were trained on (missing = unknown).
    The same folder means in-sample (unless the chosen actors were kept out of
    training); the same corpus name in another folder may or may not overlap.
    """
    needed = ["audio", "video"] if branch == "fused" else [branch]
    known = [training[b] for b in needed if b in training]
    if not known:
        return SEEN_UNKNOWN
    if root and any(t.get("root") and str(t["root"]) == str(root) for t in known):
        return SEEN_YES
    if any(t.get("corpus") and str(t["corpus"]) == str(corpus) for t in known):
        return SEEN_MAYBE
    return SEEN_NO if len(known) == len(needed) else SEEN_UNKNOWN


EVALUATION_COLUMNS: tuple[str, ...] = (
    "run", "bundle", "corpus", "folder", "branch", "actors", "seen in training", "n scored",
    "skipped", "accuracy %", "UAR %", "macro-F1 %", "ECE %")


def _seen(metrics: Mapping[str, Any], by_folder: str) -> str:
    """The run's own in-sample verdict (``evaluate`` compares the clips with the actors
    and folder each branch was trained on) where it has one, else the folder test."""
    if "in_sample" not in metrics:
        return by_folder
    if metrics["in_sample"]:
        return SEEN_YES
    return SEEN_HELD_OUT if by_folder == SEEN_YES else by_folder


def evaluation_table(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per ``python -m pipeline evaluate`` run, for a sortable table.

    records: ``{"run", "config", "metrics", "training", "root"}`` (the run's
    ``config.yaml`` and ``metrics.json``, what the bundle was trained on, the resolved
    corpus folder). Metrics become numeric percentages (1 decimal) so columns sort.
    """
    rows = []
    for record in records:
        config = record.get("config") or {}
        metrics = record.get("metrics") or {}
        bundle = config.get("bundle") if isinstance(config.get("bundle"), Mapping) else {}
        corpus = config.get("corpus") if isinstance(config.get("corpus"), Mapping) else {}
        name = str(corpus.get("name") or metrics.get("corpus") or "?")
        branch = str(config.get("branch") or metrics.get("branch") or "?")
        skipped = metrics.get("skipped") if isinstance(metrics.get("skipped"), Mapping) else {}
        row: dict[str, Any] = {
            "run": str(record.get("run", "")),
            "bundle": str(bundle.get("name") or metrics.get("model") or "?"),
            "corpus": name, "folder": str(corpus.get("root") or ""), "branch": branch,
            "actors": str(config.get("actors") or "all"),
            "seen in training": _seen(metrics, seen_in_training(name, str(record.get("root") or ""), branch,
                                                                record.get("training") or {})),
            "n scored": int(metrics.get("n_test", 0) or 0),
            "skipped": int(metrics.get("n_skipped", sum(int(v) for v in skipped.values())) or 0)}
        for key, col in (("accuracy", "accuracy %"), ("uar", "UAR %"), ("macro_f1", "macro-F1 %"),
                         ("ece", "ECE %")):
            value = metrics.get(key)
            row[col] = round(100 * float(value), 1) if isinstance(value, (int, float)) else np.nan
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(EVALUATION_COLUMNS))
    return frame.sort_values(["bundle", "corpus", "branch", "actors"], kind="stable").reset_index(drop=True)


def recall_bars(recall: Mapping[str, float], classes: Sequence[str] | None = None, *,
                title: str = "Recall per emotion") -> go.Figure:
    """Bars of per-class recall (0-100 %: the share of each emotion's clips the model
    named right), in ``classes`` order, with chance (100 / number of classes) dotted.

    Classes absent from ``recall`` (no clip of that emotion was scored) are left out.
    """
    order = [c for c in (classes or list(recall)) if c in recall]
    if not order:
        raise ValueError("no per-class recall to draw")
    values = [100.0 * float(recall[c]) for c in order]
    fig = go.Figure(go.Bar(x=order, y=values, marker_color=[_colour(c) for c in order],
                           text=[f"{v:.0f}%" for v in values], textposition="outside",
                           hovertemplate="%{x}: %{y:.1f}% recalled<extra></extra>"))
    chance = 100.0 / len(classes or order)
    fig.add_hline(y=chance, line_dash="dot", line_color="grey",
                  annotation_text=f"chance {chance:.0f}%", annotation_position="top right")
    fig.update_xaxes(title="true emotion", type="category")
    fig.update_yaxes(title="recall (%)", range=[0, 110])
    return _layout(fig, title, 340)


# --------------------------------------------------------------------------- data
def count_bars(manifest: pd.DataFrame, column: str, *, title: str | None = None) -> go.Figure:
    """Bar chart of how many clips each value of ``column`` has (emotion, actor...)."""
    if column not in manifest:
        raise ValueError(f"manifest has no column {column!r}")
    counts = manifest[column].astype(str).replace("", "(none)").value_counts().sort_index()
    colours = [_colour(v) for v in counts.index] if column == "emotion" else "#3c6fb6"
    fig = go.Figure(go.Bar(x=list(counts.index), y=counts.values, marker_color=colours,
                           text=counts.values, textposition="outside"))
    fig.update_xaxes(title=column, type="category")
    fig.update_yaxes(title="clips", range=[0, 1.15 * max(int(counts.max()) if len(counts) else 1, 1)])
    return _layout(fig, title or f"Clips per {column}", 300)
