"""The Ray executor (``python -m pipeline run --executor ray``): the same summary as the
local executor, failed tasks named while the others are kept, reruns that skip
finished folds; and ``ray`` never imported unless that executor is chosen.

Network rule: Ray never starts in the pytest process. Every Ray instance here starts in
a ``python -m pipeline run --executor ray`` subprocess inside a fresh network namespace
with only loopback up (``unshare -n``), and the executor binds it to 127.0.0.1 without
a dashboard; when the namespace cannot be made, the Ray tests skip with that reason.
"""
from __future__ import annotations

import ast
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import pandas as pd
import pytest

from pipeline.research import store
from pipeline.entry.cli import main

ROOT = Path(__file__).resolve().parents[1]
METRIC_COLUMNS = ["accuracy_mean", "accuracy_std", "uar_mean", "uar_std", "macro_f1_mean",
                  "macro_f1_std", "ece_mean", "ece_std"]
EMOTIONS = ("neutral", "happy", "sad", "angry")  # the "four" label set
SPEC = """\
name: ray_it
corpus: {{name: synthetic, root: {root}}}
labels: four
protocol: {{kind: speaker, folds: 2, val_fraction: 0}}
branch: audio
features: {{kind: mfcc_stats, n_jobs: 1}}
model: {{name: svm_rbf}}
variants:
  - name: svm
    description: RBF SVM on MFCC statistics
  - name: logreg
    description: logistic regression on MFCC statistics
    set: {{model.name: logreg}}
"""
BROKEN = """\
  - name: broken
    description: an SVM with an invalid C, so every one of its tasks raises
    set: {{model.params: {{C: -1.0}}}}
"""


def _namespace_problem() -> str | None:
    """Why a loopback-only network namespace cannot be made here (None when it can)."""
    if importlib.util.find_spec("ray") is None:
        return "ray is not installed (pip install -r requirements.txt)"
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"`{tool}` not found: cannot make a loopback-only network namespace for Ray"
    try:
        probe = subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up && ip -o link show up"],
                               capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"cannot make a network namespace (unshare -n): {err}"
    if probe.returncode:
        reason = (probe.stderr.strip().splitlines() or ["no reason given"])[-1]
        return f"cannot make a network namespace (unshare -n): {reason}"
    up = [line for line in probe.stdout.splitlines() if line.strip()]
    if len(up) != 1 or ": lo:" not in up[0]:
        return f"the new network namespace has more than loopback up: {up}"
    return None


@pytest.fixture(scope="module")
def netns() -> None:
    problem = _namespace_problem()
    if problem:
        pytest.skip(problem)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny audio-only synthetic corpus (4 actors, 4 emotions), the two spec files and
    one feature cache shared by every run (features are extracted once, by the first)."""
    from pipeline.core.synth.corpus import generate

    base = tmp_path_factory.mktemp("ray")
    corpus = base / "corpus"
    generate(corpus, n_actors=4, seed=3, audio_only=True, progress=False, emotions=EMOTIONS, n_jobs=1)
    spec = base / "ray_it.yaml"
    spec.write_text(SPEC.format(root=corpus), encoding="utf-8")
    broken = base / "ray_broken.yaml"
    broken.write_text((SPEC + BROKEN).format(root=corpus).replace("name: ray_it", "name: ray_broken"),
                      encoding="utf-8")
    (base / "home").mkdir()
    return {"base": base, "spec": spec, "broken": broken, "cache": base / "cache", "home": base / "home"}


@pytest.fixture(scope="module")
def local_run(workspace: dict[str, Path]) -> Path:
    """The local executor's run of the 2 x 2 spec (in this process): the reference."""
    saved = os.environ.get("AVE_CACHE")
    os.environ["AVE_CACHE"] = str(workspace["cache"])
    try:
        assert main(["run", str(workspace["spec"]), "--out", str(workspace["base"] / "local"), "-q"]) == 0
    finally:
        if saved is None:
            os.environ.pop("AVE_CACHE", None)
        else:
            os.environ["AVE_CACHE"] = saved
    return workspace["base"] / "local" / "ray_it"


