"""About the models: which bundle answers, its model card (the bundle's own
``MODEL_CARD.md`` when it ships one, with a card per model from ``bundle.json`` beside
it), then the honest small print: what the synthetic corpus is, why acted data and
shared speakers flatter the numbers, and what this tool must never be used for.
"""
from __future__ import annotations

from typing import Any, Mapping

import pandas as pd
import streamlit as st

from pipeline.core import paths

from dashboard import folders, state, text

METRIC_LABELS = {"accuracy": "Accuracy", "uar": "UAR", "macro_f1": "Macro F1", "ece": "ECE"}
CARD_FIELDS = ("corpus", "data", "protocol", "serving", "source", "experiment", "variant",
               "n_folds", "n_train", "labels")


def metric_table(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """Measured metrics in any of the shapes a bundle stores them, as % mean ± std.

    Accepts ``{accuracy_mean, accuracy_std}``, ``{accuracy: {mean, std}}`` or
    ``{accuracy: value}`` (fractions in [0, 1]).
    """
    rows = []
    for key, label in METRIC_LABELS.items():
        value = metrics.get(key, metrics.get(f"{key}_mean"))
        std = metrics.get(f"{key}_std")
        if isinstance(value, Mapping):
            value, std = value.get("mean"), value.get("std", std)
        if isinstance(value, (int, float)):
            rows.append({"metric": label, "mean %": round(100 * float(value), 2),
                         "± std": round(100 * float(std), 2) if isinstance(std, (int, float)) else None})
    return pd.DataFrame(rows, columns=["metric", "mean %", "± std"])


def model_card(branch: str, info: Mapping[str, Any], classes: list[str]) -> None:
    """One card: what the model is, what it was trained and tested on, how well it did."""
    with st.container(border=True):
        st.markdown(f"#### {branch.capitalize()} model: `{info.get('model', '?')}`")
        facts = {k: info[k] for k in CARD_FIELDS if k in info and info[k] not in (None, "")}
        facts["framework"] = info.get("framework", "")
        if info.get("input_kind"):
            facts["input"] = info["input_kind"]
        st.markdown("  \n".join(f"**{k}**: {v}" for k, v in facts.items() if v != ""))
        st.markdown(f"**classes**: {', '.join(classes)}")
        table = metric_table(info.get("metrics") or {})
        if table.empty:
            st.caption("No measured results were stored with this model.")
        else:
            st.caption("Measured on held-out clips of the run the model came from "
                       f"(protocol: {info.get('protocol', 'see run')}).")
            st.dataframe(table, hide_index=True)
        with st.expander("Every stored detail"):
            st.json({k: v for k, v in info.items() if k != "metrics"}, expanded=False)


def bundle_cards(bundle_dir: str) -> None:
    from pipeline.serve.bundle import BundleError

    if not state.bundle_exists(bundle_dir):
        st.info(f"No model bundle in {text.plain(folders.bundle_name(bundle_dir))} yet. Run `make demo` "
                "to train the demo models (synthetic data, a few minutes), or choose another bundle in the sidebar.",
                icon=":material/model_training:")
        return
    try:
        meta = state.bundle_meta(bundle_dir)
    except BundleError as err:
        st.error(text.plain(folders.scrub(err)))
        return
    st.markdown(f"Answering now: **{paths.bundle_label(bundle_dir)}**: bundle **{meta.get('name', '?')}** "
                f"(`{meta.get('id', '?')}`), created {meta.get('created', '?')}, label set "
                f"`{meta.get('labels', '?')}`. Choose another in the sidebar.")
    classes = list(meta.get("classes", []))
    cards = state.bundle_card_texts(bundle_dir)
    if cards:
        titles = ["Model card" if name == "MODEL_CARD.md" else name.removesuffix(".md").replace("_", " ")
                  for name in cards]
        tabs = st.tabs([*titles, "Each model's stored details"])
        for tab, card in zip(tabs, cards.values()):
            with tab, st.container(border=True):
                st.markdown(card)
        with tabs[-1]:
            branch_cards(meta, classes)
    else:
        branch_cards(meta, classes)


def branch_cards(meta: Mapping[str, Any], classes: list[str]) -> None:
    """A card per model from ``bundle.json``: audio, video, then the fuser."""
    for branch in ("audio", "video", "fusion"):
        info = (meta.get("models") or {}).get(branch)
        if info:
            model_card(branch, info, classes)


def caveats() -> None:
    st.subheader("What the numbers mean, and what they do not")
    st.markdown(
        "- **Synthetic corpus.** The demo models learn from voices and faces the pipeline "
        "generates itself: a glottal pulse through formant filters whose pitch, loudness, "
        "rate and breathiness follow published acoustic profiles of each emotion, and a drawn "
        "face whose brows, eyes and mouth move by emotion. High scores on it show the code "
        "works, not that the models understand people.\n"
        "- **Acted emotions.** RAVDESS and SAVEE are actors performing emotions on cue, in a "
        "studio, facing the camera. Everyday emotions are subtler, mixed and culture-dependent; "
        "expect much lower accuracy on real conversations.\n"
        "- **Speaker leakage.** With a `random` split the same actors appear in training and "
        "test, so a model can recognise the actor instead of the emotion. The source report's "
        "headline RAVDESS figures (audio 84.3%, video 93.7%, fused 95.4%) were measured that "
        "way; the `speaker` protocol, which tests on unseen actors, is the honest number, and "
        "the Results page shows both side by side.\n"
        "- **Probabilities are not certainty.** A 90% bar is the model's confidence, which can "
        "be badly calibrated; see the calibration plots on the Results page.")
    st.subheader("Ethics")
    st.warning(
        "This is a teaching and research tool. Do **not** use it to make or support decisions "
        "about people (hiring, grading, policing, health, security or anything else): emotion "
        "recognition from faces and voices is unreliable, biased towards the people it was "
        "trained on, and a person's inner state cannot be read from a clip. Recording someone "
        "needs their informed consent. The dashboard sends nothing over the internet; clips stay on "
        "the computer that runs it (in memory, and camera recordings in a temporary file).",
        icon=":material/gavel:")


def main() -> None:
    st.title("About the models")
    st.caption("A model card says what a model was trained on, how it was tested, how well it "
               "did, and where it should not be trusted.")
    bundle_cards(str(state.settings().bundle))
    caveats()


main()
