"""Results: every experiment in the results store.

Pick an experiment; see its variants as a sortable table (mean ± std over folds, grouped
like the report's ablation tables, downloadable as CSV); the `random` split next to the
speaker-independent one with the gap highlighted; one variant in depth (confusion
matrices, classification report, learning curves, calibration); two variants side by side.
Below, under "Cross-corpus evaluation", every `python -m pipeline evaluate` run: a saved
bundle scored on a whole corpus, as a sortable table and one run in depth.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import charts, folders, state, text

METRIC_CHOICES = {"accuracy": "Accuracy", "uar": "UAR (balanced accuracy)", "macro_f1": "Macro F1"}
#: What each protocol's test side is, in words (fold names start with the protocol).
PROTOCOL_NOTES = {
    "speaker": "each fold tests on actors the model never heard or saw",
    "random": "random splits: the same actors are in training and test (the report's protocol)",
    "holdout": "one stratified validation split held out of the training data (same source, "
               "not unseen people)",
    "eval": "a saved bundle scored on a whole corpus (see Cross-corpus evaluation below)",
    "corpus": "leave-one-corpus-out: trained on the other corpora, tested on a corpus never heard "
              "(other people, rooms and microphones)",
    "all": "trained on every clip (the model that ships): in-sample, not a result",
}


def fold_protocol(fold: str) -> str:
    """``speaker-3`` -> ``speaker``; ``random-27`` -> ``random``."""
    return str(fold).split("-", 1)[0]


def folds_of(metrics: list[dict[str, Any]], protocol: str) -> list[dict[str, Any]]:
    return [m for m in metrics if (m.get("protocol") or fold_protocol(m.get("fold", ""))) == protocol]


def protocols_of(metrics: list[dict[str, Any]]) -> list[str]:
    found = {m.get("protocol") or fold_protocol(m.get("fold", "")) for m in metrics}
    first = ("speaker", "corpus", "random")
    return [p for p in first if p in found] + sorted(found - set(first))


def highlight_gap(points: float) -> str:
    """CSS for a gap cell: red when random splits look better by 5+ points."""
    if pd.isna(points):
        return ""
    return "background-color: #f8d0cc; font-weight: bold" if points >= 5 else "background-color: #fdeeea"


def empty_state(runs: Path) -> None:
    st.info("No results in this folder yet. Run `make demo` (a few minutes on a laptop) to train "
            "the demo models, or `python -m pipeline run configs/<spec>.yaml` for an experiment; "
            "finished folds appear here without restarting the app.", icon=":material/hourglass_empty:")


def table_section(exp: str, summary: pd.DataFrame) -> None:
    st.caption("Each row is one variant of the experiment, scored on held-out clips and averaged "
               "over folds (mean ± standard deviation; a single split or evaluation has no ±). "
               "Click a column header to sort.")
    table = charts.blank_single_fold_spread(charts.summary_table(summary))
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
        if present & {"random", "speaker"}:
            st.info(f"This experiment ran only the {only} protocol. Run it again with "
                    "`--set protocol.kind=random` (or `speaker`) to compare both.")
        else:
            notes = "; ".join(f"`{p}`: {PROTOCOL_NOTES[p]}" for p in sorted(present) if p in PROTOCOL_NOTES)
            st.info(f"This experiment used the {only} protocol, so it has no random-vs-speaker "
                    f"comparison{' (' + notes + ')' if notes else ''}.")
        return
    metric = st.radio("Metric", list(METRIC_CHOICES), format_func=METRIC_CHOICES.get,
                      horizontal=True, key="gap_metric")
    st.plotly_chart(charts.protocol_gap(summary, metric), width="stretch")
    gaps = (100 * charts.gap_table(summary, metric)).round(2)
    gaps.columns = ["random split %", "speaker-independent %", "gap (points)"]
    st.dataframe(gaps.style.map(highlight_gap, subset=["gap (points)"]).format("{:.2f}"),
                 width="stretch")


def travel_section(exp_dir: str) -> None:
    """Speaker-independent folds beside each held-out corpus (leave-one-corpus-out)."""
    table = state.travel(exp_dir)
    if table.empty:
        st.info("This experiment did not hold out a whole corpus. Name several corpora and add the "
                "`corpus` protocol (`protocol.kind: [speaker, corpus]`, e.g. `configs/real_audio.yaml`) "
                "to see how a model does on people, rooms and microphones it never met.")
        return
    st.caption("Speaker-independent: actors of the first corpus never heard in training (mean over folds). "
               "Held-out corpus: trained on the other corpora only, tested on every clip of this one. "
               "The held-out corpus decides what ships.")
    metric = st.radio("Metric", ["uar", "accuracy"], format_func=METRIC_CHOICES.get, horizontal=True,
                      key="travel_metric")
    n_classes = len([k for k in state.metrics(exp_dir, table["variant"].iloc[0])[0].get("classes", [])]) or None
    chance = {f"chance (1/{n_classes})": 1.0 / n_classes} if n_classes else None
    st.plotly_chart(charts.travel_bars(table, metric, chance), width="stretch")
    wide = table.pivot_table(index="variant", columns="test", values=metric, aggfunc="mean", sort=False)
    st.dataframe((100 * wide).round(1), width="stretch")


def folds_caption(chosen: list[dict[str, Any]], protocol: str) -> str:
    """'4 folds; test actors per fold: ...', or for splits without actors (a holdout
    of images, an evaluation) the number of test clips; plus what the protocol means."""
    count = f"{len(chosen)} fold{'s' if len(chosen) != 1 else ''}"
    if any(m.get("test_actors") for m in chosen):
        detail = "test actors per fold: " + "; ".join(
            ", ".join(map(str, m.get("test_actors") or [])) or "?" for m in chosen)
    else:
        detail = "test clips: " + ", ".join(str(m.get("n_test", "?")) for m in chosen)
    note = PROTOCOL_NOTES.get(protocol)
    return f"{count}; {detail}" + (f". `{protocol}`: {note}." if note else ".")


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
        if len(values) > 1:
            spread = np.std(values, ddof=1)  # as summary.csv
            col.metric(name, f"{100 * np.mean(values):.1f}% ± {100 * spread:.1f}")
        elif values:  # one split: no spread to show
            col.metric(name, f"{100 * values[0]:.1f}%")
    st.caption(folds_caption(chosen, protocol))
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
    st.markdown("**Classification report** (per emotion"
                + (", mean over folds)" if len(chosen) > 1 else ")"))
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


def evaluation_detail(record: dict[str, Any]) -> None:
    """One evaluate run: its scores, what was left out, confusion matrices, recall bars."""
    metrics = record.get("metrics") or {}
    cols = st.columns(4)
    for col, key in zip(cols, ("accuracy", "uar", "macro_f1", "ece")):
        if isinstance(metrics.get(key), (int, float)):
            col.metric(charts.METRIC_NAMES[key], f"{100 * float(metrics[key]):.1f}%")
    skipped = metrics.get("skipped") or {}
    st.caption(f"{metrics.get('n_test', '?')} clips scored, {metrics.get('n_skipped', sum(skipped.values()))} "
               "left out (emotions the bundle cannot name, missing modality, unreadable files).")
    if skipped:
        with st.expander("What was left out, and why"):
            st.dataframe(pd.DataFrame({"reason": list(skipped), "clips": list(skipped.values())}),
                         hide_index=True)
    try:
        matrix, classes = charts.summed_confusion([metrics])
    except ValueError as err:
        st.warning(f"No confusion matrix: {err}.")
        return
    st.caption("Rows are the true emotion, columns what the bundle answered (row-normalised: where "
               "each emotion's clips went); the bars are the diagonal, the share of each emotion named right.")
    left, right = st.columns(2)
    left.plotly_chart(charts.confusion_matrix(matrix, classes, normalise=True), width="stretch",
                      key="cc_cm_norm")
    recall = metrics.get("per_class_recall") or {
        c: v.get("recall") for c, v in (metrics.get("report") or {}).items()
        if isinstance(v, dict) and v.get("support")}
    try:
        right.plotly_chart(charts.recall_bars(recall, classes), width="stretch", key="cc_recall")
    except ValueError as err:
        right.info(f"No per-class recall: {err}.")
    with st.expander("Counts"):
        st.plotly_chart(charts.confusion_matrix(matrix, classes), width="stretch", key="cc_cm_counts")


def cross_corpus_section(runs: Path) -> None:
    """Every `evaluate` run as a sortable table, then one run in depth."""
    st.header("Cross-corpus evaluation")
    try:
        records = state.evaluations(str(runs))
    except (OSError, ValueError) as err:
        st.error(f"The evaluations in {text.plain(folders.results_name(runs))} cannot be read: "
                 f"{text.plain(folders.scrub(err))}")
        return
    if not records:
        st.info("No cross-corpus evaluation yet. `python -m pipeline evaluate --bundle bundles/real "
                "--corpus emodb --root PATH` scores a saved bundle on a corpus it never saw (EmoDB, "
                "CREMA-D or SAVEE for the real bundle, whose voice learned from RAVDESS and TESS); "
                "the run appears here.", icon=":material/travel_explore:")
        return
    st.caption("Each row is a saved bundle scored on a whole corpus with `python -m pipeline evaluate`: "
               "when the corpus is not the bundle's training data, these are people, microphones and "
               "cameras the models never met, the honest test of how they travel. When "
               "**seen in training** says yes, the corpus folder is the one the bundle was trained "
               "on: those numbers are in-sample and flatter the models (unless the chosen actors were "
               "kept out of training). Click a column header to sort.")
    table = charts.evaluation_table(records)
    st.dataframe(table.drop(columns=["run"]), hide_index=True, width="stretch")
    labels = {row["run"]: f"{row['bundle']} on {row['corpus']} ({row['branch']}, actors {row['actors']})"
              for row in table.to_dict("records")}
    run = st.selectbox("Evaluation", list(labels), format_func=labels.get, key="eval_run")
    evaluation_detail(next(r for r in records if r["run"] == run))


def main() -> None:
    st.title("Results")
    settings = state.settings()
    try:
        names = state.experiments(str(settings.runs))
    except (OSError, ValueError) as err:
        st.error(f"The results folder {text.plain(folders.results_name(settings.runs))} cannot be read: "
                 f"{text.plain(folders.scrub(err))}")
        return
    if not names:
        empty_state(settings.runs)
        return
    experiment_section(settings.runs, names)
    st.divider()
    cross_corpus_section(settings.runs)


def experiment_section(runs: Path, names: list[str]) -> None:
    """Pick an experiment; its table, protocol gap, one variant, two variants."""
    exp = st.selectbox("Experiment", names, key="experiment")
    exp_dir = runs / exp
    try:
        summary = state.summary(str(exp_dir))
        names_v = state.variants(str(exp_dir))
    except (OSError, ValueError, KeyError) as err:
        st.error(f"`{exp}` cannot be read: {err}. Rerun the experiment to rewrite it.")
        return
    if summary.empty or not names_v:
        st.info(f"`{exp}` has no finished fold yet. Its results appear here as folds finish.")
        return
    tab_table, tab_gap, tab_travel, tab_one, tab_two = st.tabs(
        ["Table", "Random vs speaker split", "Other corpora", "One variant", "Compare two"])
    with tab_table:
        table_section(exp, summary)
    with tab_gap:
        protocol_section(summary)
    with tab_travel:
        travel_section(str(exp_dir))
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
