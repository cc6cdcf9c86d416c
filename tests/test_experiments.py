"""Experiment specs: resolution and validation, train-only augmentation, and one
integration run of the quick audio spec on a tiny corpus (with resume)."""
from __future__ import annotations

import time
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.research import experiments
from pipeline.research import store
from pipeline.entry.cli import main
from pipeline.core.labels import label_set, ravdess_emotion_code
from pipeline.research.splits import Fold

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def write_tone_corpus(root: Path, n_actors: int = 4, emotions=label_set("six"), sr: int = 16000,
                      seconds: float = 1.2) -> Path:
    """A tiny RAVDESS-named folder of wavs: harmonic tones whose pitch and brightness
    depend on the emotion (and a little on the actor), plus noise."""
    rng = np.random.default_rng(0)
    t = np.arange(int(sr * seconds)) / sr
    for a in range(1, n_actors + 1):
        folder = root / f"Actor_{a:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for e_i, emotion in enumerate(emotions):
            f0 = 120.0 * (1.0 + 0.22 * e_i) * (1.0 + 0.03 * a)
            for statement in ("01", "02"):
                for rep in ("01", "02"):
                    y = sum((0.6 ** k) * np.sin(2 * np.pi * f0 * (k + 1) * t + rng.uniform(0, 6))
                            for k in range(1 + e_i % 4))
                    y = 0.3 * y / np.max(np.abs(y)) + 0.01 * rng.standard_normal(t.size)
                    name = f"03-01-{ravdess_emotion_code(emotion)}-01-{statement}-{rep}-{a:02d}.wav"
                    with wave.open(str(folder / name), "wb") as handle:
                        handle.setnchannels(1)
                        handle.setsampwidth(2)
                        handle.setframerate(sr)
                        handle.writeframes((np.clip(y, -1, 1) * 32767).astype("<i2").tobytes())
    return root


# --------------------------------------------------------------------------- spec
def test_resolve_applies_set_then_variants() -> None:
    raw = {"name": "x", "model": {"name": "audio_cnn", "params": {"kernel_size": 12}},
           "variants": [{"name": "a"}, {"name": "b", "set": {"model.params.kernel_size": 8, "labels": "four"}}]}
    base = experiments.resolve(raw, ["labels=eight", "protocol.folds=3", "training.epochs=2"])
    a, b = experiments.variant_specs(base)
    assert a["labels"] == "eight" and a["protocol"]["folds"] == 3 and a["training"]["epochs"] == 2
    assert a["model"]["params"] == {"kernel_size": 12}
    assert b["labels"] == "four" and b["model"]["params"]["kernel_size"] == 8
    assert b["variant"]["name"] == "b"
    assert [s["variant"]["name"] for s in experiments.variant_specs(base, ["b"])] == ["b"]


@pytest.mark.parametrize("override, message", [
    ("protocl.kind=random", "unknown spec key 'protocl'"),
    ("protocol.kinds=random", "unknown spec key 'protocol.kinds'"),
    ("labels", "KEY=VALUE"),
])
def test_bad_override_is_a_clear_error(override: str, message: str) -> None:
    with pytest.raises(experiments.SpecError, match=message):
        experiments.resolve({"name": "x"}, [override])


@pytest.mark.parametrize("override, message", [
    ("model.name=resnet", "unknown model 'resnet'"),
    ("labels=seventeen", "unknown labels"),
    ("corpus.name=iemocap", "unknown corpus.name"),
    ("protocol.kind=loso", "unknown protocol.kind"),
    ("features.kind=frames", "not a audio feature"),
    ("features.augment=[echo]", "unknown augmentation 'echo'"),
    ("preprocessing.n_mfccs=20", "unknown preprocessing key"),
    ("corpus.root=/nonexistent/corpus", "python -m pipeline synth"),
    ("model.params.remove_speakers=true", "takes no parameter 'remove_speakers'; it takes: filters"),
])
def test_validation_catches_bad_specs_early(override: str, message: str) -> None:
    base = experiments.resolve({"name": "x", "corpus": {"root": "."}}, [override])
    with pytest.raises(experiments.SpecError, match=message):
        for spec in experiments.variant_specs(base):
            experiments.validate(spec)


def test_shipped_configs_resolve_and_validate() -> None:
    for path in sorted(CONFIGS.glob("*.yaml")):
        base = experiments.resolve(experiments.load_spec(path))
        specs = experiments.variant_specs(base)
        assert specs, path
        for spec in specs:
            experiments.validate(spec, check_root=False)
            for kind in ("speaker", "random"):  # every spec runs under both protocols
                experiments.validate(experiments.set_dotted(spec, "protocol.kind", kind), check_root=False)


def test_report_configs_name_their_final_and_best_variants() -> None:
    audio = experiments.resolve(experiments.load_spec(CONFIGS / "audio.yaml"))
    names = [v["name"] for v in audio["variants"]]
    assert names[0] == "final" and "best" in names
    final = experiments.variant_specs(audio, ["final"])[0]
    assert final["model"]["name"] == "audio_cnn" and final["features"]["kind"] == "mfcc_mean"
    video = experiments.resolve(experiments.load_spec(CONFIGS / "video.yaml"))
    assert video["variants"][0]["name"] == "final"
    assert experiments.variant_specs(video, ["final"])[0]["model"]["name"] == "lrcn"


