"""EmoDB and CREMA-D adapters from their documented names (on generated files), the
leave-one-corpus-out protocol, and specs naming several corpora."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.core.corpora import CORPORA, cremad, emodb, manifest, scan
from pipeline.research import experiments, splits


def _touch(path: Path, data: bytes = b"RIFF0000") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name, expected", [
    ("03a01Fa.wav", {"actor": "03", "gender": "male", "statement": "a01", "emotion": "happy", "repetition": "a"}),
    ("16b10Wb.wav", {"actor": "16", "gender": "female", "statement": "b10", "emotion": "angry", "repetition": "b"}),
    ("08a02Ac.wav", {"actor": "08", "emotion": "fearful", "repetition": "c"}),
    ("09b03Ea", {"emotion": "disgust"}), ("10a04Ta.wav", {"emotion": "sad"}), ("11a05Na.wav", {"emotion": "neutral"}),
])
def test_emodb_names(name, expected):
    fields = emodb.parse_name(name)
    assert {k: fields[k] for k in expected} == expected and fields["channel"] == "speech"


@pytest.mark.parametrize("name, reason", [
    ("03a01La.wav", emodb.BOREDOM), ("04a01Fa.wav", emodb.UNKNOWN_SPEAKER), ("03a01Xa.wav", emodb.UNKNOWN_EMOTION),
    ("3a01Fa.wav", emodb.BAD_NAME), ("03c01Fa.wav", emodb.BAD_NAME), ("readme.wav", emodb.BAD_NAME),
])
def test_emodb_bad_names(name, reason):
    with pytest.raises(manifest.InvalidName) as err:
        emodb.parse_name(name)
    assert err.value.reason == reason


@pytest.mark.parametrize("name, expected", [
    ("1001_DFA_ANG_XX.wav", {"actor": "1001", "statement": "DFA", "emotion": "angry", "intensity": "unspecified"}),
    ("1091_IEO_HAP_HI.flac", {"actor": "1091", "statement": "IEO", "emotion": "happy", "intensity": "high"}),
    ("1050_WSI_FEA_LO.wav", {"emotion": "fearful", "intensity": "low"}),
    ("1012_TSI_DIS_MD.wav", {"emotion": "disgust", "intensity": "medium"}),
])
def test_cremad_names(name, expected):
    fields = cremad.parse_name(name)
    assert {k: fields[k] for k in expected} == expected


@pytest.mark.parametrize("name, reason", [
    ("1001_XYZ_ANG_XX.wav", cremad.UNKNOWN_SENTENCE), ("1001_DFA_SUR_XX.wav", cremad.UNKNOWN_EMOTION),
    ("1001_DFA_ANG_ZZ.wav", cremad.UNKNOWN_LEVEL), ("101_DFA_ANG_XX.wav", cremad.BAD_NAME),
])
def test_cremad_bad_names(name, reason):
    with pytest.raises(manifest.InvalidName) as err:
        cremad.parse_name(name)
    assert err.value.reason == reason


def test_emodb_and_cremad_scan_skip_and_count(tmp_path: Path):
    e = tmp_path / "emodb"
    for n in ("wav/03a01Fa.wav", "wav/03a01La.wav", "wav/16b10Wb.wav", "wav/.03a01Fa.wav", "wav/x.txt", "wav/99zzz.wav"):
        _touch(e / n)
    _touch(e / "wav" / "08a02Ac.wav", b"")  # empty
    frame, summary = scan("emodb", e)
    assert frame["clip_id"].tolist() == ["emodb:03a01Fa", "emodb:16b10Wb"]
    assert set(frame["corpus"]) == {"emodb"} and frame["audio_path"].map(lambda p: Path(p).is_file()).all()
    assert summary.skipped == {emodb.BOREDOM: 1, "hidden file": 1, "unexpected extension": 1,
                               emodb.BAD_NAME: 1, "empty file": 1}
    c = tmp_path / "crema"
    for n in ("AudioWAV/1001_DFA_ANG_XX.wav", "AudioWAV/1002_IEO_SAD_LO.wav", "copy/1001_DFA_ANG_XX.wav"):
        _touch(c / n)
    (c / "VideoDemographics.csv").write_text("ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n"
                                             "1002,21,Female,Caucasian,Not Hispanic\n")
    frame, summary = scan("cremad", c)
    assert frame.set_index("actor")["gender"].to_dict() == {"1001": "male", "1002": "female"}
    assert summary.skipped == {"duplicate file": 1, "unexpected extension": 1}  # the csv
    assert {"emodb", "cremad"} <= set(CORPORA)


def _frame(corpora: dict[str, list[str]]) -> pd.DataFrame:
    rows = []
    for corpus, actors in corpora.items():
        for a in actors:
            for i, emotion in enumerate(["neutral", "happy", "sad", "angry"] * 2):
                rows.append({"clip_id": f"{corpus}:{a}:{i}", "corpus": corpus, "actor": a,
                             "gender": "female" if a.endswith(("2", "4", "B")) else "male", "emotion": emotion})
    return pd.DataFrame(rows)


def test_leave_one_corpus_out_holds_each_corpus_out():
    frame = _frame({"ravdess": ["01", "02", "03", "04"], "tess": ["OAF", "YAB"]})
    folds = splits.make_folds(frame, "corpus", val_fraction=0.0)
    assert [f.name for f in folds] == ["corpus-ravdess", "corpus-tess"]
    corpus = frame["corpus"].to_numpy()
    for f in folds:
        held = f.name.split("-", 1)[1]
        assert set(corpus[f.test]) == {held} and held not in set(corpus[f.train])
        assert len(f.train) + len(f.test) == len(frame) and f.protocol == "corpus"
    with_val = splits.make_folds(frame, "corpus", val_fraction=0.25)
    for f in with_val:  # validation actors come from the training corpora, never the held-out one
        assert not set(corpus[f.val]) & set(corpus[f.test]) and len(f.val)
    with pytest.raises(ValueError, match="at least two corpora"):
        splits.make_folds(frame[frame["corpus"] == "tess"], "corpus")


def test_speaker_folds_of_one_corpus_train_on_every_other():
    frame = _frame({"ravdess": ["01", "02", "03", "04"], "tess": ["OAF", "YAB"]})
    folds = splits.make_folds(frame, "speaker", n_folds=2, val_fraction=0.0, speaker_corpus="ravdess")
    corpus = frame["corpus"].to_numpy()
    tess_rows = set(np.flatnonzero(corpus == "tess"))
    tested = set()
    for f in folds:
        assert set(corpus[f.test]) == {"ravdess"} and tess_rows <= set(f.train)
        assert not set(frame["actor"].to_numpy()[f.test]) & set(frame["actor"].to_numpy()[f.train])
        tested |= set(f.test)
    assert tested == set(np.flatnonzero(corpus == "ravdess"))


def test_spec_with_two_corpora_runs_both_protocols(tmp_path: Path):
    """A spec naming two corpora (here two synthetic ones, one renamed) and the protocols
    [speaker, corpus] writes speaker folds and one corpus-<name> fold per corpus."""
    from pipeline.core.synth.corpus import generate

    a, b = tmp_path / "a", tmp_path / "b"
    generate(a, n_actors=2, seed=3, audio_only=True, progress=False)
    emo = tmp_path / "emodb"
    frame, _ = scan("synthetic", a)
    letters = {"neutral": "N", "happy": "F", "sad": "T", "angry": "W"}
    speakers = {"01": "03", "02": "08"}
    for row in frame[frame["emotion"].isin(letters)].itertuples():
        name = f"{speakers[row.actor]}a0{int(row.statement)}{letters[row.emotion]}{'abcdefgh'[int(row.repetition) + 2 * (row.intensity == 'strong')]}.wav"
        shutil.copyfile(row.audio_path, emo / "wav" / name) if (emo / "wav").is_dir() else (
            (emo / "wav").mkdir(parents=True), shutil.copyfile(row.audio_path, emo / "wav" / name))
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(f"""
name: loco
corpus:
  - {{name: synthetic, root: {a}}}
  - {{name: emodb, root: {emo}}}
