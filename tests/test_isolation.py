"""Jobs in a worker process (pipeline.serve.isolation): a native crash or an overrun ends
the worker, not the caller; the caller learns which signal; the next job answers.

The crashes are real: ``ctypes.string_at(0)`` reads address 0 (SIGSEGV) and
``os.abort`` raises SIGABRT, both in the child.
"""
from __future__ import annotations

import ctypes
import operator
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.media import MediaError
from pipeline.serve import isolation
from test_inference import COLOURS, PITCHES, frames_for, tiny_bundle, tone, write_media  # noqa: F401 (fixture)


@pytest.fixture
def worker():
    w = isolation.Worker(timeout_s=60)
    yield w
    w.close()


def refuse(name: str) -> None:
    """A job that fails the way an unreadable file does."""
    raise MediaError(f"{name} is not a readable audio or video file (InvalidDataError)")


def test_a_job_answers_in_another_process(worker) -> None:
    assert worker.call(operator.add, 2, 3) == 5
    assert worker.call(os.getpid) not in (None, os.getpid())


def test_a_job_error_comes_back_as_itself(worker) -> None:
    with pytest.raises(MediaError, match="clip.wav is not a readable audio"):
        worker.call(refuse, "clip.wav")
    assert worker.call(operator.mul, 3, 4) == 12
    assert worker.starts == 1  # an error is not a crash: the same child goes on


@pytest.mark.parametrize("crash, signal_name", [((ctypes.string_at, 0), "SIGSEGV"), ((os.abort,), "SIGABRT")])
def test_a_native_crash_is_reported_and_the_next_job_answers(worker, crash, signal_name: str) -> None:
    first = worker.call(os.getpid)
    with pytest.raises(isolation.WorkerCrashed) as caught:
        worker.call(*crash)
    assert caught.value.signal_name == signal_name and not caught.value.timed_out
    assert f"was killed by {signal_name}" in str(caught.value)
    second = worker.call(os.getpid)  # a fresh child
    assert second != first and worker.starts == 2
    assert worker.call(operator.add, 1, 1) == 2


def test_an_overrun_is_stopped_and_said(worker) -> None:
    started = time.monotonic()
    with pytest.raises(isolation.WorkerCrashed) as caught:
        worker.call(time.sleep, 30, timeout_s=1.0)
    assert caught.value.timed_out and "longer than 1 s" in str(caught.value)
    assert time.monotonic() - started < 20
    assert worker.call(operator.add, 1, 2) == 3


def test_busy_while_a_job_runs(worker) -> None:
    """The dashboard says "waiting" when a new file would queue behind a running job."""
    assert not worker.busy
    job = threading.Thread(target=worker.call, args=(time.sleep, 1.5))
    job.start()
    time.sleep(0.5)
    assert worker.busy
    job.join(60)
    assert not worker.busy


def test_a_wait_behind_other_jobs_is_bounded(worker) -> None:
    """A call queued behind a long job waits at most its own limit, then says the worker
    is busy (its input is not blamed); the long job is unaffected."""
    worker.call(operator.add, 0, 0)  # the child is up
    long_job = threading.Thread(target=worker.call, args=(time.sleep, 3.0))
    long_job.start()
    time.sleep(0.3)
    started = time.monotonic()
    with pytest.raises(isolation.WorkerBusy, match="busy with other files for 1 s"):
        worker.call(operator.add, 1, 2, timeout_s=1.0)
    assert time.monotonic() - started < 2.5
    long_job.join(60)
    assert worker.call(operator.add, 1, 2) == 3


def test_an_unpicklable_answer_is_an_error_not_a_hang(worker) -> None:
    with pytest.raises(RuntimeError, match="cannot be sent back"):
        worker.call(threading.Lock)
    assert worker.call(operator.add, 1, 2) == 3


def test_only_the_crashing_callers_job_fails(worker) -> None:
    """Callers queue: while one job crashes the child, another caller's job waits and
    then runs in the next child."""
    outcomes: dict[str, object] = {}

    def run(name: str, *job) -> None:
        try:
            outcomes[name] = worker.call(*job)
        except Exception as err:  # noqa: BLE001 (recorded for the assertion)
            outcomes[name] = err

    crash = threading.Thread(target=run, args=("crash", ctypes.string_at, 0))
    crash.start()
    time.sleep(0.2)
    other = threading.Thread(target=run, args=("other", operator.add, 20, 22))
    other.start()
    crash.join(60)
    other.join(60)
    assert isinstance(outcomes["crash"], isolation.WorkerCrashed)
    assert outcomes["other"] == 42


def test_close_ends_the_child(worker) -> None:
    pid = worker.call(os.getpid)
    worker.close()
    assert worker.pid is None
    with pytest.raises(OSError):
        for _ in range(50):
            os.kill(pid, 0)  # gone (reaped by join)
            time.sleep(0.1)


def test_describe_exit() -> None:
    assert isolation.describe_exit(-11) == ("was killed by SIGSEGV", "SIGSEGV")
    assert isolation.describe_exit(3) == ("exited with code 3", "")


def test_timeout_setting() -> None:
    assert isolation.timeout_setting({}) == isolation.DEFAULT_TIMEOUT_S
    assert isolation.timeout_setting({"AVE_ANALYZE_TIMEOUT": "90"}) == 90.0
    assert isolation.timeout_setting({"AVE_ANALYZE_TIMEOUT": "soon"}) == isolation.DEFAULT_TIMEOUT_S


def test_analyze_job_answers_as_analyze_does(worker, tiny_bundle, tmp_path: Path) -> None:
    """The dashboard's job: the same answer as inference.analyze in this process, from
    the file's bytes, with the bundle loaded in the child."""
    from pipeline.serve import inference

    rng = np.random.default_rng(3)
    clip = write_media(tmp_path / "sad.mp4", tone(PITCHES[3], 3.0, rng), frames_for(lambda t: COLOURS[3], 3.0))
    data = clip.read_bytes()
    request = isolation.AnalysisRequest(data, str(tiny_bundle.path), isolation.bundle_stamp(tiny_bundle.path),
                                        detector="haar")
    there = worker.call(isolation.analyze_job, request)
    here = inference.analyze(data, tiny_bundle, isolation.detector("haar"))
    assert there.fused.winner[0] == here.fused.winner[0]
    assert there.audio.probabilities == pytest.approx(here.audio.probabilities)
    assert there.frames_with_face == here.frames_with_face
    with pytest.raises(MediaError):
        worker.call(isolation.analyze_job, isolation.AnalysisRequest(b"not media at all", str(tiny_bundle.path)))
    assert worker.starts == 1
