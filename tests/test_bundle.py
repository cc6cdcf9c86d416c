"""Bundles: write/load round trips (scikit-learn and Keras), export from a results
store (serving fold choice, measured metrics, the refit fuser) and clear errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.serve import bundle as bundle_mod
from pipeline.research import export as export_mod, results
from pipeline.serve.fusion import LateFusion
from pipeline.core.preprocessing import Preprocessing

CLASSES = Preprocessing().classes


def _probs(y: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    logits = rng.normal(0, 1, (len(y), len(CLASSES)))
    logits[np.arange(len(y)), y] += strength
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def _write_branch_folds(exp: Path, branch: str, y: np.ndarray, ids: list[str], strength: float,
                        val_losses: list[float], rng: np.random.Generator) -> None:
    """A finished 3-fold speaker run of a small scikit-learn model on (n, 4) features."""
    from sklearn.neighbors import KNeighborsClassifier

    folds = np.array_split(np.arange(len(y)), 3)
    for k, test in enumerate(folds):
        probs = _probs(y[test], strength, rng)
        model = KNeighborsClassifier(3).fit(rng.normal(size=(60, 4)) + np.repeat(np.arange(6), 10)[:, None],
                                            np.repeat(np.arange(6), 10))
        preds = pd.DataFrame({"clip_id": [ids[i] for i in test], "actor": "01", "fold": f"speaker-{k}",
                              "true": [CLASSES[i] for i in y[test]],
                              "pred": [CLASSES[i] for i in probs.argmax(1)]})
        for i, c in enumerate(CLASSES):
            preds[f"p_{c}"] = probs[:, i]
        acc = float(np.mean(probs.argmax(1) == y[test]))
        history = pd.DataFrame({"epoch": [1, 2], "loss": [1.0, 0.8], "accuracy": [0.3, 0.4],
                                "val_loss": [val_losses[k] + 0.2, val_losses[k]], "val_accuracy": [0.3, 0.4]})
        config = {"branch": branch, "experiment": exp.name, "model": {"name": "logreg"}, "framework": "sklearn",
                  "feature_kind": "mfcc_mean" if branch == "audio" else "frames", "features": {"detector": None},
                  "preprocessing_params": Preprocessing().to_dict(), "classes": list(CLASSES)}
        metrics = {"accuracy": acc, "uar": acc, "macro_f1": acc, "ece": 0.1, "protocol": "speaker",
                   "fold": f"speaker-{k}", "variant": branch}
        results.write_fold(exp / branch / f"speaker-{k}", config=config, metrics=metrics, predictions=preds,
                           history=history, save_model=lambda d, m=model: __import__("joblib").dump(m, d / "model.joblib"))


@pytest.fixture()
def run_store(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    exp = tmp_path / "runs" / "quick_fusion"
    y = np.tile(np.arange(6), 20)
    ids = [f"synthetic:{i:04d}" for i in range(len(y))]
    _write_branch_folds(exp, "audio", y, ids, 1.0, [0.9, 0.5, 0.7], rng)
    _write_branch_folds(exp, "video", y, ids, 2.0, [0.4, 0.6, 0.3], rng)
    for k in range(3):  # the fuser variant's own folds (metrics only matter here)
        results.write_fold(exp / "fusion_lr" / f"speaker-{k}", config={"fuser": "fusion_lr"},
                           metrics={"accuracy": 0.8 + k / 100, "uar": 0.8, "macro_f1": 0.8, "ece": 0.05,
                                    "protocol": "speaker", "fold": f"speaker-{k}"},
                           predictions=pd.DataFrame({"clip_id": ["x"]}))
    return exp


def test_export_picks_lowest_validation_loss_and_reports_measured_metrics(run_store, tmp_path):
    out = export_mod.export_bundle(run_store / "audio", run_store / "video", run_store / "fusion_lr",
                                   out=tmp_path / "bundles" / "demo", name="demo")
    meta = json.loads((out / "bundle.json").read_text())
    assert meta["name"] == "demo" and meta["classes"] == list(CLASSES)
    assert set(meta["models"]) == {"audio", "video", "fusion"}
    assert "speaker-1" in meta["models"]["audio"]["serving"]  # val losses 0.9, 0.5, 0.7
    assert "speaker-2" in meta["models"]["video"]["serving"]  # val losses 0.4, 0.6, 0.3
    fusion_metrics = meta["models"]["fusion"]["metrics"]
    assert fusion_metrics["n_folds"] == 3 and fusion_metrics["accuracy_mean"] == pytest.approx(0.81)
    assert "refit" in meta["models"]["fusion"]["serving"] and "120 clips" in meta["models"]["fusion"]["serving"]
    assert (out / "audio" / "model.joblib").is_file() and (out / "fusion" / "model.joblib").is_file()

    loaded = bundle_mod.load_bundle(out)
    assert loaded.classes == CLASSES and loaded.fusion.name == "fusion_lr"
    proba = loaded.audio.predict_proba(np.zeros((2, 4), np.float32))
    assert proba.shape == (2, 6) and np.allclose(proba.sum(1), 1)
    # the refit fuser learnt that video is the stronger branch
    pa = np.full((1, 6), 1 / 6)
    pa[0, 0] = 0.5
    pv = np.full((1, 6), 0.02)
    pv[0, 3] = 0.9
    assert loaded.fusion.predict_proba(fusion_norm(pa), fusion_norm(pv)).argmax() == 3
    assert loaded.summary()["fusion"]["model"] == "fusion_lr"


def fusion_norm(p: np.ndarray) -> np.ndarray:
    return p / p.sum(axis=1, keepdims=True)


def test_export_errors_are_one_line(tmp_path, run_store):
    with pytest.raises(bundle_mod.BundleError, match="at least"):
        export_mod.export_bundle(None, None)
    with pytest.raises(bundle_mod.BundleError, match="not found"):
        export_mod.export_bundle(tmp_path / "nope", None)
    with pytest.raises(bundle_mod.BundleError, match="both"):
        export_mod.export_bundle(run_store / "audio", None, run_store / "fusion_lr", out=tmp_path / "b")
    empty = tmp_path / "runs" / "x" / "empty"
    empty.mkdir(parents=True)
    with pytest.raises(bundle_mod.BundleError, match="no finished fold"):
        export_mod.export_bundle(empty, None)


def test_export_refuses_a_run_stopped_before_its_speaker_folds_finished(tmp_path, run_store):
    import shutil

    import yaml

    (run_store / "spec.yaml").write_text(yaml.safe_dump({"name": "quick_fusion", "protocol": {"folds": 4}}))
    with pytest.raises(bundle_mod.BundleError, match="has 3 of its 4 speaker folds finished"):
        export_mod.export_bundle(run_store / "audio", None, out=tmp_path / "b")
    (run_store / "spec.yaml").write_text(yaml.safe_dump({"name": "quick_fusion", "protocol": {"folds": 3}}))
    assert (export_mod.export_bundle(run_store / "audio", None, out=tmp_path / "b") / "bundle.json").is_file()
    shutil.rmtree(run_store / "audio" / "speaker-2")
    with pytest.raises(bundle_mod.BundleError, match="has 2 of its 3 speaker folds finished"):
        export_mod.export_bundle(run_store / "audio", None, out=tmp_path / "b")


def test_export_never_replaces_a_folder_that_is_not_a_bundle(tmp_path, run_store, capsys):
    from pipeline.entry.cli import main

    notes = tmp_path / "precious"
    notes.mkdir()
    (notes / "notes.txt").write_text("my notes")
    assert main(["export", "--audio", str(run_store / "audio"), "--out", str(notes), "--name", "mine"]) == 2
    err = capsys.readouterr().err
    assert "holds other files (no bundle.json)" in err and err.count("\n") == 1
    assert [p.name for p in notes.iterdir()] == ["notes.txt"]
    # a bundle folder is replaced by the new bundle (a re-export)
    assert main(["export", "--audio", str(run_store / "audio"), "--out", str(tmp_path / "b"), "--name", "one"]) == 0
    assert main(["export", "--audio", str(run_store / "audio"), "--out", str(tmp_path / "b"), "--name", "two"]) == 0
    assert '"two"' in (tmp_path / "b" / "bundle.json").read_text()


def test_load_errors(tmp_path):
    with pytest.raises(bundle_mod.BundleError, match="no bundle"):
        bundle_mod.load_bundle(tmp_path)
    (tmp_path / "bundle.json").write_text("{not json")
    with pytest.raises(bundle_mod.BundleError, match="not valid JSON"):
        bundle_mod.load_bundle(tmp_path)


def test_keras_round_trip_gives_identical_predictions(tmp_path):
    """A Keras audio model survives write -> load with the same outputs."""
    import models

    params = Preprocessing()
    model = models.build("audio_cnn", (params.n_mfcc,), len(params.classes))
    x = np.random.default_rng(0).normal(size=(3, params.n_mfcc)).astype(np.float32)
    before = np.asarray(model(x, training=False))
    branch = bundle_mod.BranchModel("audio", "audio_cnn", "keras", "mfcc_mean", params, model)
    fuser = LateFusion("rule_mean", classes=params.classes).fit(np.eye(6), np.eye(6), np.arange(6))
    out = export_mod.write_bundle(tmp_path / "k", name="k", audio=branch, video=None, fusion=fuser)
    loaded = bundle_mod.load_bundle(out)
    np.testing.assert_allclose(loaded.audio.predict_proba(x), before, atol=1e-5)
    assert loaded.video is None and json.loads((out / "bundle.json").read_text())["models"]["audio"]["file"] == "audio/model.keras"
