"""Results: every experiment in the results store.

Pick an experiment; see its variants as a sortable table (mean ± std over folds, grouped
like the report's ablation tables, downloadable as CSV); the `random` split next to the
speaker-independent one with the gap highlighted; one variant in depth (confusion
matrices, classification report, learning curves, calibration); two variants side by side.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import charts, state

METRIC_CHOICES = {"accuracy": "Accuracy", "uar": "UAR (balanced accuracy)", "macro_f1": "Macro F1"}


def fold_protocol(fold: str) -> str:
    """``speaker-3`` -> ``speaker``; ``random-27`` -> ``random``."""
    return str(fold).split("-", 1)[0]


def folds_of(metrics: list[dict[str, Any]], protocol: str) -> list[dict[str, Any]]:
    return [m for m in metrics if (m.get("protocol") or fold_protocol(m.get("fold", ""))) == protocol]


def protocols_of(metrics: list[dict[str, Any]]) -> list[str]:
    found = {m.get("protocol") or fold_protocol(m.get("fold", "")) for m in metrics}
    return [p for p in ("speaker", "random") if p in found] + sorted(found - {"speaker", "random"})


def highlight_gap(points: float) -> str:
    """CSS for a gap cell: red when random splits look better by 5+ points."""
    if pd.isna(points):
        return ""
    return "background-color: #f8d0cc; font-weight: bold" if points >= 5 else "background-color: #fdeeea"


def empty_state(runs: Path) -> None:
    st.info(f"No results yet in `{runs}`. Run `make demo` (a few minutes on a laptop) to train "
            "the demo models, or `python -m pipeline run configs/<spec>.yaml` for an experiment; "
            "finished folds appear here without restarting the app.", icon=":material/hourglass_empty:")


def table_section(exp: str, summary: pd.DataFrame) -> None:
    st.caption("Each row is one variant of the experiment, scored on held-out clips and averaged "
               "over folds (mean ± standard deviation). Click a column header to sort.")
    table = charts.summary_table(summary)
    groups = list(dict.fromkeys(table["group"])) if "group" in table else [""]
    for group in groups:
        part = table[table["group"] == group] if "group" in table else table
        if len(groups) > 1:
            st.markdown(f"**{group or 'ungrouped'}**")
        st.dataframe(part.drop(columns=["group"], errors="ignore"), hide_index=True,
                     width="stretch")
    st.download_button("Download the table as CSV", summary.to_csv(index=False).encode(),
                       file_name=f"{exp}-summary.csv", mime="text/csv")


def protocol_section(summary: pd.DataFrame) -> None:
    st.caption("`random` mixes the same actors into training and test (the report's protocol); "
               "`speaker` tests on actors the model never heard or saw. The gap is how much "
               "knowing the actor inflates the score.")
    present = set(summary.get("protocol", pd.Series(dtype=str)))
    if not {"random", "speaker"} <= present:
        only = ", ".join(sorted(present)) or "none"
        st.info(f"This experiment ran only the {only} protocol. Run it again with "
                "`--set protocol.kind=random` (or `speaker`) to compare both.")
        return
    metric = st.radio("Metric", list(METRIC_CHOICES), format_func=METRIC_CHOICES.get,
                      horizontal=True, key="gap_metric")
    st.plotly_chart(charts.protocol_gap(summary, metric), width="stretch")
    gaps = (100 * charts.gap_table(summary, metric)).round(2)
    gaps.columns = ["random split %", "speaker-independent %", "gap (points)"]
    st.dataframe(gaps.style.map(highlight_gap, subset=["gap (points)"]).format("{:.2f}"),
                 width="stretch")


def variant_panel(exp_dir: Path, variant: str, key: str, *, compact: bool = False) -> None:
    """Confusion matrices, report, curves and calibration of one variant, one protocol."""
    metrics = state.metrics(str(exp_dir), variant)
    if not metrics:
        st.info(f"`{variant}` has no finished fold yet.")
        return
    protocols = protocols_of(metrics)
    protocol = st.radio("Protocol", protocols, horizontal=True, key=f"{key}_protocol")
    chosen = folds_of(metrics, protocol)
    scores = {name: [m[k] for m in chosen if m.get(k) is not None]
              for k, name in METRIC_CHOICES.items()}
    cols = st.columns(len(scores))
    for col, (name, values) in zip(cols, scores.items()):
        if values:
            spread = np.std(values, ddof=1) if len(values) > 1 else 0.0  # as summary.csv
            col.metric(name, f"{100 * np.mean(values):.1f}% ± {100 * spread:.1f}")
    st.caption(f"{len(chosen)} folds; test actors per fold: "
               + "; ".join(", ".join(map(str, m.get("test_actors", []))) or "?" for m in chosen))
    try:
        matrix, classes = charts.summed_confusion(chosen)
    except ValueError as err:
        st.warning(f"No confusion matrix: {err}.")
    else:
        st.caption("Rows are the true emotion, columns what the model answered; the diagonal "
                   "is correct. Row-normalised: each row shows where that emotion's clips went.")
        left, right = st.columns(2) if not compact else (st.container(), st.container())
        left.plotly_chart(charts.confusion_matrix(matrix, classes), width="stretch",
                          key=f"{key}_cm_counts")
        right.plotly_chart(charts.confusion_matrix(matrix, classes, normalise=True),
                           width="stretch", key=f"{key}_cm_norm")
    if compact:
        return
    st.markdown("**Classification report** (per emotion, mean over folds)")
    st.dataframe(charts.mean_report(chosen).round(3), hide_index=True)
    curves, calib = st.columns(2)
    history = state.history(str(exp_dir), variant)
    if not history.empty and "fold" in history:
        history = history[history["fold"].astype(str).map(fold_protocol) == protocol]
    with curves:
        st.caption("Learning curves: accuracy per training epoch on the training data (solid) "
                   "and the validation data (dashed); a widening gap means overfitting.")
        if history.empty or "accuracy" not in history:
            st.info("No learning curves: this model is not trained epoch by epoch.")
        else:
            st.plotly_chart(charts.learning_curves(history), width="stretch",
                            key=f"{key}_curves")
    with calib:
        st.caption("Calibration: when the model says 80% sure, is it right 80% of the time? "
                   "Points on the dotted line are honest confidences.")
        preds = state.predictions(str(exp_dir), variant)
        if not preds.empty and "fold" in preds:
            preds = preds[preds["fold"].astype(str).map(fold_protocol) == protocol]
        classes_ = list(chosen[0].get("classes", []))
        pcols = [f"p_{c}" for c in classes_]
        if preds.empty or not classes_ or not set(pcols) <= set(preds.columns):
            st.info("No saved probabilities to draw a calibration plot.")
        else:
            bins = charts.reliability_bins(preds["true"].astype(str).to_numpy(),
                                           preds[pcols].to_numpy(float), classes_)
            st.plotly_chart(charts.reliability_diagram(bins), width="stretch",
                            key=f"{key}_calib")


def main() -> None:
    st.title("Results")
    settings = state.settings()
    try:
        names = state.experiments(str(settings.runs))
    except (OSError, ValueError) as err:
        st.error(f"The results folder `{settings.runs}` cannot be read: {err}")
        return
    if not names:
        empty_state(settings.runs)
        return
    exp = st.selectbox("Experiment", names, key="experiment")
    exp_dir = settings.runs / exp
    try:
        summary = state.summary(str(exp_dir))
        names_v = state.variants(str(exp_dir))
    except (OSError, ValueError, KeyError) as err:
        st.error(f"`{exp}` cannot be read: {err}. Rerun the experiment to rewrite it.")
        return
    if summary.empty or not names_v:
        st.info(f"`{exp}` has no finished fold yet. Its results appear here as folds finish.")
        return
    tab_table, tab_gap, tab_one, tab_two = st.tabs(
        ["Table", "Random vs speaker split", "One variant", "Compare two"])
    with tab_table:
        table_section(exp, summary)
    with tab_gap:
        protocol_section(summary)
    with tab_one:
        variant = st.selectbox("Variant", names_v, key="variant")
        variant_panel(exp_dir, variant, "one")
    with tab_two:
        left, right = st.columns(2)
        with left:
            a = st.selectbox("Variant A", names_v, key="cmp_a")
            variant_panel(exp_dir, a, "cmp_a", compact=True)
        with right:
            b = st.selectbox("Variant B", names_v, index=min(1, len(names_v) - 1), key="cmp_b")
            variant_panel(exp_dir, b, "cmp_b", compact=True)


main()
