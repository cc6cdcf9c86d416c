"""The command line foundation: help, `index` on tiny corpora, errors as one line + exit 2."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from pipeline.entry import cli
from pipeline.core.corpora import manifest

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True,
                          text=True, timeout=120, env=ENV, cwd=cwd)


def _wav(path: Path, seconds: float = 0.1, sr: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr)
    return path


def test_help_is_instant_and_imports_no_tensorflow():
    result = _run("--help")
    assert result.returncode == 0 and "index" in result.stdout and "fetch" in result.stdout
    result = _run("index", "--help")
    assert result.returncode == 0 and "--corpus" in result.stdout and "--root" in result.stdout
    probe = subprocess.run(
        [sys.executable, "-c",
         "import sys, pipeline.entry.cli, pipeline.core.corpora.ravdess, pipeline.core.corpora.savee, "
         "pipeline.core.corpora.fetch, pipeline.core.corpora.report; "
         "print('tensorflow' in sys.modules)"],
        capture_output=True, text=True, timeout=120, env=ENV)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "False"


def test_index_missing_root_is_one_line_and_exit_2(tmp_path):
    result = _run("index", "--corpus", "ravdess", "--root", str(tmp_path / "nope"),
                  "--out", str(tmp_path / "m.csv"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: corpus folder not found")
    assert "Traceback" not in result.stderr


def test_index_tiny_ravdess_folder(tmp_path, capsys):
    root = tmp_path / "tiny"
    for actor in (1, 2):
        for emotion in ("01", "03", "05"):
            _wav(root / f"Actor_{actor:02d}" / f"03-01-{emotion}-01-01-01-{actor:02d}.wav")
    (root / "notes.txt").write_text("not a clip")
    out = tmp_path / "m.csv"
    rc = cli.main(["index", "--corpus", "ravdess", "--root", str(root), "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    assert "6 clips over 2 actors and 3 emotions" in text
    assert "neutral 2, happy 2, angry 2" in text and "actors:     01 3, 02 3" in text
    assert "unexpected extension: 1 (e.g. notes.txt)" in text
    frame = manifest.load(out)
    assert len(frame) == 6 and set(frame["corpus"]) == {"ravdess"}
    assert all(Path(p).is_file() for p in frame["audio_path"])


def test_index_synthetic_layout_links_all_modalities(tmp_path, capsys):
    root = tmp_path / "synth"
    root.mkdir()
    (root / "SYNTHETIC.json").write_text(json.dumps({"generator": "test", "seed": 1}))
    for take in ("01-04-02-02-01-01", "01-02-01-01-02-01"):
        actor = take[-2:]
        folder = root / f"Actor_{actor}"
        _wav(folder / f"03-{take}.wav")
        (folder / f"01-{take}.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")  # not decoded by index
        (folder / f"01-{take}.csv").write_text("frame,timestamp,confidence,success\n1,0.0,0.98,1\n")
    out = tmp_path / "synth.csv"
    rc = cli.main(["index", "--corpus", "synthetic", "--root", str(root), "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    assert "corpus synthetic" in text
    assert "modalities: audio 2/2, video 2/2, landmarks 2/2 clips linked" in text
    frame = manifest.load(out)
    assert frame["clip_id"].str.startswith("synthetic:").all()
    assert (frame["video_path"].str.endswith(".mp4") & frame["landmarks_path"].str.endswith(".csv")).all()


def test_index_folder_without_clips_exits_2(tmp_path, capsys):
    (tmp_path / "junk.txt").write_text("x")
    rc = cli.main(["index", "--corpus", "savee", "--root", str(tmp_path), "--out", str(tmp_path / "m.csv")])
    assert rc == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.splitlines()[-1].startswith("error: no clips found")
    assert "skipped 1 files" in captured.err and not (tmp_path / "m.csv").exists()  # no empty manifest


def test_index_real_ravdess_speech(shared_data, tmp_path):
    out = tmp_path / "real.csv"
    result = _run("index", "--corpus", "ravdess", "--root", str(shared_data / "ravdess-speech"),
                  "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "960 clips over 16 actors and 8 emotions" in result.stdout
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert len(frame) == 960 and frame["actor"].nunique() == 16 and frame["emotion"].nunique() == 8
