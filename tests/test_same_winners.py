"""Issue 20 kept the answers: the serving path as it is now and as it was before the speed
work (the tree at :data:`bench.bench_floor.BEFORE_COMMIT`, taken from git) name the same
winners (audio, video, fused; abstentions by their reason) on the synthetic test clips of
``tests/test_inference.py``, with the same tiny bundle. Each tree runs in its own
interpreter, so neither sees the other's modules. ``bench/bench_floor.py`` reports the same
agreement on real clips with ``bundles/real``."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from bench.bench_floor import BEFORE_COMMIT
from test_inference import clips, tiny_bundle  # noqa: F401 (fixtures)

REPO = Path(__file__).resolve().parents[1]

#: Run in a child interpreter with one tree on ``PYTHONPATH``: the winners of every clip.
CHILD = """
import json, sys
from pipeline.serve.bundle import load_bundle
from pipeline.serve.inference import analyze
bundle = load_bundle(sys.argv[1])
def win(r):
    return r.winner[0] if r.ok and r.winner else r.status
out = {}
for name, clip, csv in json.loads(sys.argv[2]):
    a = analyze(clip, bundle, landmarks_path=csv or None)
    out[name] = {"audio": win(a.audio), "video": win(a.video), "fused": win(a.fused),
                 "windows": [[w.start, w.end, win(w.audio), win(w.video), win(w.fused)] for w in a.timeline]}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def before_tree(tmp_path_factory) -> Path:
    """The ``pipeline`` and ``models`` folders as they were at :data:`BEFORE_COMMIT`."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed: the earlier tree cannot be taken from history")
    probe = subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{BEFORE_COMMIT}^{{commit}}"],
                           capture_output=True)
    if probe.returncode:
        pytest.skip(f"this checkout does not hold commit {BEFORE_COMMIT} (a shallow clone or an archive)")
    out = tmp_path_factory.mktemp("before")
    archive = out / "tree.tar"
    subprocess.run(["git", "-C", str(REPO), "archive", "-o", str(archive), BEFORE_COMMIT, "pipeline", "models"],
                   check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(out, filter="data")
    return out


def winners(tree: Path, bundle_dir: Path, jobs: list[tuple[str, str, str]]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(bundle_dir), json.dumps(jobs)], cwd=str(tree),
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_same_winners_as_before_the_speed_work(tiny_bundle, clips, before_tree):  # noqa: F811
    jobs = [(name, str(clips[name]), str(clips[csv]) if csv else "")
            for name, csv in (("wav_angry", None), ("silent", None), ("av_sad", None), ("av_sad", "av_csv"),
                              ("faceless", None), ("long", None), ("long", "long_csv"))]
    jobs = [(f"{name}+{Path(csv).stem}" if csv else name, clip, csv) for name, clip, csv in jobs]
    before = winners(before_tree, Path(tiny_bundle.path), jobs)
    now = winners(REPO, Path(tiny_bundle.path), jobs)
    assert set(before) == set(now) == {name for name, _, _ in jobs}
    for name in now:
        for key in ("audio", "video", "fused"):
            assert now[name][key] == before[name][key], (name, key, before[name], now[name])
    # the answers are the clips' own (a check that could not fail would prove nothing)
    assert now["wav_angry"]["audio"] == "angry" and now["av_sad+sad"]["fused"] == "sad"
    assert now["long+long"]["windows"], "the 20 s clip is read in windows"
