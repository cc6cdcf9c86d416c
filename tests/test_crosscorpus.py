"""``python -m pipeline evaluate`` on a tiny synthetic corpus: counts, skipped emotions,
actor selection, metrics, the results-store entry, the JSON object and the exit codes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.core import audio
from pipeline.research import export as export_mod
from pipeline.serve import bundle as bundle_mod
from pipeline.research import crosscorpus
from pipeline.core.preprocessing import Preprocessing

PARAMS = Preprocessing(labels="four")  # neutral, happy, sad, angry: the corpus's other emotions are skipped


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    from pipeline.core.synth.corpus import generate

    root = tmp_path_factory.mktemp("synthetic")
    generate(root, n_actors=2, seed=3, audio_only=True, progress=False)
    return root


@pytest.fixture(scope="module")
def audio_bundle(corpus: Path, tmp_path_factory) -> Path:
    """Logistic regression on MFCC statistics fitted on actor 01 only."""
    import models
    from pipeline.core.corpora import scan
    from pipeline.core.media import load_audio

    frame, _ = scan("synthetic", corpus)
    frame = frame[(frame["actor"] == "01") & frame["emotion"].isin(PARAMS.classes)]
    X = np.stack([audio.featurize(load_audio(p, PARAMS.sample_rate), PARAMS, "mfcc_stats") for p in frame["audio_path"]])
    y = frame["emotion"].map({c: i for i, c in enumerate(PARAMS.classes)}).to_numpy()
    model = models.build("logreg", (X.shape[1],), 4).fit(X, y)
    branch = bundle_mod.BranchModel(branch="audio", model_name="logreg", framework="sklearn",
                                    input_kind="mfcc_stats", params=PARAMS, model=model)
    return export_mod.write_bundle(tmp_path_factory.mktemp("b") / "tiny", name="tiny", audio=branch, video=None)


def test_parse_actors():
    assert crosscorpus.parse_actors("17-19,01, DC") == {"17", "18", "19", "1", "DC"}
    assert crosscorpus.parse_actors(None) is None
    with pytest.raises(crosscorpus.EvaluateError):
        crosscorpus.parse_actors("9-3")


def test_evaluate_counts_skips_and_scores(audio_bundle: Path, corpus: Path, tmp_path: Path):
    result = crosscorpus.evaluate_bundle(audio_bundle, "synthetic", corpus, out=tmp_path / "runs",
                                         cache_dir=tmp_path / "cache", progress=False)
    assert result.branch == "audio" and result.labels == list(PARAMS.classes)
    # 2 actors x 60 takes; four emotions kept: neutral 4 + 3 x 8 = 28 per actor
    assert result.n == 56
    skipped = {k: v for k, v in result.skipped.items() if k.startswith("emotion not in the bundle")}
    assert sum(skipped.values()) == 120 - 56 and "emotion not in the bundle: calm" in skipped
    m = result.metrics
    assert 0.0 <= m["uar"] <= 1.0 and set(m["per_class_recall"]) == set(PARAMS.classes)
    assert np.asarray(m["confusion"]).sum() == 56
    run = result.run_dir
    assert (run / "metrics.json").is_file() and (run / "predictions.csv").is_file()
    assert (tmp_path / "runs" / "evaluate" / "summary.csv").is_file()
    again = crosscorpus.evaluate_bundle(audio_bundle, "synthetic", corpus, actors="2", out=tmp_path / "runs",
                                        cache_dir=tmp_path / "cache", progress=False)
    assert again.n == 28 and again.skipped["other actors"] == 60
    assert again.run_dir.parent.name.endswith("-actors2")


def test_skipped_files_are_counted_by_their_reason(audio_bundle: Path, corpus: Path, tmp_path: Path):
    """Damaged files share one reason (their names taken out), an empty file is counted
    under the adapter's own reason, not as an unreadable file name."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(corpus, copy)
    takes = sorted(p for p in copy.rglob("*.wav") if p.name.split("-")[2] == "03")  # happy: kept by the bundle
    for take in takes[:2]:
        take.write_text("this is not a sound\n" * 50)
    takes[2].write_bytes(b"")
    result = crosscorpus.evaluate_bundle(audio_bundle, "synthetic", copy, out=tmp_path / "runs",
                                         cache_dir=tmp_path / "cache", progress=False)
    damaged = {k: v for k, v in result.skipped.items() if k.startswith("audio failed")}
    assert list(damaged.values()) == [2], result.skipped
    assert "not a readable audio or video file" in next(iter(damaged))
    assert not any(t.name in k for t in takes for k in result.skipped)
    assert any(k.startswith("not indexed: ") for k in result.skipped), result.skipped
    assert "unreadable file names" not in result.skipped and result.n == 56 - 3