labels: four
protocol: {{kind: [speaker, corpus], folds: 2, val_fraction: 0.0}}
features: {{kind: mfcc_stats}}
model: {{name: logreg, params: {{C: 1.0}}}}
""")
    summary = experiments.run_spec(spec_file, out=tmp_path / "runs", progress=False, cache_dir=tmp_path / "cache")
    folds = sorted(p.name for p in (tmp_path / "runs" / "loco" / "base").iterdir() if p.is_dir())
    assert folds == ["corpus-emodb", "corpus-synthetic", "speaker-0", "speaker-1"]
    assert set(summary["protocol"]) == {"speaker", "corpus"}
    import json

    m = json.loads((tmp_path / "runs" / "loco" / "base" / "corpus-emodb" / "metrics.json").read_text())
    assert m["protocol"] == "corpus" and m["n_train"] == 56 and sum(map(sum, m["confusion"])) == 56
    from dashboard import charts
    from pipeline.research import store

    travel = store.travel(tmp_path / "runs" / "loco")
    assert set(travel["test"]) == {"speaker-independent", "held-out corpus: emodb", "held-out corpus: synthetic"}
    assert travel.set_index("test").loc["speaker-independent", "n_folds"] == 2
    assert len(charts.travel_bars(travel, "uar", {"chance": 0.25}).data) == 3
    with pytest.raises(experiments.SpecError, match="at least two corpora"):
        experiments.validate({**experiments.resolve({"protocol": {"kind": "corpus"}}), "corpus": {"name": "synthetic", "root": str(a)}})
