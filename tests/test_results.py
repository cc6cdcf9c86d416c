"""The results store: atomic folds, resume semantics, summary and readers."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipeline.research import results
from pipeline.research import store


def _write(exp: Path, variant: str, fold: str, acc: float, protocol: str = "speaker") -> Path:
    metrics = {"accuracy": acc, "uar": acc - 0.1, "macro_f1": acc - 0.2, "ece": 0.1,
               "variant": variant, "protocol": protocol, "fold": fold, "group": "g",
               "branch": "audio", "model": "svm_rbf", "experiment": exp.name}
    preds = pd.DataFrame({"clip_id": ["c1"], "actor": ["01"], "fold": [fold], "true": ["sad"],
                          "pred": ["sad"], "p_sad": [1.0]})
    history = pd.DataFrame({"epoch": [1, 2], "loss": [1.0, 0.5], "accuracy": [0.5, 0.6],
                            "val_loss": [1.1, 0.9], "val_accuracy": [0.4, 0.5]})
    return results.write_fold(exp / variant / fold, config={"fold": fold}, metrics=metrics,
                              predictions=preds, history=history,
                              save_model=lambda d: (d / "model.joblib").write_bytes(b"m"))


def test_fold_written_atomically_and_complete(tmp_path: Path) -> None:
    fold = _write(tmp_path / "exp", "a", "speaker-0", 0.8)
    assert store.fold_done(fold)
    assert sorted(p.name for p in fold.iterdir()) == [
        "config.yaml", "history.csv", "metrics.json", "model.joblib", "predictions.csv"]
    assert not list((tmp_path / "exp" / "a").glob(".tmp-*"))


def test_failed_write_leaves_no_fold(tmp_path: Path) -> None:
    def boom(_: Path) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        results.write_fold(tmp_path / "exp" / "a" / "speaker-0", config={}, metrics={"accuracy": 1},
                           predictions=pd.DataFrame(), save_model=boom)
    assert not store.fold_done(tmp_path / "exp" / "a" / "speaker-0")
    assert not list((tmp_path / "exp" / "a").iterdir())


def test_unfinished_fold_is_not_done_and_is_replaced(tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    stale = exp / "a" / "speaker-0"
    stale.mkdir(parents=True)
    (stale / "predictions.csv").write_text("partial")
    (exp / "a" / ".tmp-speaker-1-xyz").mkdir()
    assert not store.fold_done(stale)
    assert results.clean_partial(exp) == 1
    _write(exp, "a", "speaker-0", 0.7)
    assert store.fold_done(stale) and not (stale / "predictions.csv").read_text() == "partial"


def test_summary_mean_std_per_variant_and_protocol(tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    for i, acc in enumerate([0.6, 0.8]):
        _write(exp, "cnn", f"speaker-{i}", acc)
    _write(exp, "cnn", "random-27", 0.9, protocol="random")
    _write(exp, "svm", "speaker-0", 0.5)
    results.write_spec(exp, {"name": "exp", "variants": [{"name": "svm"}, {"name": "cnn"}]})
    frame = results.write_summary(exp)
    assert list(frame.columns) == list(store.SUMMARY_COLUMNS)
    on_disk = pd.read_csv(exp / "summary.csv")
    assert len(on_disk) == 3
    row = frame[(frame.variant == "cnn") & (frame.protocol == "speaker")].iloc[0]
    assert row.n_folds == 2
    assert row.accuracy_mean == pytest.approx(0.7) and row.accuracy_std == pytest.approx(0.1414, abs=1e-3)
    assert row.uar_mean == pytest.approx(0.6)
    assert store.variants(exp) == ["svm", "cnn"]  # spec order
    text = store.format_summary(frame)
    assert "70.0 ± 14.1" in text and "random" in text


def test_readers(tmp_path: Path) -> None:
    exp = tmp_path / "runs" / "exp"
    for i in (1, 0, 10):
        _write(exp, "cnn", f"speaker-{i}", 0.5)
    assert store.folds(exp, "cnn") == ["speaker-0", "speaker-1", "speaker-10"]
    assert len(store.load_metrics(exp, "cnn")) == 3
    preds = store.load_predictions(exp, "cnn")
    assert len(preds) == 3 and preds["actor"].tolist() == ["01"] * 3
    hist = store.load_history(exp, "cnn")
    assert set(hist["fold"]) == {"speaker-0", "speaker-1", "speaker-10"} and len(hist) == 6
    assert store.list_experiments(tmp_path / "runs") == [exp]
    assert json.loads((exp / "cnn" / "speaker-0" / "metrics.json").read_text())["accuracy"] == 0.5
    assert store.format_summary(store.summarise(tmp_path / "runs" / "exp")).startswith("experiment: exp")