# --------------------------------------------------------------------------- augmentation
def test_augmentation_only_on_training_rows() -> None:
    X = np.arange(12, dtype=np.float32).reshape(6, 2)
    y = np.array([0, 1, 0, 1, 0, 1])
    fold = Fold("speaker-0", "speaker", 0, train=np.array([0, 1, 2]), val=np.array([3]),
                test=np.array([4, 5]), test_actors=("02",))
    X_aug = X + 1000  # recognisable augmented rows
    ok = np.array([True, False, True, True, True, True])  # clip 1's augmentation failed
    arrays = experiments.assemble_fold(X, y, fold, {"noise": (X_aug, ok)})
    assert arrays["X_train"].shape == (5, 2)
    assert np.array_equal(arrays["X_train"][3:], X_aug[[0, 2]])
    assert np.array_equal(arrays["y_train"], y[[0, 1, 2, 0, 2]])
    for side, rows in (("val", fold.val), ("test", fold.test)):
        assert np.array_equal(arrays[f"X_{side}"], X[rows])
        assert (arrays[f"X_{side}"] < 1000).all()
    assert np.array_equal(experiments.assemble_fold(X, y, fold)["X_train"], X[fold.train])


# --------------------------------------------------------------------------- integration
@pytest.fixture(scope="module")
def tone_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny RAVDESS-layout corpus of synthetic tones (fast to make and to featurize;
    the project's voice generator is exercised by its own tests)."""
    return write_tone_corpus(tmp_path_factory.mktemp("corpus") / "tones", n_actors=4,
                             emotions=label_set("four"))


def test_quick_audio_spec_end_to_end_and_resume(tone_corpus: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.core.corpora import scan

    n_clips = len(scan("ravdess", tone_corpus)[0])
    monkeypatch.setenv("AVE_CACHE", str(tmp_path / "cache"))
    args = ["run", str(CONFIGS / "quick_audio.yaml"), "--out", str(tmp_path / "runs"), "-q",
            "--set", "corpus.name=ravdess", "--set", f"corpus.root={tone_corpus}", "--set", "labels=four",
            "--set", "protocol.folds=2", "--set", "protocol.val_fraction=0", "--set", "training.epochs=30",
            "--set", "features.n_jobs=1", "--set", "name=it"]
    assert main(args) == 0
    exp = tmp_path / "runs" / "it"
    summary = pd.read_csv(exp / "summary.csv")
    assert set(summary["variant"]) == {"cnn", "svm"} and (summary["n_folds"] == 2).all()
    assert {"accuracy_mean", "accuracy_std", "uar_mean", "uar_std", "macro_f1_mean", "macro_f1_std",
            "protocol"} <= set(summary.columns)
    # the tones carry their emotion: both models beat chance (1/4) clearly on unseen actors
    accuracy = summary.set_index("variant")["accuracy_mean"]
    assert accuracy["svm"] > 0.8 and accuracy["cnn"] > 0.4, summary
    for variant, model_file in (("cnn", "model.keras"), ("svm", "model.joblib")):
        for fold in ("speaker-0", "speaker-1"):
            d = exp / variant / fold
            assert (d / model_file).is_file() and (d / "predictions.csv").is_file()
            metrics = store.load_metrics(exp, variant)[0]
            assert metrics["n_test"] + metrics["n_train"] == n_clips and metrics["n_val"] == 0
            config = store.load_config(exp, variant, fold)
            assert config["classes"] == list(label_set("four"))
            assert config["preprocessing_params"]["n_mfcc"] == 40
    assert (exp / "cnn" / "speaker-0" / "history.csv").is_file()
    preds = store.load_predictions(exp, "cnn")
    assert len(preds) == n_clips and preds["clip_id"].is_unique  # each clip tested exactly once
    out = capsys.readouterr().out
    assert "cnn" in out and "±" in out

    # a rerun does no work: every fold is skipped, nothing is rewritten
    stamp = (exp / "cnn" / "speaker-0" / "metrics.json").stat().st_mtime_ns
    started = time.perf_counter()
    assert main(args) == 0
    assert time.perf_counter() - started < 10
    assert (exp / "cnn" / "speaker-0" / "metrics.json").stat().st_mtime_ns == stamp

    # an interrupted run resumes: drop one finished fold, leave a temp folder behind
    import shutil

    shutil.rmtree(exp / "svm" / "speaker-1")
    (exp / "svm" / ".tmp-speaker-1-dead").mkdir()
    assert main(args) == 0
    assert store.folds(exp, "svm") == ["speaker-0", "speaker-1"]
    assert not list((exp / "svm").glob(".tmp-*"))
    assert (exp / "cnn" / "speaker-0" / "metrics.json").stat().st_mtime_ns == stamp

    # the same store with a different label set is refused, not silently mixed
    assert main(args + ["--set", "labels=six"]) == 2
    assert "different config" in capsys.readouterr().err
    import yaml  # ... and the saved spec still says what its folds ran with

    assert yaml.safe_load((exp / "spec.yaml").read_text())["labels"] == "four"

    assert main(["report", str(exp)]) == 0
    assert "svm" in capsys.readouterr().out
