"""AppTest tests of the Results page's cross-corpus section and single-split protocols
(``holdout``, ``eval``), the About page's bundle model card, and the pure builders
behind them. Stores are written with ``pipeline.research.results.write_fold`` in tmp folders."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dashboard import charts

CLASSES = ["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


def _text(at: Any) -> str:
    parts = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "title", "subheader",
                 "header"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def _charts(at: Any) -> list[str]:
    return [json.loads(el.proto.spec).get("layout", {}).get("title", {}).get("text", "")
            for el in at.get("plotly_chart")]


def _scored(seed: int, n: int = 28) -> tuple[dict[str, Any], pd.DataFrame]:
    """Metrics (as pipeline.research.evaluation.evaluate writes them) and predictions of n clips."""
    from pipeline.research.evaluation import evaluate

    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(CLASSES)), n // len(CLASSES))
    probs = rng.dirichlet(np.ones(len(CLASSES)), size=len(y))
    probs[np.arange(len(y)), y] += rng.random(len(y))
    probs /= probs.sum(axis=1, keepdims=True)
    metrics = evaluate(y, probs, CLASSES)
    metrics["per_class_recall"] = {c: metrics["report"][c]["recall"] for c in CLASSES}
    preds = pd.DataFrame({"clip_id": [f"c{i}" for i in range(len(y))], "actor": "01",
                          "true": [CLASSES[i] for i in y], "pred": [CLASSES[i] for i in probs.argmax(1)],
                          **{f"p_{c}": probs[:, i] for i, c in enumerate(CLASSES)}})
    return metrics, preds


def write_evaluation(runs: Path, *, bundle: Path, corpus: str, root: Path, branch: str = "audio",
                     actors: str | None = None, seed: int = 0) -> Path:
    """One ``evaluate`` run in the layout pipeline/research/crosscorpus.py writes."""
    from pipeline.research import results

    tag = f"-actors{actors}" if actors else ""
    variant = f"{bundle.name}-{corpus}-{branch}{tag}"
    metrics, preds = _scored(seed)
    skipped = {"emotion not in the bundle: calm": 4, "no audio file": 1}
    metrics.update(n_skipped=5, skipped=skipped, fold="eval-1", variant=variant, group="cross-corpus",
                   protocol="eval", experiment="evaluate", branch=branch, model=bundle.name,
                   corpus=corpus, bundle_id=f"{bundle.name}-abc")
    config = {"experiment": "evaluate", "variant": variant, "fold": "eval-1", "kind": "evaluate",
              "bundle": {"id": f"{bundle.name}-abc", "name": bundle.name, "path": str(bundle)},
              "corpus": {"name": corpus, "root": str(root)}, "actors": actors or "all",
              "branch": branch, "classes": CLASSES}
    fold = results.write_fold(runs / "evaluate" / variant / "eval-1", config=config, metrics=metrics,
                              predictions=preds.assign(fold="eval-1"))
    results.write_summary(runs / "evaluate")
    return fold


def write_bundle_with_training_run(tmp_path: Path, runs: Path, train_root: Path) -> Path:
    """bundles/real: a bundle.json whose audio model came from a run trained on train_root."""
    from pipeline.research import results

    metrics, preds = _scored(1)
    source = runs / "real_audio" / "svm"
    results.write_fold(source / "speaker-0", config={"corpus": {"name": "ravdess", "root": str(train_root)}},
                       metrics={**metrics, "protocol": "speaker", "fold": "speaker-0"}, predictions=preds)
    bundle = tmp_path / "bundles" / "real"
    bundle.mkdir(parents=True)
    meta = {"format": 1, "id": "real-abc", "name": "real", "classes": CLASSES, "labels": "seven",
            "models": {"audio": {"model": "svm_linear", "framework": "sklearn", "source": str(source),
                                 "experiment": "real_audio"}}}
    (bundle / "bundle.json").write_text(json.dumps(meta))
    return bundle


@pytest.fixture
def cross_store(tmp_path: Path, results_writer) -> dict[str, Path]:
    """runs/audio (the conftest store) + runs/evaluate with an in-sample and a
    cross-corpus run of a bundle whose audio model was trained on ``ravdess``."""
    runs = results_writer(tmp_path / "runs")
    ravdess, tess = tmp_path / "ravdess", tmp_path / "tess"
    ravdess.mkdir()
    tess.mkdir()
    bundle = write_bundle_with_training_run(tmp_path, runs, ravdess)
    write_evaluation(runs, bundle=bundle, corpus="ravdess", root=ravdess, actors="01-04", seed=2)
    write_evaluation(runs, bundle=bundle, corpus="tess", root=tess, seed=3)
    return {"runs": runs, "bundle": bundle, "ravdess": ravdess, "tess": tess}


def _eval_table(at: Any) -> pd.DataFrame:
    tables = [d.value for d in at.dataframe if "seen in training" in d.value.columns]
    assert len(tables) == 1
    return tables[0]


# --------------------------------------------------------------------------- results
def test_results_lists_cross_corpus_runs(app_env, cross_store: dict[str, Path]) -> None:
    at = app_env("results", runs=cross_store["runs"])
    assert not at.exception, at.exception
    assert "Cross-corpus evaluation" in [h.value for h in at.header]
    table = _eval_table(at)
    assert {"bundle", "corpus", "branch", "actors", "n scored", "skipped", "accuracy %", "UAR %",
            "macro-F1 %", "ECE %"} <= set(table.columns)
    rows = table.set_index("corpus")
    assert set(rows.index) == {"ravdess", "tess"}
    assert rows.loc["tess", "bundle"] == "real" and rows.loc["tess", "n scored"] == 28
    assert rows.loc["tess", "skipped"] == 5 and rows.loc["ravdess", "actors"] == "01-04"
    assert 0 <= rows.loc["tess", "accuracy %"] <= 100
    # the bundle's audio model was trained on the ravdess folder: in-sample there, not on tess
    assert rows.loc["ravdess", "seen in training"] == charts.SEEN_YES
    assert rows.loc["tess", "seen in training"] == charts.SEEN_NO
    assert "never met" in _text(at) and "in-sample" in _text(at)
    assert "Recall per emotion" in _charts(at)


def test_results_cross_corpus_run_in_depth(app_env, cross_store: dict[str, Path]) -> None:
    at = app_env("results", runs=cross_store["runs"])
    choice = at.selectbox(key="eval_run")
    assert len(choice.options) == 2 and any("real on tess (audio" in o for o in choice.options)
    choice.set_value("real-tess-audio").run()
    assert not at.exception, at.exception
    text = _text(at)
    assert "28 clips scored, 5 left out" in text
    titles = _charts(at)
    assert "Recall per emotion" in titles and "Confusion matrix (row-normalised)" in titles
    reasons = [d.value for d in at.dataframe if "reason" in d.value.columns]
    assert reasons and "emotion not in the bundle: calm" in set(reasons[0]["reason"])


def test_results_without_evaluations_says_how_to_make_one(app_env, results_store: Path) -> None:
    at = app_env("results", runs=results_store)
    assert not at.exception
    assert "No cross-corpus evaluation yet" in _text(at) and "pipeline evaluate" in _text(at)


def test_results_evaluate_experiment_in_per_experiment_views(app_env, cross_store: dict[str, Path]) -> None:
    at = app_env("results", runs=cross_store["runs"])
    at.selectbox(key="experiment").set_value("evaluate").run()
    assert not at.exception, at.exception
    text = _text(at)
    assert "used the eval protocol" in text and "ran only" not in text
    assert "1 fold; test clips: 28" in text
    summary = at.dataframe[0].value
    assert set(summary["Accuracy ±"]) == {"one split"}
    assert all("±" not in m.value for m in at.metric)


def test_results_holdout_experiment_single_split(app_env, tmp_path: Path) -> None:
    """real_video/face_cnn/holdout-1: one validation split, no actors, with history."""
    from pipeline.research import results

    runs = tmp_path / "runs"
    metrics, preds = _scored(4, n=35)
    metrics.update(protocol="holdout", fold="holdout-1", variant="face_cnn", group="real", branch="video",
                   model="face_cnn", experiment="real_video", n_train=140, n_val=35)
    history = pd.DataFrame({"epoch": range(3), "accuracy": [0.3, 0.4, 0.5], "val_accuracy": [0.3, 0.35, 0.4],
                            "loss": [2.0, 1.5, 1.2], "val_loss": [2.0, 1.7, 1.6]})
    results.write_fold(runs / "real_video" / "face_cnn" / "holdout-1", config={"variant": "face_cnn"},
                       metrics=metrics, predictions=preds.assign(fold="holdout-1", actor=""), history=history)
    results.write_summary(runs / "real_video")
    at = app_env("results", runs=runs)
    assert not at.exception, at.exception
    text = _text(at)
    assert "used the holdout protocol" in text and "stratified validation split" in text
    assert "1 fold; test clips: 35" in text
    assert at.dataframe[0].value["Accuracy ±"].tolist() == ["one split"]
    assert "Learning curves (accuracy)" in _charts(at) and "Calibration" in _charts(at)
    assert "No cross-corpus evaluation yet" in text


def test_results_other_corpora_tab_shows_each_held_out_corpus(app_env, tmp_path: Path) -> None:
    """A variant with speaker folds and leave-one-corpus-out folds: the 'Other corpora'
    tab draws the speaker figure beside each held-out corpus, chance marked."""
    from pipeline.research import results

    runs = tmp_path / "runs"
    for i, fold in enumerate(["speaker-0", "speaker-1", "corpus-tess", "corpus-ravdess"]):
        metrics, preds = _scored(10 + i)
        metrics.update(protocol=fold.split("-")[0], fold=fold, variant="final", group="voice", branch="audio",
                       model="logreg", experiment="real_voice")
        results.write_fold(runs / "real_voice" / "final" / fold, config={"variant": "final"}, metrics=metrics,
                           predictions=preds.assign(fold=fold))
    results.write_summary(runs / "real_voice")
    at = app_env("results", runs=runs)
    assert not at.exception, at.exception
    assert any("Does it travel?" in t for t in _charts(at))
    wide = [d.value for d in at.dataframe if "held-out corpus: tess" in d.value.columns]
    assert len(wide) == 1 and "speaker-independent" in wide[0].columns


# --------------------------------------------------------------------------- about
def test_about_renders_the_bundle_model_card(app_env, tmp_path: Path, bundle_meta: Path) -> None:
    from pipeline.core import paths

    bundle = tmp_path / "bundles" / "real"
    bundle.parent.mkdir()
    bundle_meta.rename(bundle)
    meta = json.loads((bundle / "bundle.json").read_text())
    (bundle / "bundle.json").write_text(json.dumps({**meta, "cards": ["MODEL_CARD.md"]}))
    (bundle / "MODEL_CARD.md").write_text(
        "# Real voices and faces\n\nTrained on RAVDESS speech (CC BY-NC-SA 4.0).\n\n"
        "## Must not be used for\n\nHiring, grading, policing.\n", encoding="utf-8")
    at = app_env("about", bundle=bundle)
    assert not at.exception, at.exception
    text = _text(at)
    assert paths.bundle_label(bundle) in text and paths.BUNDLE_LABELS["real"] in text
    assert "Trained on RAVDESS speech (CC BY-NC-SA 4.0)" in text and "Hiring, grading, policing." in text
    assert [t.label for t in at.tabs] == ["Model card", "Each model's stored details"]
    assert "audio_cnn" in text and "lrcn" in text  # the per-model cards are still there
    assert "Speaker leakage" in text and "Do **not** use it" in text


def test_about_without_card_shows_the_generated_cards(app_env, bundle_meta: Path) -> None:
    at = app_env("about", bundle=bundle_meta)
    assert not at.exception, at.exception
    text = _text(at)
    assert "Answering now: **bundle**" in text
    assert not at.tabs and "audio_cnn" in text and "fusion_mlp" in text


# --------------------------------------------------------------------------- pure builders
def test_seen_in_training() -> None:
    training = {"audio": {"corpus": "ravdess", "root": "/d/ravdess"},
                "video": {"corpus": "images", "root": "/d/fer/train"}}
    assert charts.seen_in_training("ravdess", "/d/ravdess", "audio", training) == charts.SEEN_YES
    assert charts.seen_in_training("ravdess", "/d/other", "audio", training) == charts.SEEN_MAYBE
    assert charts.seen_in_training("tess", "/d/tess", "audio", training) == charts.SEEN_NO
    assert charts.seen_in_training("images", "/d/fer/train", "fused", training) == charts.SEEN_YES
    assert charts.seen_in_training("tess", "/d/tess", "video", {}) == charts.SEEN_UNKNOWN
    assert charts.seen_in_training("tess", "/d/tess", "fused", {"audio": training["audio"]}) == charts.SEEN_UNKNOWN
    # the run's own verdict (actors compared by evaluate) wins over the folder test
    assert charts._seen({"in_sample": ""}, charts.SEEN_YES) == charts.SEEN_HELD_OUT
    assert charts._seen({"in_sample": "trained on 3 of these actors"}, charts.SEEN_MAYBE) == charts.SEEN_YES
    assert charts._seen({}, charts.SEEN_MAYBE) == charts.SEEN_MAYBE


def test_evaluation_table_and_recall_bars() -> None:
    metrics, _ = _scored(5)
    record = {"run": "real-tess-audio", "metrics": {**metrics, "n_skipped": 3},
              "config": {"bundle": {"name": "real"}, "corpus": {"name": "tess", "root": "t"},
                         "branch": "audio", "actors": "all"}, "training": {}, "root": "/t"}
    table = charts.evaluation_table([record, {"run": "broken"}])
    assert list(table.columns) == list(charts.EVALUATION_COLUMNS)
    row = table.set_index("run").loc["real-tess-audio"]
    assert row["accuracy %"] == round(100 * metrics["accuracy"], 1) and row["skipped"] == 3
    assert np.isnan(table.set_index("run").loc["broken", "UAR %"])
    fig = charts.recall_bars({"sad": 0.5, "happy": 1.0}, CLASSES)
    assert list(fig.data[0].x) == ["happy", "sad"] and list(fig.data[0].y) == [100.0, 50.0]
    with pytest.raises(ValueError):
        charts.recall_bars({}, CLASSES)


def test_blank_single_fold_spread() -> None:
    summary = pd.DataFrame({"variant": ["a", "b"], "protocol": ["holdout", "speaker"], "n_folds": [1, 4],
                            **{f"{m}_{s}": [0.5, 0.6] for m in charts.METRICS for s in ("mean", "std")}})
    table = charts.blank_single_fold_spread(charts.summary_table(summary))
    assert table.set_index("variant").loc["a", "Accuracy ±"] == "one split"
    assert table.set_index("variant").loc["b", "Accuracy ±"] == "± 60.00"
