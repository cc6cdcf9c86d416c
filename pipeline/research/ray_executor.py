"""The Ray executor: ``python -m pipeline run SPEC --executor ray``.

Every (variant, fold) of the ``audio`` and ``video`` branches is one Ray task running
:func:`pipeline.research.experiments.run_fold_task`, the unit of work the local executor runs
too; a variant of any other branch (``fusion``, whose runner cross-fits its own folds)
is one task running its registered runner. The driver (this process) first plans
every variant: finished folds are skipped, features are extracted once per (corpus,
parameters) through the on-disk cache, and each distinct feature set is put in Ray's
object store once and shared by every task that trains on it. Each task writes its
fold with the same atomic writer (:func:`pipeline.research.results.write_fold`), so the results
store has the same guarantees as a local run; the driver alone writes ``summary.csv``.
A failed task is logged with its variant, fold and the error's last line and the
others go on; the caller gets the failures back.

Without ``address`` a local Ray instance starts with the command and stops with it,
listening on 127.0.0.1 only, without a dashboard and without usage reporting; with
``address`` (``auto`` or ``HOST:PORT``) the driver joins a running cluster, whose
workers must see the results store (and the package) at the same paths.

Ray is imported only inside :func:`run_ray` (and :func:`start`), so importing this
module, ``python -m pipeline --help`` and the dashboard never import it.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Sequence

from pipeline.research import experiments, results
from pipeline.core import paths
from pipeline.research.experiments import FoldTask, SpecError, TaskFailure, VariantData

log = logging.getLogger(__name__)

__all__ = ["LOCAL_NODE_IP", "DEFAULT_ENV", "start", "run_ray"]

#: A Ray instance this command starts listens here only.
LOCAL_NODE_IP = "127.0.0.1"
#: Set (unless already set) before Ray starts: no usage statistics sent anywhere; the
#: workers inherit it and TensorFlow's quiet start-up.
DEFAULT_ENV: dict[str, str] = {"RAY_USAGE_STATS_ENABLED": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
#: Seconds between progress-bar refreshes while waiting for tasks.
_POLL_S = 0.5


# --------------------------------------------------------------------------- task bodies
def _fold_task(task: FoldTask, data: VariantData) -> dict[str, Any]:
    """Body of a (variant, fold) task on a worker (``data`` comes from the object store)."""
    return experiments.run_fold_task(task, data, progress=False)


def _variant_task(spec: dict[str, Any], exp_dir: str, cache_dir: str, workdir: str) -> list[str]:
    """Body of a whole-variant task (branches whose runner makes its own folds)."""
    previous = os.getcwd()
    if workdir and os.path.isdir(workdir):
        os.chdir(workdir)
    try:
        return experiments.runner_for(spec["branch"])(spec, Path(exp_dir), cache_dir=cache_dir, progress=False)
    finally:
        os.chdir(previous)


# --------------------------------------------------------------------------- ray
def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise SpecError("the Ray executor needs the ray package: "
                        ".venv/bin/pip install -r requirements.txt") from None
    return ray


def start(address: str | None = None, *, num_cpus: int | None = None, num_gpus: int | None = None,
          verbose: bool = False) -> Any:
    """Start a local Ray instance (``address`` None: 127.0.0.1 only, no dashboard) or
    join the cluster at ``address``; returns the ``ray`` module."""
    ray = _import_ray()
    for key, value in DEFAULT_ENV.items():
        os.environ.setdefault(key, value)
    quiet = {"log_to_driver": verbose, "logging_level": logging.INFO if verbose else logging.WARNING}
    if address:
        if num_cpus is not None or num_gpus is not None:
            raise SpecError("num_cpus / num_gpus describe a local Ray instance; a cluster has its own")
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise SpecError(f"cannot join the Ray cluster at {address}: {experiments.error_line(err)}") from None
    else:
        # address="local": always a fresh instance for this command, even if RAY_ADDRESS is set
        try:
            ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False,
                     _node_ip_address=LOCAL_NODE_IP, **quiet)
        except (ConnectionError, RuntimeError, OSError) as err:
            raise SpecError(f"cannot start a local Ray instance: {experiments.error_line(err)}") from None
    return ray


def _slots(ray: Any, cpus_per_task: float, gpus_per_task: float) -> int:
    """How many tasks the cluster can run at once (for the running/queued split)."""
    resources = ray.cluster_resources()
    slots = [int(resources.get("CPU", 1) // cpus_per_task)] if cpus_per_task > 0 else []
    if gpus_per_task > 0:
        slots.append(int(resources.get("GPU", 0) // gpus_per_task))
    return max(1, min(slots)) if slots else 1


def _failure_text(ray: Any, err: BaseException) -> str:
    """The error's last line; the original exception's for an error raised in a task."""
    cause = getattr(err, "cause", None) if isinstance(err, ray.exceptions.RayTaskError) else None
    return experiments.error_line(cause if isinstance(cause, BaseException) else err)


def run_ray(specs: Sequence[dict[str, Any]], exp_dir: str | Path, *, cache_dir: str | Path | None = None,
            progress: bool = True, address: str | None = None, cpus_per_task: float = 1.0,
            gpus_per_task: float = 0.0, num_cpus: int | None = None,
            num_gpus: int | None = None) -> list[TaskFailure]:
    """Executor ``ray`` (see :data:`pipeline.research.experiments.EXECUTORS`): every unfinished
    (variant, fold) of ``specs`` as one Ray task; returns the tasks that failed.

    ``cpus_per_task`` / ``gpus_per_task`` are each task's Ray resource request (a
    Keras model on a GPU node: ``gpus_per_task=1``); ``num_cpus`` / ``num_gpus`` size
    the local instance (default: the machine's).
    """
    from tqdm.auto import tqdm

    if not cpus_per_task > 0 or gpus_per_task < 0:
        raise SpecError("--cpus-per-task must be > 0 and --gpus-per-task >= 0")
    workdir = os.getcwd()
    exp_dir = Path(exp_dir).resolve()
    cache = str(Path(cache_dir or paths.cache_dir()).resolve())
    verbose = logging.getLogger().isEnabledFor(logging.INFO)

    # 1. plan here: skip finished folds; extract each feature set once (on-disk cache)
    failures: list[TaskFailure] = []
    shared: dict[str, VariantData] = {}
    fold_tasks: list[tuple[FoldTask, str]] = []  # (task, key of its VariantData)
    whole: list[dict[str, Any]] = []
    for spec in specs:
        if experiments.BRANCH_RUNNERS.get(spec["branch"]) != "pipeline.research.experiments:run_branch":
            whole.append(spec)
            continue
        try:
            plan = experiments.plan_variant(spec, exp_dir, cache_dir=cache, progress=progress,
                                            shared=shared, workdir=workdir)
        except SpecError:
            raise
        except Exception as err:  # this variant cannot start; the others still run
            failures.append(TaskFailure(spec["variant"]["name"], "(features)", experiments.error_line(err)))
            log.error("variant %s failed before training: %s", spec["variant"]["name"], failures[-1].error)
            continue
        if plan is not None:
            fold_tasks.extend((task, plan.data.key) for task in plan.tasks)
    if not fold_tasks and not whole:
        return failures

    # 2. dispatch: one task per (variant, fold); one object-store copy per feature set
    ray = start(address, num_cpus=num_cpus, num_gpus=num_gpus, verbose=verbose)
    pending: dict[Any, tuple[str, str]] = {}
    try:
        options = {"num_cpus": cpus_per_task, "num_gpus": gpus_per_task}
        fold_remote = ray.remote(_fold_task).options(**options)
        variant_remote = ray.remote(_variant_task).options(**options)
        refs = {key: ray.put(data) for key, data in shared.items()}
        shared.clear()
        for task, key in fold_tasks:
            ref = fold_remote.remote(task, refs[key])
            pending[ref] = (task.variant, task.fold.name)
        for spec in whole:
            ref = variant_remote.remote(spec, str(exp_dir), cache, workdir)
            pending[ref] = (spec["variant"]["name"], "*")
        slots = _slots(ray, cpus_per_task, gpus_per_task)
        failures.extend(_collect(ray, pending, exp_dir, slots, progress, tqdm))
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        ray.shutdown()
    return failures


def _collect(ray: Any, pending: dict[Any, tuple[str, str]], exp_dir: Path, slots: int, progress: bool,
             tqdm: Any) -> list[TaskFailure]:
    """Wait for every task, one progress bar over all of them; returns the failures."""
    failures: list[TaskFailure] = []
    done = 0
    started = time.perf_counter()
    with tqdm(total=len(pending), desc="tasks", unit="task", disable=not progress) as bar:
        def show() -> None:
            running = min(len(pending), slots)  # submitted beyond the free slots = queued
            bar.set_postfix(done=done, running=running, queued=len(pending) - running,
                            failed=len(failures), refresh=False)
            bar.refresh()

        show()
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=_POLL_S)
            if not ready:
                continue
            for ref in ready:
                variant, fold = pending.pop(ref)
                try:
                    value = ray.get(ref)
                except Exception as err:  # the task raised, or its worker died
                    failures.append(TaskFailure(variant, fold, _failure_text(ray, err)))
                    log.error("task failed: %s", failures[-1])
                else:
                    done += 1
                    if isinstance(value, dict):
                        log.info("%s/%s: accuracy %.3f, UAR %.3f", variant, fold,
                                 value.get("accuracy", float("nan")), value.get("uar", float("nan")))
                    results.write_summary(exp_dir)
                bar.update(1)
            show()
    log.info("%d task(s) finished, %d failed, in %.1f s", done, len(failures), time.perf_counter() - started)
    return failures
