"""The whole pipeline on a tiny synthetic corpus: corpus -> branch run -> fusion run
(reusing the branch folds, cross-fitting out of fold) -> summary and per-fold table
-> bundle export -> analyze / ``predict --json``.

Small scikit-learn branch models (SVM on MFCC statistics, logistic regression on
4 face crops of 16 x 16) keep it to about a minute on 2 cores; the Keras path is
covered by the model and bundle tests.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.serve import fusion
from pipeline.research import fusion_runs
from pipeline.research import store

EMOTIONS = ["neutral", "happy", "sad", "angry"]  # the "four" label set: 28 takes per actor
CLASSES = tuple(EMOTIONS)
AUDIO = {"features": {"kind": "mfcc_stats"}, "model": {"name": "svm_rbf"}}
VIDEO = {"preprocessing": {"n_frames": 4, "crop_size": 16},
         "features": {"kind": "frames", "detector": "haar"}, "model": {"name": "logreg"}}


def _spec(root: Path, **top) -> dict:
    return {"corpus": {"name": "synthetic", "root": str(root)}, "labels": "four",
            "protocol": {"kind": "speaker", "folds": 3}, **top}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Corpus (3 actors, 4 emotions), an audio-only run, then the fusion run."""
    from pipeline.research.experiments import run_spec
    from pipeline.core.synth.corpus import generate

    tmp = tmp_path_factory.mktemp("integration")
    corpus = tmp / "synthetic"
    generate(corpus, n_actors=3, seed=7, emotions=EMOTIONS, progress=False)
    runs, cache = tmp / "runs", tmp / "cache"
    audio_spec = tmp / "it_audio.yaml"
    audio_spec.write_text(yaml.safe_dump(_spec(corpus, name="it_audio", branch="audio", **AUDIO)))
    run_spec(audio_spec, out=runs, progress=False, cache_dir=cache)

    fusion_spec = tmp / "it_fusion.yaml"
    fusion_spec.write_text(yaml.safe_dump(_spec(
        corpus, name="it_fusion", branch="fusion",
        fusion={"audio": AUDIO, "video": VIDEO, "inner_folds": 2},
        variants=[{"name": "speaker", "set": {"protocol.kind": "speaker"}}])))
    inner_calls: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    real_cross_fit = fusion_runs.cross_fit

    def recording_cross_fit(fit_predict, y, groups, **kw):
        def spy(train, test):
            inner_calls.append((np.asarray(groups), train, test))
            return fit_predict(train, test)
        return real_cross_fit(spy, y, groups, **kw)

    mp = pytest.MonkeyPatch()
    mp.setattr(fusion_runs, "cross_fit", recording_cross_fit)
    try:
        summary = run_spec(fusion_spec, out=runs, progress=False, cache_dir=cache)
    finally:
        mp.undo()
    return {"corpus": corpus, "runs": runs, "cache": cache, "spec": fusion_spec, "summary": summary,
            "exp": runs / "it_fusion", "inner_calls": inner_calls}


def test_summary_has_every_branch_method_and_rule(world):
    summary = world["summary"]
    expected = {"audio", "video", *fusion.ALL_FUSERS}
    assert set(summary["variant"]) == expected
    assert (summary["protocol"] == "speaker").all() and (summary["n_folds"] == 3).all()
    assert summary[["accuracy_mean", "uar_mean"]].notna().all().all()
    assert (summary.loc[summary["variant"] == "audio", "accuracy_mean"] > 0.4).all()  # chance is 0.25
    table = pd.read_csv(world["exp"] / fusion_runs.TABLE_FILE)
    assert len(table) == 3 and {"fold", "knn_k", "audio", "video", "fusion_mlp", "rule_weighted"} <= set(table.columns)


def test_branch_folds_were_reused_from_the_audio_run(world):
    metrics = json.loads((world["exp"] / "audio" / "speaker-0" / "metrics.json").read_text())
    assert "it_audio" in metrics["reused_from"] and metrics["experiment"] == "it_fusion"
    assert "reused_from" not in json.loads((world["exp"] / "video" / "speaker-0" / "metrics.json").read_text())