def test_evaluate_keeps_every_run(audio_bundle: Path, corpus: Path, tmp_path: Path):
    """A rerun is a new run (eval-2), never an overwrite of eval-1."""
    runs = [crosscorpus.evaluate_bundle(audio_bundle, "synthetic", corpus, actors="1", out=tmp_path / "runs",
                                        cache_dir=tmp_path / "cache", progress=False).run_dir for _ in range(2)]
    assert [r.name for r in runs] == ["eval-1", "eval-2"] and runs[0].parent == runs[1].parent
    first = (runs[0] / "metrics.json").read_text()
    assert json.loads(first)["fold"] == "eval-1" and (runs[1] / "metrics.json").is_file()
    from pipeline.research import store

    assert store.folds(tmp_path / "runs" / "evaluate", runs[0].parent.name) == ["eval-1", "eval-2"]


def test_evaluate_writes_under_the_users_runs_by_default(audio_bundle: Path, corpus: Path, tmp_path: Path,
                                                         monkeypatch):
    """Without --out, evaluate writes under AVE_RUNS (runs/, git-ignored), never the record."""
    from pipeline.core import paths

    monkeypatch.setenv("AVE_RUNS", str(tmp_path / "mine"))
    result = crosscorpus.evaluate_bundle(audio_bundle, "synthetic", corpus, actors="1",
                                         cache_dir=tmp_path / "cache", progress=False)
    assert result.run_dir.is_relative_to(tmp_path / "mine")
    assert not result.run_dir.is_relative_to(paths.record_dir())