def run_ray(workspace: dict[str, Path], spec: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """``python -m pipeline run SPEC --executor ray`` in a fresh loopback-only namespace."""
    ray_tmp = tempfile.mkdtemp(prefix="rayt-", dir="/tmp")  # short: Ray's socket paths
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "PYTHONPATH")}
    env.update({"AVE_CACHE": str(workspace["cache"]), "HOME": str(workspace["home"]),
                "RAY_TMPDIR": ray_tmp, "RAY_USAGE_STATS_ENABLED": "0", "TF_CPP_MIN_LOG_LEVEL": "2"})
    command = shlex.join([sys.executable, "-m", "pipeline", "run", str(spec), "--out", str(out),
                          "--executor", "ray", "--cpus-per-task", "1", "-q"])
    try:
        return subprocess.run(["unshare", "-n", "sh", "-c", f"ip link set lo up && exec {command}"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


def metrics_of(exp: Path, variants: list[str]) -> pd.DataFrame:
    frame = pd.read_csv(exp / "summary.csv")
    frame = frame.loc[frame["variant"].isin(variants), ["variant", "protocol", "n_folds", *METRIC_COLUMNS]]
    return frame.sort_values("variant").reset_index(drop=True)


def fold_metrics(exp: Path, variant: str) -> list[dict]:
    keep = ("fold", "accuracy", "uar", "macro_f1", "ece", "n_train", "test_actors")
    return [{k: m[k] for k in keep} for m in store.load_metrics(exp, variant)]


# --------------------------------------------------------------------------- acceptance
def test_ray_gives_the_local_summary(netns: None, workspace: dict[str, Path], local_run: Path) -> None:
    proc = run_ray(workspace, workspace["spec"], workspace["base"] / "ray")
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = workspace["base"] / "ray" / "ray_it"
    assert "svm" in proc.stdout and "logreg" in proc.stdout  # the summary table is printed
    for variant in ("svm", "logreg"):
        assert store.folds(exp, variant) == ["speaker-0", "speaker-1"]
        assert fold_metrics(exp, variant) == fold_metrics(local_run, variant)
        for fold in ("speaker-0", "speaker-1"):
            assert (exp / variant / fold / "model.joblib").is_file()
            assert store.load_config(exp, variant, fold)["fingerprint"] == \
                store.load_config(local_run, variant, fold)["fingerprint"]
        assert not list((exp / variant).glob(".tmp-*"))
    pd.testing.assert_frame_equal(metrics_of(exp, ["svm", "logreg"]), metrics_of(local_run, ["svm", "logreg"]),
                                  check_exact=False, rtol=1e-9)


def test_failed_task_is_named_others_kept_and_rerun_skips_finished(
        netns: None, workspace: dict[str, Path], local_run: Path) -> None:
    out = workspace["base"] / "ray_failing"
    exp = out / "ray_broken"
    proc = run_ray(workspace, workspace["broken"], out)
    assert proc.returncode == 1, proc.stderr[-3000:]
    for fold in ("speaker-0", "speaker-1"):  # variant, fold and the error's last line
        assert f"failed: broken/{fold}: InvalidParameterError: The 'C' parameter" in proc.stderr
    assert "2 task(s) failed" in proc.stderr
    assert store.folds(exp, "broken") == [] and not list((exp / "broken").glob(".tmp-*"))
    for variant in ("svm", "logreg"):  # the others finished and are kept
        assert store.folds(exp, variant) == ["speaker-0", "speaker-1"]
        assert fold_metrics(exp, variant) == fold_metrics(local_run, variant)
    summary = pd.read_csv(exp / "summary.csv")  # written from what finished
    assert sorted(summary["variant"]) == ["logreg", "svm"]
    pd.testing.assert_frame_equal(metrics_of(exp, ["svm", "logreg"]), metrics_of(local_run, ["svm", "logreg"]),
                                  check_exact=False, rtol=1e-9)

    # rerun: finished folds are skipped (not rewritten), a missing one is redone
    stamps = {(v, f): (exp / v / f / "metrics.json").stat().st_mtime_ns
              for v in ("svm", "logreg") for f in ("speaker-0", "speaker-1")}
    shutil.rmtree(exp / "svm" / "speaker-1")
    (exp / "svm" / ".tmp-speaker-1-dead").mkdir()  # as an interrupted task leaves it
    again = run_ray(workspace, workspace["broken"], out)
    assert again.returncode == 1, again.stderr[-3000:]
    assert "2 task(s) failed" in again.stderr  # only broken's two folds ran and failed again
    assert store.folds(exp, "svm") == ["speaker-0", "speaker-1"]
    assert not list((exp / "svm").glob(".tmp-*"))
    for key, stamp in stamps.items():
        if key != ("svm", "speaker-1"):
            assert (exp / key[0] / key[1] / "metrics.json").stat().st_mtime_ns == stamp, key
    assert fold_metrics(exp, "svm") == fold_metrics(local_run, "svm")


# --------------------------------------------------------------------------- no ray unless chosen
def test_ray_is_imported_only_by_the_ray_executor() -> None:
    """Statically: no module of the package, the models or the dashboard imports ray at
    module level except pipeline/research/ray_executor.py, and that one only inside functions."""
    offenders = []
    for folder in ("pipeline", "models", "dashboard"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            nodes = tree.body if path.name == "ray_executor.py" else list(ast.walk(tree))
            for node in nodes:
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                if any(n == "ray" or n.startswith("ray.") for n in names):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders


def test_help_and_the_executor_hook_do_not_import_ray() -> None:
    code = ("import sys; from pipeline.entry.cli import build_parser; build_parser().format_help(); "
            "import pipeline.research.experiments as e, pipeline.research.ray_executor; e.executor_for('ray'); "
            "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_local_ray_instance_is_loopback_only_without_dashboard(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``start`` asks of Ray, checked against a stand-in module (no Ray starts)."""
    from pipeline.research import ray_executor

    calls: list[dict] = []
    fake = types.ModuleType("ray")
    fake.init = lambda **kwargs: calls.append(kwargs)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.delenv("RAY_USAGE_STATS_ENABLED", raising=False)
    ray_executor.start(num_cpus=2)
    assert calls[-1]["address"] == "local" and calls[-1]["num_cpus"] == 2
    assert calls[-1]["_node_ip_address"] == "127.0.0.1" and calls[-1]["include_dashboard"] is False
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0"
    ray_executor.start("auto")  # joining a cluster: the cluster's own settings
    assert calls[-1]["address"] == "auto" and "_node_ip_address" not in calls[-1]


def test_ray_flags_need_the_ray_executor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("name: x\n", encoding="utf-8")
    assert main(["run", str(spec), "--address", "auto"]) == 2
    assert "need --executor ray" in capsys.readouterr().err


def test_error_line_is_the_last_line() -> None:
    from pipeline.research.experiments import TaskFailure, error_line

    assert error_line(ValueError("boom")) == "ValueError: boom"
    assert error_line(RuntimeError("Traceback ...\n  File x\nKeyError: 'y'\n")) == "KeyError: 'y'"
    assert str(TaskFailure("cnn", "speaker-0", "ValueError: boom")) == "cnn/speaker-0: ValueError: boom"