def test_fusion_inputs_are_out_of_fold(world):
    """No fusion training input comes from a branch model trained on that clip: the
    outer test clips are never fusion inputs, and every inner model that produced a
    training input was fitted on other actors only."""
    exp = world["exp"]
    for fold in store.folds(exp, "fusion_lr"):
        test = pd.read_csv(exp / "audio" / fold / "predictions.csv", dtype={"actor": str})
        for branch in ("audio", "video"):
            oof = pd.read_csv(exp / branch / fold / fusion_runs.OOF_FILE, dtype={"actor": str})
            assert not set(oof["clip_id"]) & set(test["clip_id"])
            assert not set(oof["actor"]) & set(test["actor"])
            assert np.allclose(oof.filter(regex="^p_").sum(axis=1), 1.0, atol=1e-5)
    calls = world["inner_calls"]
    assert len(calls) == 3 * 2 * 2  # outer folds x branches x inner folds
    for groups, train, test in calls:
        assert not set(train) & set(test)
        assert not set(groups[train]) & set(groups[test]), "an actor is on both sides of an inner split"


def test_rerun_does_nothing(world):
    from pipeline.research.experiments import run_spec

    before = {p: p.stat().st_mtime for p in world["exp"].glob("*/*/metrics.json")}
    run_spec(world["spec"], out=world["runs"], progress=False, cache_dir=world["cache"])
    after = {p: p.stat().st_mtime for p in world["exp"].glob("*/*/metrics.json")}
    assert before == after


def test_export_and_predict(world, tmp_path, capsys):
    from pipeline.serve.bundle import load_bundle
    from pipeline.research.export import export_bundle
    from pipeline.entry.cli import main
    from pipeline.serve.inference import analyze

    exp = world["exp"]
    best = min(fusion.ALL_FUSERS, key=lambda v: -float(
        world["summary"].set_index("variant").loc[v, "uar_mean"]))
    out = export_bundle(exp / "audio", exp / "video", exp / best, out=tmp_path / "bundle", name="it")
    bundle = load_bundle(out)
    assert bundle.classes == CLASSES and bundle.video.params.n_frames == 4
    assert bundle.meta["models"]["fusion"]["metrics"]["n_folds"] == 3

    mp4 = sorted(world["corpus"].glob("Actor_01/01-*-03-02-*.mp4"))[0]  # a happy, strong take
    result = analyze(mp4, bundle, landmarks_path=str(mp4.with_suffix(".csv")))
    assert result.audio.ok and result.video.ok and result.fused.ok
    check = bundle.meta["models"]["fusion"]["never_worse"]  # the fuser is kept only if it beat both branches
    scores = check["held_out_uar"]
    if check["kept"]:
        assert scores[best] > max(scores["audio"], scores["video"]) and result.fused.detail == "fusion"
    else:
        better = max(("audio", "video"), key=scores.get)
        assert scores[best] <= scores[better] and result.fused.detail.startswith(f"{better} alone")
    assert result.frames_with_face == 4

    wav = sorted(world["corpus"].glob("Actor_02/03-*.wav"))[0]
    assert main(["predict", str(wav), "--bundle", str(out), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["audio"]["status"] == "ok" and payload["video"]["status"] == "no video track"
    assert set(payload["fused"]["probabilities"]) == set(CLASSES)


def test_demo_picks_the_best_fuser_by_speaker_uar(tmp_path):
    from pipeline.entry.demo import best_fuser

    rows = [("audio", "speaker", 0.9, 0.9), ("fusion_lr", "speaker", 0.7, 0.8),
            ("fusion_mlp", "speaker", 0.8, 0.7), ("rule_mean", "speaker", 0.8, 0.75),
            ("fusion_knn", "random", 0.99, 0.99)]
    csv = tmp_path / "summary.csv"
    pd.DataFrame(rows, columns=["variant", "protocol", "uar_mean", "accuracy_mean"]).to_csv(csv, index=False)
    assert best_fuser(csv) == "rule_mean"  # UAR tie with fusion_mlp, broken by accuracy
    with pytest.raises(ValueError, match="no fusion rows"):
        best_fuser(csv, protocol="other")


def test_demo_sees_an_incomplete_corpus(tmp_path):
    from pipeline.entry.demo import corpus_complete

    assert not corpus_complete(tmp_path, 2)
    (tmp_path / "SYNTHETIC.json").write_text(json.dumps({"n_actors": 2}))
    assert not corpus_complete(tmp_path, 2)  # marker, but no takes yet