def test_evaluate_cli_json_and_errors(audio_bundle: Path, corpus: Path, tmp_path: Path, capsys, monkeypatch):
    from pipeline.entry.cli import main

    monkeypatch.setenv("AVE_CACHE", str(tmp_path / "cache"))
    assert main(["evaluate", "--bundle", str(audio_bundle), "--corpus", "synthetic", "--root", str(corpus),
                 "--out", str(tmp_path / "runs"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("n", "skipped", "accuracy", "uar", "macro_f1", "per_class_recall", "labels", "branch", "corpus"):
        assert key in out
    assert out["corpus"] == "synthetic" and out["n"] == 56
    assert main(["evaluate", "--bundle", str(tmp_path / "nope"), "--corpus", "synthetic", "--root", str(corpus)]) == 2
    assert "no bundle" in capsys.readouterr().err
    assert main(["evaluate", "--bundle", str(audio_bundle), "--corpus", "synthetic",
                 "--root", str(tmp_path / "missing")]) == 2
    assert main(["evaluate", "--bundle", str(audio_bundle), "--corpus", "synthetic", "--root", str(corpus),
                 "--branch", "video"]) == 2
    assert "no video model" in capsys.readouterr().err


class _EverywhereFace:
    """A face finder that sees one face filling any picture."""

    def detect(self, rgb: np.ndarray) -> list:
        from pipeline.core.faces import Box

        return [Box(0, 0, rgb.shape[1], rgb.shape[0])]


def test_evaluate_images_matches_the_serving_path(tmp_path: Path):
    """On an image set, evaluate's cached, batched face branch gives what analyze gives
    for each photo (the same crop-to-input function, model and pooling). The pictures
    are noise, so analyze is given a finder that sees a face everywhere: its "is there a
    face in this small image?" check is serving's gate, not part of the scoring."""
    import cv2

    import models
    from pipeline.serve.inference import analyze

    rng = np.random.default_rng(0)
    for emotion in ("happy", "sad", "contempt"):
        (tmp_path / "faces" / emotion).mkdir(parents=True)
        for i in range(3):
            cv2.imwrite(str(tmp_path / "faces" / emotion / f"{i}.png"), rng.integers(0, 255, (48, 48), dtype=np.uint8))
    params = Preprocessing(crop_size=48, color="gray", labels="seven", crop_margin=-0.1)
    branch = bundle_mod.BranchModel(branch="video", model_name="face_cnn_small", framework="keras",
                                    input_kind="faces", params=params,
                                    model=models.build("face_cnn_small", (48, 48, 1), 7, augment=0.0))
    bundle_dir = export_mod.write_bundle(tmp_path / "faces_bundle", name="faces", audio=None, video=branch)
    result = crosscorpus.evaluate_bundle(bundle_dir, "images", tmp_path / "faces", out=tmp_path / "runs",
                                         cache_dir=tmp_path / "cache", progress=False)
    assert result.branch == "video" and result.n == 6
    assert result.skipped == {"emotion not in the bundle: contempt": 3}
    import pandas as pd

    preds = pd.read_csv(result.run_dir / "predictions.csv")
    loaded = bundle_mod.load_bundle(bundle_dir)
    for _, row in preds.iterrows():
        served = analyze(tmp_path / "faces" / row["clip_id"], loaded, detector=_EverywhereFace()).video.probabilities
        np.testing.assert_allclose([row[f"p_{c}"] for c in result.labels], [served[c] for c in result.labels],
                                   atol=1e-5)


def test_in_sample_is_flagged_from_what_the_served_models_learned(tmp_path: Path):
    """Actors of the training side, or the very image folder, make a run in-sample;
    other actors, another corpus or a bundle that records nothing do not."""
    from types import SimpleNamespace

    import pandas as pd

    bundle = SimpleNamespace(meta={"models": {
        "audio": {"trained_on": {"corpus": "ravdess", "root": "data/ravdess-speech", "actors": ["1", "3", "4"]}},
        "video": {"trained_on": {"corpus": "images", "root": "fer2013/train"}}}})
    actors = pd.DataFrame({"actor": ["02", "05"]})
    assert crosscorpus.in_sample(bundle, ["audio"], "ravdess", tmp_path, actors) == ""
    said = crosscorpus.in_sample(bundle, ["audio"], "ravdess", tmp_path, pd.DataFrame({"actor": ["01", "02"]}))
    assert "trained on 1 of these actors (1)" in said
    assert crosscorpus.in_sample(bundle, ["audio"], "savee", tmp_path, actors) == ""
    (tmp_path / "fer2013" / "train").mkdir(parents=True)
    (tmp_path / "fer2013" / "test").mkdir()
    faces = pd.DataFrame({"actor": ["", ""]})
    assert "fer2013/train" in crosscorpus.in_sample(bundle, ["video"], "images", tmp_path / "fer2013" / "train", faces)
    assert crosscorpus.in_sample(bundle, ["video"], "images", tmp_path / "fer2013" / "test", faces) == ""
    assert crosscorpus.in_sample(SimpleNamespace(meta={}), ["audio", "video"], "ravdess", tmp_path, actors) == ""


def test_a_corpus_trained_on_whole_is_in_sample_wherever_its_clips_lie(tmp_path: Path):
    """The TESS speakers the real voice trained on, copied to another folder, are still
    in-sample; other speakers of that corpus are not."""
    from types import SimpleNamespace

    import pandas as pd

    bundle = SimpleNamespace(meta={"models": {"audio": {"trained_on": {
        "corpus": "ravdess", "root": "data/ravdess-speech", "actors": ["1"],
        "also": [{"corpus": "tess", "root": "data/tess", "actors": ["OAF", "YAF"]}]}}}})
    said = crosscorpus.in_sample(bundle, ["audio"], "tess", tmp_path / "my_copy", pd.DataFrame({"actor": ["YAF"]}))
    assert "every clip of 1 of these speakers (YAF)" in said
    assert crosscorpus.in_sample(bundle, ["audio"], "tess", tmp_path / "data" / "tess",
                                 pd.DataFrame({"actor": ["NEW"]})) == ""


def test_export_names_the_speakers_of_every_corpus_trained_on_whole(tmp_path: Path):
    from pipeline.research.export import trained_on

    fold = tmp_path / "all-0"
    fold.mkdir()
    (fold / "predictions.csv").write_text("clip_id,actor,fold\nravdess:01-01,01,all-0\ntess:OAF:back:angry,OAF,all-0\n"
                                          "tess:YAF:dog:sad,YAF,all-0\n")
    config = {"corpus": [{"name": "ravdess", "root": "/x/data/ravdess-speech"}, {"name": "tess", "root": "/x/data/tess"}]}
    out = trained_on(tmp_path, ["all-0"], "all-0", "all", config)
    assert out["also"] == [{"corpus": "tess", "root": "data/tess", "actors": ["OAF", "YAF"]}]


def test_unknown_actors_are_named(tmp_path: Path):
    import pandas as pd

    frame = pd.DataFrame({"actor": ["01", "02"], "emotion": ["happy", "sad"]})
    with pytest.raises(crosscorpus.EvaluateError, match="no actor 99 in this corpus; its actors: 1, 2"):
        crosscorpus.select(frame, ("happy", "sad"), crosscorpus.parse_actors("99"), "audio")
