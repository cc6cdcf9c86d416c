"""The research path refuses, in one line, what would delete, escape or misreport:
an output folder that is not ours, names that are paths, specs of the wrong shape
(a hostile user's attack on the research CLI)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.core.paths import safe_name
from pipeline.entry.cli import main
from pipeline.research import experiments
from pipeline.research.cards import load_card_info
from pipeline.research.crosscorpus import EvaluateError, parse_actors
from pipeline.research.face_posthoc import variant_name
from pipeline.research.staging import NotReplaceable, staged_dir


def _write(folder: Path, marker: str) -> None:
    with staged_dir(folder, prefix=".t-", marker=marker) as tmp:
        (tmp / marker).write_text("{}")


def test_an_output_folder_that_is_not_ours_is_refused_and_kept(tmp_path: Path, monkeypatch) -> None:
    notes = tmp_path / "precious"
    (notes / "sub").mkdir(parents=True)
    (notes / "notes.txt").write_text("my notes")
    with pytest.raises(NotReplaceable, match="holds other files"):
        _write(notes, "bundle.json")
    assert (notes / "notes.txt").read_text() == "my notes" and (notes / "sub").is_dir()
    assert [p.name for p in tmp_path.iterdir()] == ["precious"]  # no staging folder left behind
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(NotReplaceable, match="not a folder"):
        _write(tmp_path / "a_file", "bundle.json")
    # the working folder (and so every folder holding it) is never replaced, even if it is a bundle
    (tmp_path / "bundle.json").write_text("{}")
    monkeypatch.chdir(notes)
    for target in (Path("."), tmp_path):
        with pytest.raises(NotReplaceable, match="working folder"):
            _write(target, "bundle.json")
    assert (notes / "notes.txt").is_file()
    # new, empty and earlier folders of the same kind are written and replaced
    for folder in (tmp_path / "new", tmp_path / "empty"):
        if folder.name == "empty":
            folder.mkdir()
        _write(folder, "bundle.json")
        _write(folder, "bundle.json")
        assert [p.name for p in folder.iterdir()] == ["bundle.json"]


@pytest.mark.parametrize("name", ["../x", "/abs", "a/b", "..", ".", "", "tab\there"])
def test_names_that_are_paths_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="cannot be a folder name"):
        safe_name(name)
    if "/" in name:  # tune-faces --base becomes <base>+<views>+<recalibration>
        with pytest.raises(ValueError, match="cannot be a folder name"):
            variant_name(name, "flip", "none")


def test_safe_names_pass() -> None:
    assert safe_name("face_cnn_warm+flip+temperature") == "face_cnn_warm+flip+temperature"
    assert variant_name("face_cnn", "flip", "temperature") == "face_cnn+flip+temperature"


def test_actor_lists_cannot_name_a_path() -> None:
    assert parse_actors("01-03,DC") == {"1", "2", "3", "DC"}
    for text in ("2,/../../escaped", "2,a/b", "1,.."):
        with pytest.raises(EvaluateError, match="bad actor id"):
            parse_actors(text)


BASE = {"name": "t", "corpus": {"name": "synthetic", "root": "nowhere"}, "labels": "six",
        "protocol": {"kind": "speaker", "folds": 2}, "features": {"kind": "mfcc_mean"}, "model": {"name": "logreg"}}


@pytest.mark.parametrize("change, message", [
    ({"labels": ["six"]}, "unknown labels"),
    ({"branch": ["audio"]}, "unknown branch"),
    ({"features": 5}, "features must be a mapping"),
    ({"protocol": 3}, "protocol must be a mapping"),
    ({"model": "logreg"}, "model must be a mapping"),
    ({"protocol": {"kind": "speaker", "folds": 2, "seeds": 5}}, "seeds must be a non-empty list"),
    ({"preprocessing": 5}, "preprocessing must be a mapping"),
    ({"training": None}, "training must be a mapping"),
    ({"variants": 5}, "variants must be a list of mappings"),
    ({"variants": ["foo"]}, "variants must be a list of mappings"),
    ({"variants": [{"name": "a", "set": 5}]}, "set must be a mapping"),
    ({"variants": [{"name": "../a"}]}, "cannot be a folder name"),
    ({"features": {"kind": "mfcc_mean", "augment": "noise"}}, "augment must be a list"),
    ({"features": {"kind": "mfcc_mean", "n_jobs": "many"}}, "n_jobs must be a positive integer"),
])
def test_specs_of_the_wrong_shape_are_one_line_errors(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        for spec in experiments.variant_specs(experiments.resolve({**BASE, **change})):
            experiments.validate(spec, check_root=False)


def test_unreadable_spec_and_card_files_name_the_file(tmp_path: Path) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(experiments.SpecError, match="binary.yaml is not valid YAML"):
        experiments.load_spec(binary)
    card = tmp_path / "card.yaml"
    card.write_text("x: [\n")
    with pytest.raises(ValueError, match="card.yaml is not a readable YAML file"):
        load_card_info(card)


def test_cli_paths_of_the_wrong_kind_are_one_line_errors(tmp_path: Path, capsys) -> None:
    root = tmp_path / "corpus" / "Actor_01"
    root.mkdir(parents=True)
    import numpy as np
    import soundfile as sf

    sf.write(root / "03-01-05-01-01-01-01.wav", np.zeros(1600, np.float32) + 0.01, 16000)
    assert main(["index", "--corpus", "ravdess", "--root", str(tmp_path / "corpus"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is a folder; give the manifest's file name" in err and err.count("\n") == 1
    (tmp_path / "file").write_text("x")
    assert main(["index", "--corpus", "ravdess", "--root", str(tmp_path / "corpus"),
                 "--out", str(tmp_path / "file" / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert os.listdir(tmp_path / "corpus" / "Actor_01") == ["03-01-05-01-01-01-01.wav"]


def test_a_file_given_as_a_corpus_folder_and_a_one_actor_corpus_say_what_to_do(tmp_path: Path) -> None:
    import pandas as pd

    from pipeline.core.corpora import scan
    from pipeline.research.splits import speaker_folds

    (tmp_path / "README.md").write_text("x")
    with pytest.raises(FileNotFoundError, match="is a file, not a corpus folder"):
        scan("ravdess", tmp_path / "README.md")
    with pytest.raises(FileNotFoundError, match="corpus folder not found"):
        scan("ravdess", tmp_path / "nowhere")
    one = pd.DataFrame({"actor": ["01"] * 4, "gender": ["female"] * 4, "emotion": ["happy", "sad"] * 2})
    with pytest.raises(ValueError, match="use protocol.kind=random"):
        speaker_folds(one, 2)
